import { decodeNodeHeartbeat, outboxSubjects } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { ManualClock, silentLogger } from '@edgefarm/testing';
import { DiskPressureMonitor, type StatFs } from './disk-pressure.js';
import { Heartbeater } from './heartbeat.js';
import { parseOsRelease, type NodeInfoSource } from './node-info.js';

const WIRE_ID = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';

const nodeInfo: NodeInfoSource = {
  host: async () => ({
    machineId: 'm1',
    bootId: 'b1',
    kernelVersion: '6.1.0',
    osImage: 'Debian GNU/Linux 12 (bookworm)',
    operatingSystem: 'linux',
    architecture: 'amd64',
    cpus: 2,
    memoryBytes: 4 * 1024 ** 3,
  }),
  filesystemBytes: async () => 10 * 1024 ** 3,
};

/** A statfs of 1000 blocks of 4 KiB with `free` of them available, per path. */
function fakeStatfs(free: Record<string, number>): StatFs {
  return (p) => {
    const bavail = free[p];
    if (bavail === undefined) return Promise.reject(Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }));
    return Promise.resolve({ bsize: 4096, blocks: 1000, bavail });
  };
}

function setup(disk?: DiskPressureMonitor) {
  const runtime = new MemoryPodRuntime({ recordCalls: true });
  const outbox = new FakeOutbox();
  const clock = new ManualClock(1_700_000_000_000);
  const hb = new Heartbeater(
    {
      nodeName: 'n1',
      wireId: WIRE_ID,
      nodeIp: '10.0.0.5',
      agentVersion: '0.1.0',
      runtime,
      outbox,
      nodeInfo,
      appliedSequence: () => 17,
      podCount: () => 3,
      clock,
      log: silentLogger(),
      ...(disk ? { diskPressure: disk } : {}),
    },
    50,
  );
  return { runtime, outbox, hb };
}

describe('Heartbeater', () => {
  it("writes a complete heartbeat to the outbox subject of the node's wire id, naming the node", async () => {
    const { outbox, hb } = setup();
    await hb.beat();
    expect(outbox.published[0]!.subject).toBe(outboxSubjects.of(WIRE_ID, { kind: 'node' }));
    const m = decodeNodeHeartbeat(outbox.published[0]!.data);
    expect(m).toMatchObject({
      nodeName: 'n1',
      sentAtMs: 1_700_000_000_000n,
      agentVersion: '0.1.0',
      capacity: { cpu: '2', memory: '4194304Ki', pods: '110', 'ephemeral-storage': '10485760Ki' },
      appliedSequence: 17n,
      podCount: 3,
    });
    expect(m.allocatable).toEqual(m.capacity);
    expect(m.conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'True' })]);
    expect(m.systemInfo).toMatchObject({
      containerRuntimeVersion: 'memory://0.1.0',
      kernelVersion: '6.1.0',
      architecture: 'amd64',
      machineId: 'm1',
      bootId: 'b1',
    });
    expect(m.addresses.map((a) => [a.type, a.address])).toEqual([
      ['InternalIP', '10.0.0.5'],
      ['Hostname', 'n1'],
    ]);
    expect(m.images[0]!.names).toEqual(['registry.k8s.io/pause:3.6']);
  });

  it('reports Ready False when the runtime says the network is not ready, or is unreachable', async () => {
    const { runtime, hb } = setup();
    runtime.healthValue = { runtimeReady: true, networkReady: false, message: 'cni config uninitialized' };
    expect((await hb.build()).conditions[0]).toMatchObject({
      status: 'False',
      reason: 'NetworkNotReady',
      message: 'cni config uninitialized',
    });
    runtime.failNext('health');
    expect((await hb.build()).conditions[0]).toMatchObject({ status: 'False', reason: 'RuntimeUnavailable' });
  });

  it('reports DiskPressure True when a node or the image filesystem runs short, and runs the reclaim once', async () => {
    const free: Record<string, number> = { '/state': 500, '/var/log/pods': 500, '/images': 500 };
    const pressures: string[] = [];
    const disk = new DiskPressureMonitor({
      nodefs: ['/state', '/var/log/pods/not-yet'],
      imagefs: () => Promise.resolve('/images'),
      statfs: fakeStatfs(free),
      log: silentLogger(),
      onPressure: (c) => pressures.push(c.message),
    });
    const { hb } = setup(disk);
    const condition = async () => (await hb.build()).conditions.find((c) => c.type === 'DiskPressure');
    expect(await condition()).toMatchObject({ status: 'False', reason: 'EdgeAgentHasNoDiskPressure' });
    free['/var/log/pods'] = 99; // 9.9 % available (the pod log root's parent: the root itself does not exist yet)
    expect(await condition()).toMatchObject({
      status: 'True',
      reason: 'EdgeAgentHasDiskPressure',
      message: 'edge-agent has disk pressure: nodefs /var/log/pods/not-yet: 9.9% available, below 10%',
    });
    free['/var/log/pods'] = 500;
    free['/images'] = 149; // imagefs: 15 %
    expect((await condition())?.message).toBe('edge-agent has disk pressure: imagefs /images: 14.9% available, below 15%');
    expect(pressures).toHaveLength(1);
    free['/images'] = 150;
    expect(await condition()).toMatchObject({ status: 'False' });
    expect((await hb.build()).conditions.map((c) => c.type)).toEqual(['Ready', 'DiskPressure']);
  });

  it('beats on start and every interval; stop leaves no timer', async () => {
    const { outbox, hb } = setup();
    hb.start();
    await new Promise((r) => setTimeout(r, 130));
    await hb.stop();
    const n = outbox.published.length;
    expect(n).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 80));
    expect(outbox.published.length).toBe(n);
  });

  it('parses PRETTY_NAME from os-release', () => {
    expect(parseOsRelease('NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')).toBe('Debian GNU/Linux 12 (bookworm)');
    expect(parseOsRelease('')).toBe('');
  });
});
