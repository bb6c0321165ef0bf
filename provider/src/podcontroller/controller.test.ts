import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pod, podControllerBed, runningReport as running } from './testing.js';
import type { PodWarnings } from './warnings.js';

const setup = () => podControllerBed();

describe('PodController', () => {
  it('publishes pods of its nodes only, once per spec change', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    kube.emitPod(pod({ nodeName: 'other-node' }, { name: 'elsewhere', uid: 'u2' }));
    await ctl.drained();
    expect(bus.published.map((p) => `${p.node}/${p.spec.name}`)).toEqual(['edge-1/web-1']);
    kube.emitPod(pod()); // same spec, new resourceVersion (e.g. a status write): nothing to publish
    await ctl.drained();
    expect(bus.published).toHaveLength(1);
    kube.emitPod(pod({ containers: [{ name: 'c', image: 'new' }] }));
    await ctl.drained();
    expect(bus.published).toHaveLength(2);
    await ctl.stop();
  });

  it("sends the kubelet's service environment variables; a Service change republishes the pods of its namespace, their containers unchanged", async () => {
    const { kube, bus, ctl, membership } = setup();
    const svc = (namespace: string, name: string, clusterIP: string) => ({
      metadata: { namespace, name },
      spec: { clusterIP, ports: [{ name: 'https', port: 443, protocol: 'TCP' }] },
    });
    kube.services.set(svc('default', 'kubernetes', '10.96.0.1'));
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    kube.emitPod(pod({}, { name: 'other-ns', namespace: 'other', uid: 'u2' }));
    await ctl.drained();
    const envOf = (i: number) => Object.fromEntries(bus.published[i]!.spec.serviceEnv.map((e) => [e.name, e.value]));
    expect(bus.published).toHaveLength(2);
    expect(envOf(0)).toMatchObject({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_PORT: 'tcp://10.96.0.1:443' });

    kube.services.set(svc('default', 'web', '10.96.0.20'));
    await ctl.drained();
    expect(bus.published).toHaveLength(3); // default/web-1 only: other/other-ns does not see default's Services
    expect(bus.published[2]!.spec.name).toBe('web-1');
    expect(envOf(2)).toMatchObject({ WEB_SERVICE_HOST: '10.96.0.20', KUBERNETES_SERVICE_HOST: '10.96.0.1' });
    expect(bus.published[2]!.spec.containers).toEqual(bus.published[0]!.spec.containers);

    kube.services.set({ ...svc('default', 'web', '10.96.0.20'), metadata: { namespace: 'default', name: 'web', labels: { a: 'b' } } });
    await ctl.drained();
    expect(bus.published).toHaveLength(3); // same variables: nothing published
    await ctl.stop();
  });

  it('delivers the ConfigMap and Secret of a pod that uses them only through envFrom (node conformance), before the pod', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'cm' }, data: { 'data-1': 'value-1' } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 's' }, data: { 'data-1': Buffer.from('value-1').toString('base64') } });
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(
      pod({
        restartPolicy: 'Never',
        containers: [
          {
            name: 'env-test',
            image: 'busybox',
            command: ['sh', '-c', 'env'],
            envFrom: [{ configMapRef: { name: 'cm' } }, { prefix: 'p-', configMapRef: { name: 'cm' } }, { secretRef: { name: 's' } }],
          },
        ],
      }),
    );
    await ctl.drained();
    const dec = new TextDecoder();
    expect(bus.objects.map((o) => [o.kind, o.object.name, dec.decode(o.object.data['data-1'])])).toEqual([
      ['configmap', 'cm', 'value-1'],
      ['secret', 's', 'value-1'],
    ]);
    expect(bus.published).toHaveLength(1);
    await ctl.stop();
  });

  it('finishes a graceful delete only after the edge confirms removal', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    await ctl.drained();
    kube.emitPod(pod({}, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 5 }));
    await ctl.drained();
    expect(bus.published.at(-1)!.spec.deleting).toBe(true);
    expect(kube.calls.some((c) => c.startsWith('deletePod'))).toBe(false);
    ctl.onReport('edge-1', running('uid-1', 2n, { removed: true, phase: edge.PodPhase.SUCCEEDED }));
    await ctl.drained();
    expect(kube.calls).toContain('deletePod default/web-1 grace=0');
    expect(bus.forgotten).toEqual(['edge-1/uid-1']);
    await ctl.stop();
  });

  it('publishes a tombstone when a pod disappears (force delete)', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    await ctl.drained();
    kube.emitDelete('default', 'web-1');
    await ctl.drained();
    expect(bus.tombstones).toEqual([{ node: 'edge-1', key: { namespace: 'default', name: 'web-1' } }]);
    await ctl.stop();
  });

  it('after a restart, republishes nothing unchanged and tombstones only pods gone from the API', async () => {
    const { kube, bus, ctl, membership, sequences } = setup();
    const stored = kube.emitPod(pod());
    const { translatePod } = await import('./translate.js');
    const t = translatePod(stored);
    if (!t.ok) throw new Error('bad fixture');
    await ctl.start();
    await membership.take(
      ['edge-1'],
      [
        { node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'web-1' }, spec: t.spec, seq: 4 },
        {
          node: 'edge-1',
          kind: 'pod',
          key: { namespace: 'default', name: 'gone' },
          spec: { ...t.spec, name: 'gone', uid: 'uid-gone' },
          seq: 7,
        },
      ],
    );
    await ctl.drained();
    expect(bus.published).toHaveLength(0);
    expect(bus.tombstones).toEqual([{ node: 'edge-1', key: { namespace: 'default', name: 'gone' } }]);
    expect(sequences.sequence('edge-1')).toBe(7); // seeded from the hub; the fake's own tombstone sequence (1) is lower
    expect(sequences.sequence('edge-2')).toBeUndefined();
    await ctl.stop();
  });

  it('publishes a pod again when an ephemeral container is added (the subresource: a new generation), its containers unchanged; one the edge refuses is an Event, the pod keeps running', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod({}, { generation: 1 }));
    await ctl.drained();
    const debug = { name: 'debugger', image: 'busybox', stdin: true, tty: true, targetContainerName: 'c' };
    kube.emitPod(pod({ ephemeralContainers: [debug] }, { generation: 2, resourceVersion: '8' }));
    await ctl.drained();
    expect(bus.published).toHaveLength(2);
    const [first, second] = [bus.published[0]!.spec, bus.published[1]!.spec];
    expect(second.generation).toBe(2n);
    expect(second.ephemeralContainers.map((c) => [c.name, c.targetContainerName])).toEqual([['debugger', 'c']]);
    expect(second.containers).toEqual(first.containers);

    kube.emitPod(
      pod({ ephemeralContainers: [debug, { name: 'debugger2', image: 'i', ports: [{ containerPort: 80 }] }] }, { generation: 3 }),
    );
    await ctl.drained();
    expect(bus.published.map((p) => p.spec.ephemeralContainers.map((c) => c.name))).toEqual([[], ['debugger'], ['debugger']]);
    expect(kube.events.map((e) => [e.reason, e.message])).toEqual([
      [
        'EdgeUnsupported',
        'ephemeral container not started at the edge: ephemeralContainers[debugger2].ports: not allowed in an ephemeral container',
      ],
    ]);
    expect(kube.pods.get('default/web-1')?.status?.phase).not.toBe('Failed');
    await ctl.stop();
  });

  it('rejects an unsupported pod with a Failed status and one Event', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod({ volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'c' } }] }));
    await ctl.drained();
    kube.emitPod(kube.pods.get('default/web-1')!);
    await ctl.drained();
    expect(bus.published).toHaveLength(0);
    expect(kube.pods.get('default/web-1')!.status).toMatchObject({ phase: 'Failed', reason: 'EdgeUnsupported' });
    expect(kube.events.map((e) => e.reason)).toEqual(['EdgeUnsupported']);
    expect(kube.events[0]!.message).toMatch(/volumes\[d\]/);
    await ctl.stop();
  });

  it('rejects at admission as the kubelet: an unsafe sysctl (SysctlForbidden), another OS (PodOSNotSupported)', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '10000000000' }] } }));
    kube.emitPod(pod({ os: { name: 'windows' } }, { name: 'web-2', uid: 'uid-2' }));
    await ctl.drained();
    expect(bus.published).toHaveLength(0);
    expect(kube.pods.get('default/web-1')!.status).toMatchObject({
      phase: 'Failed',
      reason: 'SysctlForbidden',
      message: 'forbidden sysctl: "kernel.msgmax" not allowlisted',
    });
    expect(kube.pods.get('default/web-2')!.status).toMatchObject({ phase: 'Failed', reason: 'PodOSNotSupported' });
    expect(kube.events.map((e) => e.reason).sort()).toEqual(['PodOSNotSupported', 'SysctlForbidden']);
    await ctl.stop();
  });

  it("admits an unsafe sysctl its node's EdgeNode allows (spec.allowedUnsafeSysctls, the kubelet's allowedUnsafeSysctls)", async () => {
    const { kube, bus, ctl, membership, facts } = setup();
    facts.setAllowedUnsafeSysctls('edge-1', ['kernel.msg*']);
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '65536' }] } }));
    await ctl.drained();
    expect(kube.pods.get('default/web-1')!.status?.phase).not.toBe('Failed');
    expect(bus.published[0]!.spec.sysctls).toEqual({ 'kernel.msgmax': '65536' });
    await ctl.stop();
  });

  it('publishes a pod with safe sysctls, carrying them to the edge', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod({ securityContext: { sysctls: [{ name: 'kernel/shm_rmid_forced', value: '1' }] } }));
    await ctl.drained();
    expect(kube.pods.get('default/web-1')!.status?.phase).not.toBe('Failed');
    expect(bus.published).toHaveLength(1);
    expect(bus.published[0]!.spec.sysctls).toEqual({ 'kernel.shm_rmid_forced': '1' });
    await ctl.stop();
  });

  it('retries a failed publish', async () => {
    const { kube, bus, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    bus.failNextPublish = new Error('no responders');
    kube.emitPod(pod());
    await ctl.drained();
    await new Promise((r) => setTimeout(r, 300));
    await ctl.drained();
    expect(bus.published).toHaveLength(1);
    await ctl.stop();
  });

  it('a node handed over is forgotten without tombstones; a node whose EdgeNode was deleted gets a tombstone per pod', async () => {
    const { kube, bus, ctl, membership, sequences } = setup();
    await ctl.start();
    kube.emitPod(pod());
    await membership.take(['edge-1']);
    await ctl.drained();
    expect(bus.published).toHaveLength(1);

    await membership.release('edge-1', 'handed-over');
    kube.emitDelete('default', 'web-1'); // the new owner's business now
    await ctl.drained();
    expect(bus.tombstones).toHaveLength(0);

    // Taken back later: what is on the hub seeds what was published, so nothing is republished.
    const again = kube.emitPod(pod());
    const spec = bus.published[0]!.spec;
    await membership.take(['edge-1'], [{ node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'web-1' }, spec, seq: 7 }]);
    await ctl.drained();
    expect(bus.published).toHaveLength(1);
    expect(sequences.sequence('edge-1')).toBe(7);
    expect(again.metadata!.uid).toBe(spec.uid);

    await membership.release('edge-1', 'deleted');
    await ctl.drained();
    expect(bus.tombstones.map((t) => `${t.node}/${t.key.name}`)).toEqual(['edge-1/web-1']);
    await ctl.stop();
  });

  it('applies the reports of served nodes only', async () => {
    const { kube, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    await ctl.drained();
    ctl.onReport('other-node', running('uid-1', 9n, { phase: edge.PodPhase.FAILED }));
    await ctl.drained();
    expect(kube.calls.some((c) => c.startsWith('replacePodStatus'))).toBe(false);
    ctl.onReport('edge-1', running('uid-1', 5n));
    await ctl.drained();
    expect(kube.pods.get('default/web-1')!.status!.phase).toBe('Running');
    await ctl.stop();
  });

  it("syncs a reconnected node's pods again: its reports are the authority again and the drift is put back", async () => {
    const { kube, ctl, membership, facts } = setup(); // no heartbeat: disconnected
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    ctl.onReport('edge-1', running('uid-1', 2n));
    await ctl.drained();
    const writes = () => kube.calls.filter((c) => c.startsWith('replacePodStatus')).length;
    const after = writes();
    const current = kube.pods.get('default/web-1')!;
    kube.emitPod({ ...current, status: { ...current.status, conditions: [{ type: 'Ready', status: 'False', reason: 'NodeNotReady' }] } });
    await ctl.drained();
    expect(writes()).toBe(after); // disconnected: a report is applied once
    facts.record('edge-1', create(edge.NodeHeartbeatSchema, { nodeName: 'edge-1' }), Date.now());
    facts.connectivityChanged('edge-1', true); // as the NodeController announces a reconnect
    await ctl.drained();
    expect(writes()).toBe(after + 1);
    expect(kube.pods.get('default/web-1')!.status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
    await ctl.stop();
  });

  it('records a rejection Event once per pod, and afresh for a new pod of the same name once the old one is gone', async () => {
    const { kube, ctl, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    const unsupported = { volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'c' } }] };
    kube.emitPod(pod(unsupported));
    await ctl.drained();
    kube.emitPod(kube.pods.get('default/web-1')!);
    await ctl.drained();
    expect(kube.events.map((e) => e.reason)).toEqual(['EdgeUnsupported']);
    const warnings = (ctl as unknown as { warnings: PodWarnings }).warnings;
    expect(warnings.size).toBe(1);
    kube.emitDelete('default', 'web-1');
    await ctl.drained();
    expect(warnings.size).toBe(0); // nothing kept of a pod gone from the API
    kube.emitPod(pod(unsupported, { uid: 'uid-2' }));
    await ctl.drained();
    expect(kube.events.map((e) => `${e.reason} ${e.involvedObject.uid}`)).toEqual(['EdgeUnsupported uid-1', 'EdgeUnsupported uid-2']);
    await ctl.stop();
  });

  it('publishes everything again under a new wire id (pod, ConfigMap, Secret, a new token), deleting and tombstoning nothing', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.configMaps.set({ metadata: { namespace: 'default', name: 'app' }, data: { 'a.conf': 'x=1' } });
    kube.secrets.set({ metadata: { namespace: 'default', name: 'db' }, data: {} });
    const { configured, withToken } = await import('./testing.js');
    const tokened = withToken();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(configured());
    kube.emitPod({ ...tokened, metadata: { ...tokened.metadata, name: 'web-2', uid: 'uid-2' } });
    await ctl.drained();
    const before = bus.log.length;
    const tokensBefore = kube.tokens.length;
    membership.rekey('edge-1', { from: 'edge-1', to: 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX' });
    await ctl.drained();
    const again = bus.log.slice(before).map((l) => l.replace(/@\d+$/, ''));
    expect(again.sort()).toEqual(
      [
        'configmap edge-1 default/app',
        'pod edge-1 default/web-1',
        'pod edge-1 default/web-2',
        'secret edge-1 default/db',
        'token edge-1 default/web-2',
      ].sort(),
    );
    expect(kube.tokens.length).toBe(tokensBefore + 1);
    expect(bus.tombstones).toEqual([]);
    expect(bus.objectTombstones).toEqual([]);
    expect(kube.calls.some((c) => c.startsWith('deletePod'))).toBe(false);
    await ctl.stop();
  });

  it('a pod published while the wire id changed is published again under the new one', async () => {
    const { kube, bus, ctl, membership } = setup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const publishPod = bus.publishPod.bind(bus);
    let calls = 0;
    bus.publishPod = async (node, spec) => {
      if (calls++ === 0) await gate;
      return publishPod(node, spec);
    };
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(pod());
    await new Promise((r) => setTimeout(r, 10)); // the first publish is on its way
    membership.rekey('edge-1', { from: 'edge-1', to: 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX' });
    release();
    await ctl.drained();
    expect(calls).toBe(2);
    await ctl.stop();
  });
});
