import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import { FakeBus } from '../bus/fake.js';
import { NodeFacts } from '../nodecontroller/facts.js';
import { StatusManager } from './status-manager.js';
import { pod, runningReport as running } from './testing.js';

const running_ = (uid: string) => running(uid, 1n);

const log = pino({ level: 'silent' });

function setup(options: { ttlMs?: number; maxUnclaimed?: number; now?: () => Date } = {}) {
  const kube = new FakeKubeClient();
  const bus = new FakeBus();
  const facts = new NodeFacts();
  const outcomes: string[] = [];
  const metrics = {
    statusReport: (r: string, reason?: string) => void outcomes.push(reason ? `${r}:${reason}` : r),
    statusApplied: () => void outcomes.push('applied'),
    statusConflict: () => void outcomes.push('conflict'),
    podStarted: () => void outcomes.push('started'),
  };
  const sm = new StatusManager({
    kube,
    bus,
    facts,
    metrics,
    now: options.now ?? (() => new Date()),
    unclaimedTtlMs: options.ttlMs,
    maxUnclaimed: options.maxUnclaimed,
    log,
  });
  const stored = kube.emitPod(pod());
  /** The pod as the informer cache holds it now. */
  const current = () => kube.pods.get('default/web-1')!;
  const writes = () => kube.calls.filter((c) => c.startsWith('replacePodStatus')).length;
  return { kube, bus, facts, sm, stored, current, writes, outcomes };
}

/** Makes edge-1 connected (a fresh heartbeat) and gives it the site address. */
const connect = (facts: NodeFacts) =>
  facts.record(
    'edge-1',
    create(edge.NodeHeartbeatSchema, { nodeName: 'edge-1', addresses: [{ type: 'InternalIP', address: '10.201.1.2' }] }),
    Date.now(),
  );

