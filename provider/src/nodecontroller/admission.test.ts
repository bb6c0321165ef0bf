import { create, fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { FakeKubeClient } from '../kube/fake.js';
import { ProviderMetrics } from '../metrics/metrics.js';
import { condition, heartbeat, nodeControllers, policy } from './testing.js';

/** A heartbeat of edge-1 with `fields` set over the fixture's (as decoded: every field of every message present). */
function hostile(fields: MessageInitShape<typeof edge.NodeHeartbeatSchema>) {
  const { $typeName: _, ...base } = heartbeat();
  return fromBinary(edge.NodeHeartbeatSchema, toBinary(edge.NodeHeartbeatSchema, create(edge.NodeHeartbeatSchema, { ...base, ...fields })));
}

describe('NodeController: what of a heartbeat reaches the Node', () => {
  let clock = new Date('2026-12-07T10:00:00Z').getTime();
  const { controller, add, stopAll } = nodeControllers(() => new Date(clock));
  afterEach(() => stopAll());

  async function served(extra = {}) {
    const kube = new FakeKubeClient();
    const rejected: string[] = [];
    const c = controller(kube, { rejected: (reason: string) => rejected.push(reason), ...extra });
    await add(c.ctl, policy());
    return { kube, rejected, ...c };
  }

  it("refuses a heartbeat whose node_name is another node's", async () => {
    const { kube, ctl, facts, rejected } = await served();
    ctl.onHeartbeat('edge-1', hostile({ nodeName: 'edge-2' }), clock);
    await ctl.drained();
    expect(facts.last('edge-1')).toBeUndefined();
    expect(condition(kube, 'Ready').status).toBe('False');
    expect(rejected).toEqual(['node-name']);
  });

  it('copies only the standard resources within bounds to capacity and allocatable; no extended resource', async () => {
    const { kube, ctl, facts, rejected } = await served();
    const resources = {
      cpu: '4',
      memory: '8Gi',
      pods: '110',
      'ephemeral-storage': '100Gi',
      'hugepages-2Mi': '0',
      'example.com/gpu': '1000',
      'nvidia.com/gpu': '8',
    };
    ctl.onHeartbeat('edge-1', hostile({ capacity: resources, allocatable: resources }), clock);
    await ctl.drained();
    const status = kube.nodes.get('edge-1')!.status!;
    const want = { cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi', 'hugepages-2Mi': '0' };
    expect(status.capacity).toEqual(want);
    expect(status.allocatable).toEqual(want);
    expect(facts.allocatable('edge-1')).not.toHaveProperty('example.com/gpu');
    expect(rejected).toEqual(['resource-name', 'resource-name', 'resource-name', 'resource-name']);
  });

  it('refuses resource values that are no quantity or out of bounds, keeping the last accepted value', async () => {
    const { kube, ctl, rejected } = await served();
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    const bad = { cpu: '1e9', memory: '-1Ki', pods: 'lots' };
    ctl.onHeartbeat('edge-1', hostile({ capacity: bad, allocatable: bad }), clock + 1);
    await ctl.drained();
    expect(kube.nodes.get('edge-1')!.status!.capacity).toEqual({ cpu: '2', memory: '1024Ki', pods: '110' });
    expect(rejected).toEqual(Array<string>(6).fill('resource-value'));
  });

  it('takes valid addresses of the known types only, at most 16', async () => {
    const { ctl, facts, rejected } = await served();
    ctl.onHeartbeat(
      'edge-1',
      hostile({
        addresses: [
          { type: 'InternalIP', address: 'not an ip; rm -rf /' },
          { type: 'Evil', address: '10.0.0.1' },
          { type: 'InternalIP', address: '10.201.1.9' },
          ...Array.from({ length: 40 }, (_, i) => ({ type: 'ExternalIP', address: `192.0.2.${i}` })),
        ],
      }),
      clock,
    );
    await ctl.drained();
    expect(facts.hostIP('edge-1')).toBe('10.201.1.9');
    expect(facts.last('edge-1')!.heartbeat.addresses).toHaveLength(16);
    expect(rejected.filter((r) => r === 'address')).toHaveLength(2);
    expect(rejected.filter((r) => r === 'too-many')).toHaveLength(1);
  });

  it('bounds the node info, the image list and the names in it', async () => {
    const { kube, ctl } = await served();
    ctl.onHeartbeat(
      'edge-1',
      hostile({
        agentVersion: 'v'.repeat(10_000),
        systemInfo: { kernelVersion: 'k'.repeat(100_000), osImage: 'Debian\u0000\u001b[31m', architecture: 'arm64' },
        images: Array.from({ length: 500 }, (_, i) => ({
          names: Array.from({ length: 100 }, (_, j) => `registry.example/${'x'.repeat(j * 100)}${i}:${j}`),
          sizeBytes: 1n,
        })),
      }),
      clock,
    );
    await ctl.drained();
    const status = kube.nodes.get('edge-1')!.status!;
    expect(status.nodeInfo!.kernelVersion).toBe('');
    expect(status.nodeInfo!.osImage).toBe('');
    expect(status.nodeInfo!.architecture).toBe('arm64');
    expect(status.nodeInfo!.kubeletVersion.length).toBeLessThan(100);
    expect(status.images!.length).toBeLessThanOrEqual(50);
    for (const image of status.images!) {
      expect(image.names!.length).toBeLessThanOrEqual(8);
      for (const n of image.names!) expect(n.length).toBeLessThanOrEqual(512);
    }
  });

  it('cuts a long image list to 50 without calling it a refusal (the kubelet reports 50)', async () => {
    const { kube, ctl, rejected } = await served();
    const images = Array.from({ length: 80 }, (_, i) => ({ names: [`registry.example/app:${i}`], sizeBytes: BigInt(i) }));
    ctl.onHeartbeat('edge-1', hostile({ images }), clock);
    await ctl.drained();
    expect(kube.nodes.get('edge-1')!.status!.images).toHaveLength(50);
    expect(rejected).toEqual([]);
    expect(kube.events).toEqual([]);
  });

  it('takes the standard conditions only, each once, and bounds their reason and message', async () => {
    const { kube, ctl, facts, rejected } = await served();
    ctl.onHeartbeat(
      'edge-1',
      hostile({
        conditions: [
          { type: 'Ready', status: 'False', reason: 'CNINotReady', message: 'm'.repeat(5000) },
          { type: 'Ready', status: 'True' },
          { type: 'EdgeConnected', status: 'True' },
          { type: 'DiskPressure', status: 'Maybe' },
          { type: 'PIDPressure', status: 'False', reason: 'has spaces' },
        ],
      }),
      clock,
    );
    await ctl.drained();
    expect(facts.last('edge-1')!.heartbeat.conditions.map((c) => c.type)).toEqual(['Ready']);
    expect(condition(kube, 'Ready')).toMatchObject({ status: 'False', reason: 'CNINotReady' });
    expect(condition(kube, 'Ready').message!.length).toBeLessThanOrEqual(1024);
    expect(rejected.sort()).toEqual(['condition', 'condition', 'condition', 'condition', 'string'].sort());
  });

  it('tells the user with a Warning Event on the Node, at most one per node per interval', async () => {
    const { kube, ctl } = await served({ rejectEventIntervalMs: 600_000 });
    const gpu = hostile({ capacity: { ...heartbeat().capacity, 'example.com/gpu': '1000' } });
    ctl.onHeartbeat('edge-1', gpu, clock);
    await ctl.drained();
    ctl.onHeartbeat('edge-1', gpu, clock + 5_000);
    await ctl.drained();
    expect(kube.events).toHaveLength(1);
    const [e] = kube.events;
    expect(e).toMatchObject({
      type: 'Warning',
      reason: 'HeartbeatRejected',
      involvedObject: { kind: 'Node', name: 'edge-1' },
    });
    expect(e!.message).toContain('capacity["example.com/gpu"]');
    clock += 600_000;
    ctl.onHeartbeat('edge-1', gpu, clock);
    await ctl.drained();
    expect(kube.events).toHaveLength(2);
  });

  it('counts what it refused in edgefarm_provider_heartbeat_rejected_total{reason}', async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false });
    const { ctl } = await served({
      rejected: (reason: Parameters<ProviderMetrics['heartbeatRejected']>[0]) => metrics.heartbeatRejected(reason),
    });
    expect(await metrics.text()).toContain('edgefarm_provider_heartbeat_rejected_total{reason="resource-name"} 0\n');
    ctl.onHeartbeat('edge-1', hostile({ capacity: { 'example.com/gpu': '1' } }), clock);
    ctl.onHeartbeat('edge-1', hostile({ nodeName: 'edge-2' }), clock);
    await ctl.drained();
    const text = await metrics.text();
    expect(text).toContain('edgefarm_provider_heartbeat_rejected_total{reason="resource-name"} 1\n');
    expect(text).toContain('edgefarm_provider_heartbeat_rejected_total{reason="node-name"} 1\n');
  });

  it('reports the pressure conditions the agent sends (DiskPressure), False while it sends none', async () => {
    const { kube, ctl } = await served();
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(condition(kube, 'DiskPressure')).toMatchObject({ status: 'False', reason: 'EdgeAgentHasNoDiskPressure' });
    const conditions = [...heartbeat().conditions, { type: 'DiskPressure', status: 'True', reason: 'ImageFsFull', message: '95 % used' }];
    ctl.onHeartbeat('edge-1', hostile({ conditions }), clock + 1);
    await ctl.drained();
    expect(condition(kube, 'DiskPressure')).toMatchObject({ status: 'True', reason: 'ImageFsFull', message: '95 % used' });
  });
});
