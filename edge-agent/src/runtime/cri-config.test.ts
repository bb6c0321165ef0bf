import { cri, edge } from '@edgefarm/proto';
import { fieldsOf, podSpec } from '@edgefarm/testing';
import { containerConfig, sandboxConfig, observedSandbox, observedContainer } from './cri-config.js';
import { Annotations, Labels, containerHash } from './labels.js';
import { create } from '@bufbuild/protobuf';

const layout = { podLogRoot: '/var/log/edgefarm/n1/pods', cgroupParent: '/edgefarm/n1' };

describe('CRI configs', () => {
  const pod = podSpec({ namespace: 'ns', name: 'web.1', uid: 'u-1', resourceVersion: '42', labels: { app: 'web' } });

  it('sandbox: identity in labels, per-site log dir, cgroup parent, pod network', () => {
    const c = sandboxConfig(layout, pod, 2);
    expect(c.metadata).toEqual({ name: 'web.1', namespace: 'ns', uid: 'u-1', attempt: 2 });
    expect(c.hostname).toBe('web.1');
    expect(c.logDirectory).toBe('/var/log/edgefarm/n1/pods/ns_web.1_u-1');
    expect(c.labels).toEqual({
      app: 'web',
      [Labels.podUid]: 'u-1',
      [Labels.podNamespace]: 'ns',
      [Labels.podName]: 'web.1',
      [Labels.managed]: 'true',
    });
    expect(c.annotations?.[Annotations.resourceVersion]).toBe('42');
    expect(c.linux?.cgroupParent).toBe('/edgefarm/n1/podu-1');
    expect(c.linux?.securityContext?.namespaceOptions?.network).toBe(cri.NamespaceMode.POD);
  });

  it('sandbox: the pod sysctls go on the sandbox (CRI linux.sysctls), as the kubelet sets them', () => {
    const c = sandboxConfig(
      layout,
      podSpec({ ...fieldsOf(pod), sysctls: { 'kernel.shm_rmid_forced': '1', 'net.ipv4.tcp_syncookies': '0' } }),
      0,
    );
    expect(c.linux?.sysctls).toEqual({ 'kernel.shm_rmid_forced': '1', 'net.ipv4.tcp_syncookies': '0' });
  });

  it('sandbox: hostNetwork uses the node namespace and no hostname', () => {
    const c = sandboxConfig(layout, podSpec({ ...fieldsOf(pod), hostNetwork: true }), 0);
    expect(c.hostname).toBe('');
    expect(c.linux?.securityContext?.namespaceOptions?.network).toBe(cri.NamespaceMode.NODE);
  });

  it('container: labels, hash and restart count annotations, log path', () => {
    const spec = create(edge.EdgeContainerSchema, {
      name: 'app',
      image: 'img:1',
      command: ['sh'],
      args: ['-c', 'x'],
      workingDir: '/w',
      env: [{ name: 'A', value: '1' }],
    });
    const c = containerConfig(pod, spec, { attempt: 3, restartCount: 2 });
    expect(c.metadata).toEqual({ name: 'app', attempt: 3 });
    expect(c.labels?.[Labels.containerName]).toBe('app');
    expect(c.annotations?.[Annotations.containerHash]).toBe(containerHash(spec));
    expect(c.annotations?.[Annotations.restartCount]).toBe('2');
    expect(c.logPath).toBe('app/2.log');
    expect(c.envs).toEqual([{ key: 'A', value: '1' }]);
    expect(c.command).toEqual(['sh']);
    expect(c.workingDir).toBe('/w');
  });

  it('container: resources and security context beside the namespace options; termination message annotations', () => {
    const spec = create(edge.EdgeContainerSchema, { name: 'app', image: 'img:1', terminationMessagePolicy: 'FallbackToLogsOnError' });
    const c = containerConfig(
      pod,
      spec,
      { attempt: 0, restartCount: 0 },
      { resources: { cpuShares: 2n }, securityContext: { privileged: true } },
    );
    expect(c.linux?.resources).toEqual({ cpuShares: 2n });
    expect(c.linux?.securityContext).toMatchObject({ privileged: true, namespaceOptions: { network: cri.NamespaceMode.POD } });
    expect(c.annotations?.[Annotations.terminationMessagePath]).toBe('/dev/termination-log');
    expect(c.annotations?.[Annotations.terminationMessagePolicy]).toBe('FallbackToLogsOnError');
    const custom = containerConfig(pod, create(edge.EdgeContainerSchema, { name: 'app', terminationMessagePath: '/tmp/m' }), {
      attempt: 0,
      restartCount: 0,
    });
    expect(custom.annotations?.[Annotations.terminationMessagePath]).toBe('/tmp/m');
    expect(custom.annotations?.[Annotations.terminationMessagePolicy]).toBe('File');
  });

  it('sandbox: privileged when any container is (the kubelet does the same)', () => {
    expect(sandboxConfig(layout, pod, 0).linux?.securityContext?.privileged).toBe(false);
    const priv = podSpec({ initContainers: [{ name: 'i', image: 'img', securityContext: { privileged: true } }] });
    expect(sandboxConfig(layout, priv, 0).linux?.securityContext?.privileged).toBe(true);
  });

  it("ephemeral container: joins its target's process namespace (pid TARGET, target_id), else its own", () => {
    const debuggerSpec = create(edge.EdgeContainerSchema, { name: 'debugger', image: 'busybox', targetContainerName: 'main' });
    const targeted = containerConfig(pod, debuggerSpec, { attempt: 0, restartCount: 0, targetId: 'cid-main' });
    expect(targeted.linux?.securityContext?.namespaceOptions).toMatchObject({
      pid: cri.NamespaceMode.TARGET,
      targetId: 'cid-main',
      network: cri.NamespaceMode.POD,
      ipc: cri.NamespaceMode.POD,
    });
    const own = containerConfig(pod, debuggerSpec, { attempt: 0, restartCount: 0 });
    expect(own.linux?.securityContext?.namespaceOptions?.pid).toBe(cri.NamespaceMode.CONTAINER);
    expect(own.linux?.securityContext?.namespaceOptions).not.toHaveProperty('targetId');
  });

  it('container hash changes with the spec only', () => {
    const a = create(edge.EdgeContainerSchema, { name: 'app', image: 'img:1' });
    expect(containerHash(a)).toBe(containerHash(create(edge.EdgeContainerSchema, { name: 'app', image: 'img:1' })));
    expect(containerHash(a)).not.toBe(containerHash(create(edge.EdgeContainerSchema, { name: 'app', image: 'img:2' })));
  });

  it('observed objects are rebuilt from labels and annotations alone', () => {
    const sc = sandboxConfig(layout, pod, 1);
    const sb = create(cri.PodSandboxSchema, {
      id: 's1',
      metadata: sc.metadata,
      state: cri.PodSandboxState.SANDBOX_READY,
      createdAt: 5_000_000n,
      labels: sc.labels,
      annotations: sc.annotations,
    });
    expect(observedSandbox(sb, '10.0.0.3')).toMatchObject({
      id: 's1',
      uid: 'u-1',
      namespace: 'ns',
      name: 'web.1',
      attempt: 1,
      state: 'ready',
      createdAtMs: 5,
      ip: '10.0.0.3',
      resourceVersion: '42',
    });
    const cc = containerConfig(pod, pod.containers[0]!, { attempt: 0, restartCount: 4 });
    const item = create(cri.ContainerSchema, {
      id: 'c1',
      podSandboxId: 's1',
      metadata: cc.metadata,
      labels: cc.labels,
      annotations: cc.annotations,
      state: cri.ContainerState.CONTAINER_EXITED,
    });
    const status = create(cri.ContainerStatusSchema, {
      id: 'c1',
      state: cri.ContainerState.CONTAINER_EXITED,
      exitCode: 137,
      finishedAt: 9_000_000n,
      reason: 'Error',
    });
    expect(observedContainer(item, status)).toMatchObject({
      podUid: 'u-1',
      name: 'main',
      state: 'exited',
      exitCode: 137,
      restartCount: 4,
      finishedAtMs: 9,
      hash: containerHash(pod.containers[0]!),
    });
  });
});