describe('StatusManager', () => {
  it('applies reports in generation order and drops older ones', async () => {
    const { sm, current, outcomes } = setup();
    expect(sm.record('edge-1', running('uid-1', 5n))).toBe(true);
    await sm.sync(current(), 'edge-1');
    expect(current().status!.phase).toBe('Running');
    expect(sm.record('edge-1', running('uid-1', 3n, { phase: edge.PodPhase.PENDING }))).toBe(false);
    expect(sm.record('edge-1', running('uid-1', 5n))).toBe(false); // repeated
    await sm.sync(current(), 'edge-1');
    expect(current().status!.phase).toBe('Running');
    expect(outcomes).toEqual(['applied', 'stale', 'stale']);
  });

  it('retries a status write on conflict', async () => {
    const { kube, sm, current, writes, outcomes } = setup();
    kube.failNext('replacePodStatus', new ApiError(409, 'the object has been modified', 'Conflict'));
    sm.record('edge-1', running('uid-1', 1n));
    await sm.sync(current(), 'edge-1');
    expect(writes()).toBe(2);
    expect(current().status!.podIP).toBe('10.221.1.9');
    expect(outcomes).toContain('conflict');
  });

  it('ignores a report about an older pod of the same name', async () => {
    const { sm, current, writes } = setup();
    sm.record('edge-1', running('old-uid', 1n));
    await sm.sync(current(), 'edge-1');
    expect(writes()).toBe(0);
  });

  it('writes the hostIP the node facts know', async () => {
    const { facts, sm, current } = setup();
    connect(facts);
    sm.record('edge-1', running('uid-1', 1n));
    await sm.sync(current(), 'edge-1');
    expect(current().status!.hostIP).toBe('10.201.1.2');
  });

  it('finishes a graceful delete only once the edge reported the pod removed, and forgets it', async () => {
    const { kube, bus, sm } = setup();
    const deleting = kube.emitPod(pod({}, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 5 }));
    sm.record('edge-1', running('uid-1', 1n));
    expect(await sm.finishDelete(deleting, 'edge-1', log)).toBe(false);
    expect(await sm.finishDelete(pod(), 'edge-1', log)).toBe(false); // not deleting
    sm.record('edge-1', running('uid-1', 2n, { removed: true, phase: edge.PodPhase.SUCCEEDED }));
    expect(await sm.finishDelete(deleting, 'edge-1', log)).toBe(true);
    expect(kube.calls).toContain('deletePod default/web-1 grace=0');
    expect(bus.forgotten).toEqual(['edge-1/uid-1']);
    expect(sm.latest('uid-1')).toBeUndefined();
  });

  it('while disconnected, applies each report once: a pod update without a new report is not overwritten', async () => {
    const { kube, facts, sm, current, writes } = setup(); // no heartbeat: disconnected
    sm.record('edge-1', running('uid-1', 2n));
    await sm.sync(current(), 'edge-1');
    const after = writes();
    // The node lifecycle controller marks the pod not Ready.
    kube.emitPod({
      ...current(),
      status: { ...current().status, conditions: [{ type: 'Ready', status: 'False', reason: 'NodeNotReady' }] },
    });
    await sm.sync(current(), 'edge-1');
    expect(writes()).toBe(after);
    // Connected: the edge's last report is the authority again, and the drift is put back.
    connect(facts);
    await sm.sync(current(), 'edge-1');
    expect(writes()).toBe(after + 1);
    expect(current().status!.conditions!.find((c) => c.type === 'Ready')!.status).toBe('True');
  });

  it("forgets a gone pod's report (and its status on the hub), and every report of a node given up", async () => {
    const { bus, sm } = setup();
    sm.record('edge-1', running('uid-1', 1n));
    sm.record('edge-2', running('uid-2', 1n));
    await sm.podGone('edge-1', 'uid-1');
    expect(bus.forgotten).toEqual(['edge-1/uid-1']);
    expect(sm.latest('uid-1')).toBeUndefined();
    sm.forgetNode('edge-2');
    expect(sm.latest('uid-2')).toBeUndefined();
    expect(sm.record('edge-2', running('uid-2', 1n))).toBe(true); // taken back later: the hub's last report applies again
  });

  it("refuses a report about a pod of another node: nothing written, a forged removal deletes nothing, the node's own reports still apply", async () => {
    const { kube, sm, current, writes, outcomes } = setup();
    const deleting = kube.emitPod(pod({}, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 30 }));
    // edge-2's site says uid-1 (bound to edge-1) is gone, with a generation far ahead of edge-1's.
    expect(sm.record('edge-2', running('uid-1', 1_000n, { removed: true, phase: edge.PodPhase.SUCCEEDED }))).toBe(true);
    expect(await sm.finishDelete(deleting, 'edge-1', log)).toBe(false);
    expect(kube.calls.filter((c) => c.startsWith('deletePod'))).toEqual([]);
    expect(outcomes).toEqual(['rejected:wrong_node']);
    // A forged running report is not written either, and does not make edge-1's own (older generation) reports stale.
    sm.record('edge-2', running('uid-1', 2_000n));
    await sm.sync(current(), 'edge-1');
    expect(writes()).toBe(0);
    expect(sm.record('edge-1', running('uid-1', 1n))).toBe(true);
    await sm.sync(current(), 'edge-1');
    expect(current().status!.phase).toBe('Running');
    expect(outcomes).toEqual(['rejected:wrong_node', 'rejected:wrong_node', 'applied']);
    // The reporting Node gets one Warning Event (at most one a minute), not one per refusal.
    expect(kube.events.filter((e) => e.involvedObject.kind === 'Node').map((e) => [e.involvedObject.name, e.reason])).toEqual([
      ['edge-2', 'ForeignPodDataRefused'],
    ]);
  });

  it('keeps reports about pods it has not seen for a while only, and only so many', async () => {
    let t = Date.parse('2026-12-01T00:00:00Z');
    const { sm, current, outcomes } = setup({ ttlMs: 60_000, maxUnclaimed: 3, now: () => new Date(t) });
    for (const uid of ['x-1', 'x-2', 'x-3', 'x-4', 'x-5']) sm.record('edge-1', running(uid, 1n));
    expect(sm.held).toBe(3);
    expect(sm.latest('x-1')).toBeUndefined();
    expect(outcomes).toEqual(['rejected:overflow', 'rejected:overflow']);
    // A report its pod claimed (the pod exists on the node) is kept however old.
    sm.record('edge-1', running('uid-1', 1n));
    await sm.sync(current(), 'edge-1');
    t += 61_000;
    sm.record('edge-1', running('x-6', 1n));
    expect(sm.held).toBe(2); // uid-1 (claimed) and x-6: x-3 made room for uid-1, x-4 and x-5 expired
    expect(sm.latest('uid-1')).toBeDefined();
    expect(outcomes).toEqual([...Array<string>(3).fill('rejected:overflow'), 'applied', 'rejected:unknown_pod', 'rejected:unknown_pod']);
  });

  it("purges refused reports from the hub a few at a time: a flood of made-up UIDs does not flood the hub's API", async () => {
    const { kube, facts } = setup();
    let running = 0;
    let most = 0;
    const purged: string[] = [];
    const pending: (() => void)[] = [];
    const bus = {
      forgetPodStatus: (node: string, uid: string) =>
        new Promise<void>((resolve) => {
          most = Math.max(most, ++running);
          pending.push(() => {
            running--;
            purged.push(`${node}/${uid}`);
            resolve();
          });
        }),
    };
    const sm = new StatusManager({ kube, bus, facts, now: () => new Date(), maxUnclaimed: 1 });
    for (let i = 0; i <= 50; i++) sm.record('edge-1', running_(`x-${i}`));
    expect(most).toBeLessThanOrEqual(4);
    while (pending.length) {
      pending.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    expect(purged).toHaveLength(50); // every refused report purged in the end (x-0 .. x-49), the last one kept
    expect(most).toBeLessThanOrEqual(4);
  });
});
