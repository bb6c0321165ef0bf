/**
 * The managed /etc/hosts and the pod's sysctls against a real containerd: the file each container sees (the kubelet's
 * content, hostAliases at the end; a container mounting /etc/hosts itself keeps its own), and the sysctls set on the
 * sandbox as seen from inside.
 */
import { readFile } from 'node:fs/promises';
import { edge } from '@edgefarm/proto';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let watcher: StatusWatcher;
let bed: AgentBed;

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
const idOf = (r: edge.PodStatusReport, name: string) =>
  r.containerStatuses.find((c) => c.name === name)!.containerId.replace(/^containerd:\/\//, '');
const cat = async (id: string, file: string) => (await bed.exec(id, ['cat', file])).out;

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

it(
  'every container sees the managed /etc/hosts but the one that mounts its own; the sysctls are set in the pod',
  async () => {
    const pod = podSpec({
      hostname: 'web-1',
      hostAliases: [{ ip: '123.45.67.89', hostnames: ['foo.remote', 'bar.remote'] }],
      sysctls: { 'kernel.shm_rmid_forced': '1', 'net.ipv4.ip_local_port_range': '2048 60999' },
      volumes: [{ name: 'h', source: { case: 'hostPath', value: { path: '/etc/hosts', type: '' } } }],
      containers: [
        { name: 'one', image: BUSYBOX, command: ['sleep', '3600'] },
        { name: 'three', image: BUSYBOX, command: ['sleep', '3600'], volumeMounts: [{ name: 'h', mountPath: '/etc/hosts' }] },
      ],
    });
    await publishDesired(site.hubNc, site.node, pod);
    const { report } = await watcher.waitFor(pod.uid, running);
    const managed = await cat(idOf(report, 'one'), '/etc/hosts');
    expect(managed.startsWith('# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n')).toBe(true);
    expect(managed).toContain(`\n${report.podIp}\tweb-1\n`);
    expect(managed.endsWith('\n# Entries added by HostAliases.\n123.45.67.89\tfoo.remote\tbar.remote\n')).toBe(true);
    expect(await cat(idOf(report, 'three'), '/etc/hosts')).toBe(await readFile('/etc/hosts', 'utf8'));
    expect((await cat(idOf(report, 'one'), '/proc/sys/kernel/shm_rmid_forced')).trim()).toBe('1');
    expect((await cat(idOf(report, 'one'), '/proc/sys/net/ipv4/ip_local_port_range')).trim().split(/\s+/)).toEqual(['2048', '60999']);
    await publishTombstone(site.hubNc, site.node, pod);
  },
  T,
);
