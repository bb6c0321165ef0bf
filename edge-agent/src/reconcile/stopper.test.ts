import { MemoryPodRuntime } from '../runtime/memory.js';
import { ManualClock, podSpec, recordingLogger } from '@edgefarm/testing';
import type { ContainerToKill } from './actions.js';
import { ContainerStopper } from './stopper.js';

const KEY = 'default/web';

async function setup(ceiling: (key: string, podUid: string) => number | undefined = () => undefined) {
  const clock = new ManualClock();
  const runtime = new MemoryPodRuntime({ clock, recordCalls: true });
  const { log, records } = recordingLogger();
  const stopper = new ContainerStopper({ runtime, clock, log, graceCeiling: ceiling });
  const pod = podSpec({
    uid: 'u1',
    containers: [
      { name: 'a', image: 'docker.io/edgefarm/busybox:1.35' },
      { name: 'b', image: 'docker.io/edgefarm/busybox:1.35' },
    ],
  });
  const sandbox = { id: await runtime.runSandbox(pod, 0), attempt: 0 };
  const ids: string[] = [];
  for (const c of pod.containers) {
    const id = await runtime.createContainer(pod, sandbox, c, { attempt: 0, restartCount: 0 });
    await runtime.startContainer(id);
    runtime.ignoreSigterm(id);
    ids.push(id);
  }
  const kill = (id: string, gracePeriodSec: number, podUid = 'u1'): ContainerToKill => ({
    id,
    podUid,
    name: id,
    gracePeriodSec,
    reason: 'test',
  });
  const stops = () => runtime.calls.filter((c) => c.method === 'stopContainer').map((c) => c.args);
  return { clock, runtime, stopper, ids, kill, stops, records };
}

describe('ContainerStopper', () => {
  it('stops with the kill grace period and forgets the stop once the runtime returns', async () => {
    const { clock, runtime, stopper, ids, kill, stops } = await setup();
    const p = stopper.stop(KEY, kill(ids[0]!, 30));
    expect(stopper.stopping()).toEqual([{ id: ids[0], key: KEY, graceSec: 30, deadlineMs: clock.now() + 30_000 }]);
    clock.advance(30_000);
    runtime.expireStops();
    await p;
    expect(stops()).toEqual([[ids[0], 30]]);
    expect(stopper.stopping()).toEqual([]);
  });

  it('a kill starting after a shorter grace arrived uses it (the ceiling applies to its pod UID only)', async () => {
    const { stopper, ids, kill, stops, records } = await setup((_key, uid) => (uid === 'u1' ? 0 : undefined));
    await stopper.stop(KEY, kill(ids[0]!, 30));
    expect(stops()).toEqual([[ids[0], 0]]);
    expect(records.some((r) => r.msg === 'stopping with the shorter grace period of the desired state')).toBe(true);
    void stopper.stop(KEY, kill(ids[1]!, 30, 'u0'));
    expect(stops()).toEqual([
      [ids[0], 0],
      [ids[1], 30],
    ]);
  });

  it('shorten() re-sends StopContainer for every running stop of the pod with a later deadline, and returns them', async () => {
    const { clock, runtime, stopper, ids, kill, stops } = await setup();
    const a = stopper.stop(KEY, kill(ids[0]!, 30));
    const b = stopper.stop(KEY, kill(ids[1]!, 3));
    expect(stopper.shorten('default/other', 'u1', 1)).toEqual([]);
    expect(stopper.shorten(KEY, 'u9', 1)).toEqual([]);
    expect(stopper.shorten(KEY, 'u1', 5)).toEqual([{ id: ids[0], name: ids[0], fromSec: 30, toSec: 5 }]);
    expect(stopper.shorten(KEY, 'u1', 5)).toEqual([]);
    expect(stops()).toEqual([
      [ids[0], 30],
      [ids[1], 3],
      [ids[0], 5],
    ]);
    clock.advance(3000);
    runtime.expireStops();
    await b;
    clock.advance(2000);
    runtime.expireStops();
    await a;
    await stopper.drain();
    expect(stopper.stopping()).toEqual([]);
  });

  it('logs a failed out-of-band stop and drains', async () => {
    const { runtime, stopper, ids, kill, records } = await setup();
    const p = stopper.stop(KEY, kill(ids[0]!, 30));
    runtime.failNext('stopContainer');
    stopper.shorten(KEY, 'u1', 0);
    await stopper.drain();
    expect(records.find((r) => r.msg === 'shortened stop failed')).toMatchObject({ pod: KEY, id: ids[0] });
    runtime.exit(ids[0]!, 137);
    await p;
  });
});
