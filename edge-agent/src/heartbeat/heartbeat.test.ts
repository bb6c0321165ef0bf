import { decodeNodeHeartbeat, outboxSubjects } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { ManualClock, silentLogger } from '@edgefarm/testing';
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

function setup() {
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
