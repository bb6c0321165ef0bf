import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import type * as k8s from '@kubernetes/client-node';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import { NodeController, type NodeControllerOptions } from './controller.js';
import { NodeFacts } from './facts.js';
import { policyOf, DEFAULT_TAINT, type NodePolicy } from './node.js';

const log = pino({ level: 'silent' });
const policy = (spec = {}) => policyOf({ metadata: { name: 'edge-1', uid: 'uid-en' }, spec }, [DEFAULT_TAINT]).policy;

function heartbeat() {
  return create(edge.NodeHeartbeatSchema, {
    nodeName: 'edge-1',
    agentVersion: '0.1.0',
    capacity: { cpu: '2', memory: '1024Ki', pods: '110' },
    allocatable: { cpu: '2', memory: '1024Ki', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True' }],
    addresses: [{ type: 'InternalIP', address: '10.201.1.2' }],
    systemInfo: { containerRuntimeVersion: 'containerd://1.6.20', operatingSystem: 'linux', architecture: 'amd64' },
  });
}

/** A condition of edge-1's Node as the (fake) API holds it. */
const condition = (kube: FakeKubeClient, type: string) => kube.nodes.get('edge-1')!.status!.conditions!.find((c) => c.type === type)!;

describe('NodeController', () => {
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  const now = () => new Date(clock);
  const running: NodeController[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.stop()));
  });
  /**
   * A controller on the fake API with a scan too slow to fire: tests drive `tick` (a scan, then the queued writes) and
   * `renew` (every Lease now) themselves. Status refresh 60 s here (5 min by default).
   */
  function controller(kube: FakeKubeClient, extra: Partial<NodeControllerOptions> = {}) {
    const facts = new NodeFacts({ now });
    const ctl = new NodeController({
      kube,
      log,
      facts,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      now,
      tickMs: 600_000,
      leaseRenewMs: 10_000,
      statusRefreshMs: 60_000,
      ...extra,
    });
    running.push(ctl);
    const internals = ctl as unknown as { scan(): void; renewLeases(): Promise<void> };
    return {
      ctl,
      facts,
      tick: async () => {
        internals.scan();
        await ctl.drained();
      },
      renew: () => internals.renewLeases(),
    };
  }
  /** Serves edge-1 with the policy as membership would (nothing to read back from a hub) and waits for its writes. */
  async function add(ctl: NodeController, p: NodePolicy): Promise<void> {
    ctl.taking({ nodes: [{ name: 'edge-1', policy: p }], desired: [] });
    ctl.taken(['edge-1']);
    await ctl.drained();
  }

  it('registers the node NotReady, turns Ready with a heartbeat, stays Ready but disconnected when they stop', async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts, tick } = controller(kube);
    ctl.start();
    await add(ctl, policy());
    const cond = (t: string) => condition(kube, t);
    expect(kube.nodes.get('edge-1')!.spec!.taints![0]!.key).toBe('edgefarm.io/edge');
    expect(cond('Ready').status).toBe('False');
    expect(kube.leases.get('kube-node-lease/edge-1')!.spec!.holderIdentity).toBe('edge-1');

    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(cond('Ready').status).toBe('True');
    expect(cond('EdgeConnected').status).toBe('True');
    expect(kube.nodes.get('edge-1')!.status!.capacity!.cpu).toBe('2');
    expect(facts.hostIP('edge-1')).toBe('10.201.1.2');

    clock += 60_000;
    await tick();
    expect(cond('EdgeConnected').status).toBe('False');
    expect(cond('Ready').status).toBe('True');
    expect(facts.connected('edge-1')).toBe(false);
  });

  it('announces each connectivity flip it observes through the node facts', async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts, tick } = controller(kube);
    const flips: string[] = [];
    facts.onConnectivity((node, connected) => flips.push(`${node} ${connected}`));
    await add(ctl, policy());
    expect(flips).toEqual(['edge-1 false']); // the first evaluation: no heartbeat yet
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    clock += 5_000;
    await tick();
    expect(flips).toEqual(['edge-1 false', 'edge-1 true']);
    clock += 60_000;
    await tick();
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(flips).toEqual(['edge-1 false', 'edge-1 true', 'edge-1 false', 'edge-1 true']);
  });

  it('calls a node disconnected 12 s after the hub stored its last heartbeat (the agent beats every 5 s)', async () => {
    const kube = new FakeKubeClient();
    const { ctl, tick } = controller(kube);
    ctl.start();
    await add(ctl, policy());
    const cond = () => condition(kube, 'EdgeConnected');
    const last = clock;
    ctl.onHeartbeat('edge-1', heartbeat(), last);
    await ctl.drained();
    clock = last + 12_000; // two missed beats: still within the window
    await tick();
    expect(cond().status).toBe('True');
    clock = last + 12_001;
    await tick();
    expect(cond().status).toBe('False');
  });

  it('mirrors connectivity into the EdgeNode status, and retries a missing EdgeNode only after a while', async () => {
    const kube = new FakeKubeClient();
    const { ctl, tick } = controller(kube, { desired: { sequence: () => 42 }, edgeNodeRetryMs: 30_000 });
    ctl.start();
    await add(ctl, policy());
    const hb = heartbeat();
    hb.podCount = 3;
    hb.appliedSequence = 9n;
    ctl.onHeartbeat('edge-1', hb, clock);
    await ctl.drained();
    const patches = () => kube.calls.filter((c) => c.startsWith('patchEdgeNodeStatus')).length;
    const missing = patches();
    expect(missing).toBeGreaterThan(0); // tried, no EdgeNode yet
    kube.edgeNodes.set('edge-1', { metadata: { name: 'edge-1' } });
    clock += 5_000;
    await tick();
    expect(patches()).toBe(missing); // within the retry interval: not asked again
    clock += 30_000;
    await tick();
    expect(kube.edgeNodes.get('edge-1')!.status).toMatchObject({
      connected: false,
      agentVersion: '0.1.0',
      podCount: 3,
      desiredSequence: 42,
      appliedSequence: 9,
    });
    ctl.onHeartbeat('edge-1', hb, clock);
    await ctl.drained();
    expect(kube.edgeNodes.get('edge-1')!.status!.connected).toBe(true);
    expect(kube.edgeNodes.get('edge-1')!.status!.lastHeartbeatTime).toBe(new Date(clock).toISOString().replace(/\.\d+Z$/, 'Z'));
    const before = patches();
    await tick(); // nothing changed: no write
    expect(patches()).toBe(before);
    clock += 10_000;
    ctl.onHeartbeat('edge-1', hb, clock); // only the heartbeat time moved: no write per heartbeat
    await ctl.drained();
    expect(patches()).toBe(before);
    clock += 60_000;
    ctl.onHeartbeat('edge-1', hb, clock); // the refresh interval passed: written, with the current time
    await ctl.drained();
    expect(patches()).toBe(before + 1);
    expect(kube.edgeNodes.get('edge-1')!.status!.lastHeartbeatTime).toBe(new Date(clock).toISOString().replace(/\.\d+Z$/, 'Z'));
  });

  it('ignores an older heartbeat than the one it has, and heartbeats of nodes it does not serve', async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts } = controller(kube);
    ctl.start();
    await add(ctl, policy());
    const hb = heartbeat();
    ctl.onHeartbeat('edge-1', hb, clock);
    const old = heartbeat();
    old.addresses = [{ $typeName: 'edgefarm.v1.NodeAddress', type: 'InternalIP', address: '1.1.1.1' }];
    ctl.onHeartbeat('edge-1', old, clock - 5000);
    expect(facts.hostIP('edge-1')).toBe('10.201.1.2');
    ctl.onHeartbeat('edge-2', hb, clock);
    expect(facts.lastHeartbeat('edge-2')).toBeUndefined();
  });

  it('recovers from a lease conflict on the next renewal', async () => {
    const kube = new FakeKubeClient();
    const { ctl, renew } = controller(kube);
    ctl.start();
    await add(ctl, policy());
    kube.failNext('replaceLease', Object.assign(new Error('conflict'), { code: 409 }));
    clock += 10_000;
    await renew();
    clock += 10_000;
    await renew();
    expect(kube.leases.get('kube-node-lease/edge-1')!.spec!.renewTime!.getTime()).toBe(clock);
  });

  it("applies the EdgeNode: labels and taints (keeping others' taints), reserved resources, owner", async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts } = controller(kube);
    ctl.start();
    await add(
      ctl,
      policy({ labels: { site: 'plant-a' }, taints: [{ key: 'gpu', effect: 'NoSchedule' }], reserved: { cpu: '500m', memory: 'lots' } }),
    );
    const node = () => kube.nodes.get('edge-1')!;
    expect(node().metadata!.labels!.site).toBe('plant-a');
    expect(node().metadata!.ownerReferences![0]).toMatchObject({ kind: 'EdgeNode', name: 'edge-1', uid: 'uid-en' });
    expect(node().spec!.taints!.map((t) => t.key)).toEqual(['edgefarm.io/edge', 'gpu']);
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(node().status!.allocatable).toMatchObject({ cpu: '1500m', memory: '1024Ki' }); // the bad quantity is ignored
    expect(facts.allocatable('edge-1')).toMatchObject({ cpu: '1500m', memory: '1024Ki' }); // what pods see too

    // The node lifecycle controller taints the node; the EdgeNode drops its label and taint.
    node().spec!.taints!.push({ key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' });
    ctl.policyChanged('edge-1', policy({ labels: { zone: 'z1' } }));
    await ctl.drained();
    expect(node().metadata!.labels).toMatchObject({ zone: 'z1', 'kubernetes.io/hostname': 'edge-1' });
    expect(node().metadata!.labels!.site).toBeUndefined();
    expect(
      node()
        .spec!.taints!.map((t) => t.key)
        .sort(),
    ).toEqual(['edgefarm.io/edge', 'node.kubernetes.io/unreachable']);
    expect(facts.allocatable('edge-1')).toMatchObject({ cpu: '2' }); // nothing reserved any more
  });

  it('autonomy evict: past evictAfterSeconds the provider goes silent for the node (no Lease, no status), like a lost kubelet', async () => {
    const kube = new FakeKubeClient();
    const { ctl, tick, renew } = controller(kube);
    ctl.start();
    await add(ctl, policy({ autonomy: { policy: 'evict', evictAfterSeconds: 120 } }));
    const ready = () => condition(kube, 'Ready');
    const writes = () => kube.calls.filter((c) => c.startsWith('patchNodeStatus') || c.startsWith('replaceLease')).length;
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(ready().status).toBe('True');
    clock += 60_000;
    await tick();
    await renew();
    expect(ready().status).toBe('True'); // disconnected, within the deadline: still renewed and Ready
    expect(ready().message).toMatch(/holds the node Ready for 120 s/);
    const before = writes();
    clock += 61_000;
    await tick();
    await renew();
    clock += 60_000;
    await tick();
    await renew();
    expect(writes()).toBe(before);
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    await renew();
    expect(writes()).toBeGreaterThan(before);
    expect(ready().message).toBe('edge agent is posting ready status');
  });

  it('autonomy evict: back from silence, the Node status is written again even if it looks unchanged since the last write', async () => {
    // evictAfterSeconds under the heartbeat staleness: silence starts the moment the link is seen down, so the last
    // status the provider wrote is the connected one, and the node lifecycle controller has since written Unknown.
    const kube = new FakeKubeClient();
    const { ctl, tick, renew } = controller(kube);
    ctl.start();
    await add(ctl, policy({ autonomy: { policy: 'evict', evictAfterSeconds: 5 } }));
    const ready = () => condition(kube, 'Ready');
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(ready().message).toBe('edge agent is posting ready status');
    clock += 20_000;
    await tick();
    await renew();
    expect(ready().message).toBe('edge agent is posting ready status'); // silenced without a write
    // The node lifecycle controller's write (on a copy: the provider's last-written status is its own object).
    kube.nodes.set('edge-1', structuredClone(kube.nodes.get('edge-1')!));
    Object.assign(ready(), { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
    clock += 20_000;
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(ready()).toMatchObject({ status: 'True', reason: 'EdgeAgentReady' });
  });

  it('a deleted Node is registered again only once no pod is bound to it (or after reregisterAfterMs)', async () => {
    const kube = new FakeKubeClient();
    let bound = 2;
    const { ctl, tick } = controller(kube, { pods: { count: () => bound } });
    ctl.start();
    await add(ctl, policy());
    kube.nodes.delete('edge-1');
    clock += 60_000;
    await tick(); // status write finds it gone
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(false);
    bound = 0;
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(true);
    kube.nodes.delete('edge-1');
    bound = 5;
    clock += 60_000;
    await tick();
    clock += 300_001;
    await tick();
    expect(kube.nodes.has('edge-1')).toBe(true);
  });

  it('a Node created meanwhile (409 AlreadyExists) is read again at once; a 409 Conflict is a failed write, retried later', async () => {
    const kube = new FakeKubeClient();
    const { ctl } = controller(kube);
    kube.failNext('createNode', new ApiError(409, 'nodes "edge-1" already exists', 'AlreadyExists'));
    await add(ctl, policy());
    expect(kube.calls.filter((c) => /^(getNode|createNode)/.test(c)).slice(0, 4)).toEqual([
      'getNode edge-1',
      'createNode edge-1',
      'getNode edge-1',
      'createNode edge-1',
    ]);
    expect(kube.nodes.has('edge-1')).toBe(true);

    const other = new FakeKubeClient();
    const { ctl: ctl2 } = controller(other);
    other.failNext('createNode', new ApiError(409, 'the object has been modified', 'Conflict'));
    await add(ctl2, policy());
    expect(other.calls.filter((c) => c.startsWith('createNode'))).toEqual(['createNode edge-1']);
    expect(other.nodes.has('edge-1')).toBe(false); // left to the work queue's backoff
    await new Promise((r) => setTimeout(r, 400));
    await ctl2.drained();
    expect(other.nodes.has('edge-1')).toBe(true);
  });

  it('taking over a Ready node writes it with its last heartbeat read back, never Ready False (no flap on failover)', async () => {
    const kube = new FakeKubeClient();
    await kube.createNode({
      metadata: { name: 'edge-1' },
      status: { conditions: [{ type: 'Ready', status: 'True', reason: 'EdgeAgentReady' }] },
    });
    const written: string[] = [];
    const patch = kube.patchNodeStatus.bind(kube);
    kube.patchNodeStatus = async (name, p) => {
      written.push((p as { status: k8s.V1NodeStatus }).status.conditions!.find((c) => c.type === 'Ready')!.status);
      return patch(name, p);
    };
    const { ctl } = controller(kube, { kubeletPort: { portOf: (node) => (node === 'edge-1' ? 10251 : 10250) } });
    ctl.start();
    ctl.taking({ nodes: [{ name: 'edge-1', policy: policy() }], desired: [] });
    await ctl.drained();
    expect(written).toEqual([]); // nothing written while the last heartbeat is read back
    ctl.onHeartbeat('edge-1', heartbeat(), clock); // read back from the hub
    ctl.taken(['edge-1']);
    await ctl.drained();
    expect(written).toEqual(['True']);
    expect(kube.nodes.get('edge-1')!.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(10251);
  });

  it('a node handed over is forgotten with its Node and Lease left; a deleted EdgeNode takes its managed Node along', async () => {
    const kube = new FakeKubeClient();
    const { ctl, facts, renew } = controller(kube);
    await add(ctl, policy());
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    const writes = kube.calls.length;
    await ctl.released('edge-1', 'handed-over');
    clock += 60_000;
    await renew();
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    expect(kube.calls.length).toBe(writes); // not a single call
    expect(kube.nodes.has('edge-1')).toBe(true);
    expect(facts.lastHeartbeat('edge-1')).toBeUndefined();

    await add(ctl, policy());
    await ctl.released('edge-1', 'deleted');
    expect(kube.nodes.has('edge-1')).toBe(false);
    // A Node the provider does not manage (no managed annotation) is not its to delete.
    await kube.createNode({ metadata: { name: 'edge-1' } });
    await add(ctl, policy()); // adopts it: labels, taints and the annotation
    kube.nodes.get('edge-1')!.metadata!.annotations = {};
    await ctl.released('edge-1', 'deleted');
    expect(kube.nodes.has('edge-1')).toBe(true);
  });

  it('a steady node costs one Lease write per leaseRenewMs and no status write until the refresh is due', async () => {
    const kube = new FakeKubeClient();
    const { ctl, tick } = controller(kube);
    await add(ctl, policy());
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await ctl.drained();
    const count = (prefix: string) => kube.calls.filter((c) => c.startsWith(prefix)).length;
    const status0 = count('patchNodeStatus');
    const lease0 = count('replaceLease') + count('createLease');
    for (let i = 0; i < 10; i++) {
      clock += 2_000; // a scan every 2 s, a heartbeat every 4 s: 20 s in all
      if (i % 2 === 0) ctl.onHeartbeat('edge-1', heartbeat(), clock);
      await tick();
    }
    expect(count('patchNodeStatus')).toBe(status0);
    expect(count('replaceLease') + count('createLease') - lease0).toBe(2);
    clock += 40_000; // past the 60 s refresh (heartbeats go on)
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    await tick();
    expect(count('patchNodeStatus')).toBe(status0 + 1);
  });

  it('a failed status write is retried with backoff until it lands, and heartbeats meanwhile cost no extra write', async () => {
    const kube = new FakeKubeClient();
    const { ctl } = controller(kube);
    await add(ctl, policy());
    kube.failNext('patchNodeStatus', Object.assign(new Error('etcdserver: request timed out'), { code: 500 }));
    ctl.onHeartbeat('edge-1', heartbeat(), clock);
    ctl.onHeartbeat('edge-1', heartbeat(), clock + 1);
    ctl.onHeartbeat('edge-1', heartbeat(), clock + 2);
    await ctl.drained();
    await new Promise((r) => setTimeout(r, 400)); // the retry after the first backoff (200 ms)
    await ctl.drained();
    expect(condition(kube, 'Ready').status).toBe('True');
    expect(kube.calls.filter((c) => c.startsWith('patchNodeStatus')).length).toBeLessThanOrEqual(4); // register + failed + retry (+ one coalesced)
  });
});
