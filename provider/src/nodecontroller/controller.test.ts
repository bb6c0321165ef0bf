import { FakeKubeClient } from '../kube/fake.js';
import { condition, heartbeat, nodeControllers, policy } from './testing.js';

describe('NodeController: node status, connectivity, autonomy, write costs', () => {
  let clock = new Date('2026-11-23T10:00:00Z').getTime();
  const { controller, add, stopAll } = nodeControllers(() => new Date(clock));
  afterEach(() => stopAll());

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
