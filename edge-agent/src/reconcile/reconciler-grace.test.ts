/** The Reconciler with a pod being deleted whose containers ignore SIGTERM: a shorter grace period reaches the stop. */
import { fieldsOf, podSpec } from '@edgefarm/testing';
import { keyOf, setup, until } from './reconciler.fixtures.js';

describe('Reconciler: shortening the grace period of a terminating pod', () => {
  async function terminating(t: ReturnType<typeof setup>) {
    t.store.markSynced();
    const pod = podSpec({ terminationGracePeriodSeconds: 60n });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const [c] = [...t.runtime.containers.values()];
    t.runtime.ignoreSigterm(c!.id);
    t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', deleting: true, deletionGracePeriodSeconds: 60n }));
    t.runtime.calls.length = 0;
    const t0 = t.clock.now();
    const syncing = t.reconciler.sync(keyOf(pod));
    await until('the stop to wait', () => t.runtime.pendingStops().length === 1);
    const stops = () => t.runtime.calls.filter((x) => x.method === 'stopContainer').map((x) => x.args);
    const deleting = (resourceVersion: string, grace: bigint) =>
      t.put(podSpec({ ...fieldsOf(pod), resourceVersion, deleting: true, deletionGracePeriodSeconds: grace }));
    return { pod, id: c!.id, t0, syncing, stops, deleting };
  }

  it('a shorter grace is sent to the runtime at once, beside the waiting stop; the pod is gone at the shorter deadline', async () => {
    const t = setup();
    const { pod, id, t0, syncing, stops, deleting } = await terminating(t);
    t.clock.advance(10_000);
    deleting('102', 2n);
    expect(stops()).toEqual([
      [id, 60],
      [id, 2],
    ]);
    expect(t.runtime.pendingStops()).toEqual([
      { id, graceSec: 60, deadlineMs: t0 + 60_000 },
      { id, graceSec: 2, deadlineMs: t0 + 12_000 },
    ]);
    t.clock.advance(2000);
    t.runtime.expireStops();
    await syncing;
    expect(t.runtime.sandboxes.size + t.runtime.containers.size).toBe(0);
    expect(t.last()).toMatchObject({ uid: pod.uid, removed: true });
    const kill = t.reconciler.lastSync(keyOf(pod))!.result!.steps[0]!;
    expect(kill).toMatchObject({ op: 'kill-container', outcome: 'ok' });
  });

  it('a grace only shrinks: a longer one, or one ending after the running deadline, changes nothing', async () => {
    const t = setup();
    const { id, t0, syncing, stops, deleting } = await terminating(t);
    deleting('102', 90n);
    t.clock.advance(50_000);
    deleting('103', 15n); // would end at t0 + 65 s, after the running 60 s
    expect(stops()).toEqual([[id, 60]]);
    deleting('104', 5n);
    expect(stops()).toEqual([
      [id, 60],
      [id, 5],
    ]);
    deleting('105', 7n);
    expect(stops()).toEqual([
      [id, 60],
      [id, 5],
    ]);
    t.clock.advance(5000);
    t.runtime.expireStops();
    await syncing;
    expect(t.clock.now() - t0).toBe(55_000);
    expect(t.runtime.containers.size).toBe(0);
  });

  it('grace 0 kills at once', async () => {
    const t = setup();
    const { pod, id, syncing, stops, deleting } = await terminating(t);
    deleting('102', 0n);
    expect(stops()).toEqual([
      [id, 60],
      [id, 0],
    ]);
    await syncing; // no clock advance needed
    expect(t.runtime.pendingStops()).toEqual([]);
    expect(t.last()).toMatchObject({ uid: pod.uid, removed: true });
  });

  it('a failed shortened stop is logged; the waiting stop still ends the pod', async () => {
    const t = setup();
    const { syncing, stops, deleting } = await terminating(t);
    t.runtime.failNext('stopContainer');
    deleting('102', 1n);
    expect(stops()).toHaveLength(2);
    t.clock.advance(60_000);
    t.runtime.expireStops();
    await syncing;
    expect(t.runtime.containers.size).toBe(0);
  });

  it('a tombstone or a new pod UID under the key does not shorten the stop', async () => {
    const t = setup();
    const { pod, id, syncing, stops } = await terminating(t);
    t.put(podSpec({ ...fieldsOf(pod), uid: 'other', resourceVersion: '300', deleting: true, deletionGracePeriodSeconds: 0n }));
    t.tombstone(pod);
    expect(stops()).toEqual([[id, 60]]);
    t.clock.advance(60_000);
    t.runtime.expireStops();
    await syncing;
  });
});
