/** The pod's managed /etc/hosts through the reconciler: in-memory runtime, real desired store and VolumeManager (temp dir). */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { desiredSubjects, edge, encode } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { DesiredStore } from '../desired/store.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import type { ContainerCreateOptions } from '../runtime/types.js';
import { StatusReporter } from '../status/reporter.js';
import { ManualClock, podSpec, silentLogger } from '@edgefarm/testing';
import { VolumeManager } from '../volumes/manager.js';
import { FakeMounter } from '../volumes/mounter.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { managedHostsContent, nodeHostsContent, podHostNameAndDomain } from './hosts.js';

const NODE = 'n1';
let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-hosts-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function setup(nodeHostsPath?: string) {
  const clock = new ManualClock();
  const runtime = new MemoryPodRuntime({ clock, recordCalls: true });
  const log = silentLogger();
  let reconciler: Reconciler | undefined;
  const store = new DesiredStore(NODE, log, (k) => reconciler?.enqueue(k));
  const volumes = new VolumeManager({ root, mounter: new FakeMounter(), objects: store, log, nodeHostsPath });
  await volumes.start();
  const status = new StatusReporter({ wireId: NODE, outbox: new FakeOutbox(), clock, log });
  reconciler = new Reconciler(
    { runtime, desired: store, status, clock, log, volumes },
    { nodeIp: '192.168.0.9', restartBackoffBaseMs: 1000 },
  );
  store.markSynced();
  let seq = 0;
  const put = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: encode(edge.EdgePodSpecSchema, spec) });
  const creates = () =>
    runtime.calls
      .filter((c) => c.method === 'createContainer')
      .map((c) => ({ name: c.args[1] as string, options: c.args[2] as ContainerCreateOptions }));
  return { runtime, reconciler, put, creates };
}

const hostsMountOf = (o: ContainerCreateOptions) => o.mounts?.find((m) => m.containerPath === '/etc/hosts');

describe('managed /etc/hosts (kubelet makeHostsMount)', () => {
  it('mounts the managed hosts file at /etc/hosts of every container, except one that mounts /etc/hosts itself', async () => {
    const t = await setup();
    const pod = podSpec({
      name: 'web-1',
      hostname: 'web-1',
      hostAliases: [{ ip: '123.45.67.89', hostnames: ['foo.remote', 'bar.remote'] }],
      volumes: [{ name: 'h', source: { case: 'hostPath', value: { path: '/etc/hosts', type: '' } } }],
      containers: [
        { name: 'busybox-1', image: 'docker.io/edgefarm/busybox:1.35' },
        { name: 'busybox-3', image: 'docker.io/edgefarm/busybox:1.35', volumeMounts: [{ name: 'h', mountPath: '/etc/hosts' }] },
      ],
    });
    t.put(pod);
    await t.reconciler.sync(`${pod.namespace}/${pod.name}`);
    const [one, three] = t.creates();
    const mount = hostsMountOf(one!.options);
    expect(mount).toMatchObject({ containerPath: '/etc/hosts', readOnly: false });
    const content = await readFile(mount!.hostPath, 'utf8');
    expect(content.startsWith('# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n')).toBe(true);
    expect(content).toMatch(/\n\d+\.\d+\.\d+\.\d+\tweb-1\n/);
    expect(content.endsWith('\n# Entries added by HostAliases.\n123.45.67.89\tfoo.remote\tbar.remote\n')).toBe(true);
    expect(three!.options.mounts!.filter((m) => m.containerPath === '/etc/hosts')).toEqual([
      expect.objectContaining({ hostPath: '/etc/hosts' }),
    ]);
  });

  it('gives a hostNetwork pod the node hosts file under the host-network header, then its aliases', async () => {
    const nodeHosts = path.join(root, 'node-hosts');
    await writeFile(nodeHosts, '127.0.0.1\tlocalhost\n10.0.0.1\tsite-gw\n');
    const t = await setup(nodeHosts);
    const pod = podSpec({ hostNetwork: true, hostAliases: [{ ip: '1.2.3.4', hostnames: ['a'] }] });
    t.put(pod);
    await t.reconciler.sync(`${pod.namespace}/${pod.name}`);
    const mount = hostsMountOf(t.creates()[0]!.options);
    expect(await readFile(mount!.hostPath, 'utf8')).toBe(
      '# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n10.0.0.1\tsite-gw\n\n# Entries added by HostAliases.\n1.2.3.4\ta\n',
    );
  });
});

describe('hosts content (kubelet managedHostsFileContent, nodeHostsFileContent)', () => {
  it('writes the localhost lines, the pod IPs with hostname and FQDN, then the aliases', () => {
    expect(
      managedHostsContent(['10.1.2.3', 'fd00::3'], 'web', 'sub.ns.svc.cluster.local', [{ ip: '1.1.1.1', hostnames: ['x', 'y'] }]),
    ).toBe(
      '# Kubernetes-managed hosts file.\n' +
        '127.0.0.1\tlocalhost\n' +
        '::1\tlocalhost ip6-localhost ip6-loopback\n' +
        'fe00::0\tip6-localnet\n' +
        'fe00::0\tip6-mcastprefix\n' +
        'fe00::1\tip6-allnodes\n' +
        'fe00::2\tip6-allrouters\n' +
        '10.1.2.3\tweb.sub.ns.svc.cluster.local\tweb\n' +
        'fd00::3\tweb.sub.ns.svc.cluster.local\tweb\n' +
        '\n# Entries added by HostAliases.\n1.1.1.1\tx\ty\n',
    );
    expect(managedHostsContent(['10.1.2.3'], 'web', '', []).endsWith('fe00::2\tip6-allrouters\n10.1.2.3\tweb\n')).toBe(true);
    expect(nodeHostsContent('', [])).toBe('# Kubernetes-managed hosts file (host network).\n');
  });

  it('names the pod by its hostname (else its name, 63 characters at most) and subdomain', () => {
    expect(podHostNameAndDomain(podSpec({ name: 'p', namespace: 'ns', hostname: 'h', subdomain: 's' }))).toEqual({
      hostname: 'h',
      domain: 's.ns.svc.cluster.local',
    });
    expect(podHostNameAndDomain(podSpec({ name: 'p', hostname: '' }))).toEqual({ hostname: 'p', domain: '' });
  });
});
