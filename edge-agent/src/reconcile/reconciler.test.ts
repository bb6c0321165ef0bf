import { edge } from '@edgefarm/proto';
import { fieldsOf, podSpec } from '@edgefarm/testing';
import { nextWake } from './reconciler.js';
import { keyOf, setup, until } from './reconciler.fixtures.js';

describe('Reconciler (with the in-memory runtime)', () => {
  it('creates the sandbox and containers, then reports Running', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).toEqual(['observePod', 'runSandbox', 'ensureImage', 'createContainer', 'startContainer', 'observePod']);
    expect(t.last()).toMatchObject({ uid: pod.uid, phase: edge.PodPhase.RUNNING });
    const steps = t.reconciler.lastSync(keyOf(pod))!.result!.steps.map((s) => `${s.step} ${s.op} ${s.outcome}`);
    expect(steps).toEqual(['1 create-sandbox ok', '2 pull-image ok', '3 create-container ok', '4 start-container ok']);
  });

  it('records the kubelet container events: Created, Started, BackOff while a restart is held back, Killing, DeadlineExceeded', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const seen = () => t.events.events.map((e) => `${e.type} ${e.reason} ${e.message}`);
    expect(seen()).toEqual(['Normal Created Created container: main', 'Normal Started Started container main']);
    expect(t.events.events[0]!.ref).toEqual({ uid: pod.uid, namespace: 'default', name: pod.name, fieldPath: 'spec.containers{main}' });
    const running = () => [...t.runtime.containers.values()].find((c) => c.state === 'running')!;
    t.runtime.exit(running().id, 1);
    await t.reconciler.sync(keyOf(pod)); // restarted at once
    t.clock.advance(100);
    t.runtime.exit(running().id, 1);
    t.events.events.length = 0;
    await t.reconciler.sync(keyOf(pod)); // held back
    expect(seen()).toEqual([`Warning BackOff Back-off restarting failed container main in pod ${pod.name}_default(${pod.uid})`]);
    t.events.events.length = 0;
    t.clock.advance(1500);
    await t.reconciler.sync(keyOf(pod));
    t.put({ ...pod, deleting: true });
    t.events.events.length = 0;
    await t.reconciler.sync(keyOf(pod));
    expect(seen()).toContain('Normal Killing Stopping container main');

    const d = podSpec({ activeDeadlineSeconds: 1n, terminationGracePeriodSeconds: 0n });
    t.put(d);
    await t.reconciler.sync(keyOf(d));
    t.events.events.length = 0;
    t.clock.advance(2000);
    await t.reconciler.sync(keyOf(d));
    expect(seen()).toEqual(
      expect.arrayContaining([
        'Normal DeadlineExceeded Pod was active on the node longer than the specified deadline',
        'Normal Killing Stopping container main',
      ]),
    );
  });

  it('does nothing for a pod already running as desired (re-adoption)', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    t.runtime.calls.length = 0;
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).toEqual(['observePod']);
  });

  it('leaves pods without a desired spec alone until the desired state is synced', async () => {
    const t = setup();
    const pod = podSpec();
    await t.runtime.runSandbox(pod, 0);
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.sandboxes.size).toBe(1);
    t.store.markSynced();
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.sandboxes.size).toBe(0);
  });

  it('restarts an exited container under Always: the first time at once, then after the backoff (CrashLoopBackOff)', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const running = () => [...t.runtime.containers.values()].find((c) => c.state === 'running')!;
    t.runtime.exit(running().id, 1);
    await t.reconciler.sync(keyOf(pod)); // the first restart is not held back (no backoff entry yet)
    expect(t.last().containerStatuses[0]).toMatchObject({ restartCount: 1, ready: true });
    expect(t.last().containerStatuses[0]!.lastState?.state).toMatchObject({ case: 'terminated', value: { exitCode: 1 } });

    t.clock.advance(100);
    t.runtime.exit(running().id, 2);
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().containerStatuses[0]!.state?.state).toMatchObject({
      case: 'waiting',
      value: { reason: 'CrashLoopBackOff', message: `back-off 1s restarting failed container=main pod=${pod.name}_default(${pod.uid})` },
    });
    t.clock.advance(1500);
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
    expect(t.last().containerStatuses[0]).toMatchObject({ restartCount: 2, ready: true });
    expect(t.last().containerStatuses[0]!.lastState?.state).toMatchObject({ case: 'terminated', value: { exitCode: 2 } });

    t.runtime.exit(running().id, 3); // third crash: 2 s now
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().containerStatuses[0]!.state?.state).toMatchObject({
      case: 'waiting',
      value: { message: expect.stringMatching(/^back-off 2s /) },
    });
  });

  it('defaults to the kubelet backoff (10 s doubling to 300 s)', () => {
    const t = setup({ restartBackoffBaseMs: undefined });
    expect([t.reconciler.backoff.baseMs, t.reconciler.backoff.maxMs]).toEqual([10_000, 300_000]);
  });

  it('deleting: stops and removes everything, then reports removed', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec({ terminationGracePeriodSeconds: 9n });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', deleting: true, deletionGracePeriodSeconds: 3n }));
    t.runtime.calls.length = 0;
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).toEqual(['observePod', 'stopContainer', 'stopSandbox', 'removeSandbox', 'observePod']);
    expect(t.runtime.calls[1]!.args[1]).toBe(3);
    expect(t.last()).toMatchObject({ uid: pod.uid, removed: true, observedResourceVersion: '101' });
    expect(t.runtime.sandboxes.size + t.runtime.containers.size).toBe(0);
  });

  it('tombstone: removes everything and reports removed', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    t.tombstone(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.sandboxes.size).toBe(0);
    expect(t.last()).toMatchObject({ uid: pod.uid, removed: true });
  });

  it('a failed step is recorded and retried by the next sync', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = podSpec();
    t.put(pod);
    t.runtime.failNext('startContainer');
    await t.reconciler.sync(keyOf(pod));
    const steps = t.reconciler.lastSync(keyOf(pod))!.result!.steps;
    expect(steps.at(-1)).toMatchObject({ op: 'start-container', outcome: 'failed' });
    expect(t.last().containerStatuses[0]!.state?.state).toMatchObject({ case: 'waiting', value: { reason: 'RunContainerError' } });
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
  });

  it('reports ErrImagePull for a missing image and keeps the pod Pending', async () => {
    const t = setup();
    t.store.markSynced();
    t.runtime.images.pullAny = false; // a registry without the image
    const pod = podSpec({ containers: [{ name: 'main', image: 'docker.io/nope/missing:1' }] });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.PENDING);
    expect(t.last().containerStatuses[0]!.state?.state).toMatchObject({ case: 'waiting', value: { reason: 'ErrImagePull' } });
  });

  it('the queue and resync find orphans in the runtime once synced; stop leaves no timer', async () => {
    const t = setup();
    const orphan = podSpec();
    await t.runtime.runSandbox(orphan, 0);
    t.reconciler.start();
    t.store.markSynced();
    for (let i = 0; i < 50 && t.runtime.sandboxes.size > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(t.runtime.sandboxes.size).toBe(0);
    await t.reconciler.stop();
  });

  describe('activeDeadlineSeconds', () => {
    it('syncs the pod again when its deadline runs out: killed with the pod grace period, Failed/DeadlineExceeded, nothing restarted', async () => {
      const t = setup({ resyncMs: 3_600_000 });
      t.store.markSynced();
      const pod = podSpec({ activeDeadlineSeconds: 1n, terminationGracePeriodSeconds: 5n });
      t.put(pod);
      await t.reconciler.sync(keyOf(pod)); // driven directly: no deadline timer
      expect(t.last()).toMatchObject({ phase: edge.PodPhase.RUNNING, reason: '' });
      const before = t.reconciler.lastSync(keyOf(pod));
      t.clock.advance(900);
      t.reconciler.start(); // the first resync syncs the pod 100 ms before its deadline and arms a timer for it
      try {
        await until('the resync', () => t.reconciler.lastSync(keyOf(pod)) !== before);
        expect(t.reconciler.lastSync(keyOf(pod))!.actions.deadlineAtMs).toBe(t.clock.now() + 100);
        t.clock.advance(100);
        await until('the deadline sync', () => t.last().phase === edge.PodPhase.FAILED);
        expect(t.last()).toMatchObject({
          reason: 'DeadlineExceeded',
          message: 'Pod was active on the node longer than the specified deadline',
        });
        expect(t.runtime.calls.find((c) => c.method === 'stopContainer')!.args[1]).toBe(5);
        expect(t.last().containerStatuses[0]!.state?.state).toMatchObject({ case: 'terminated', value: { exitCode: 137 } });
        t.clock.advance(60_000);
        t.runtime.calls.length = 0;
        await t.reconciler.sync(keyOf(pod));
        expect(t.runtime.methods()).toEqual(['observePod']);
        expect(t.runtime.sandboxes.size).toBe(1); // kept (and so the start time) until the pod is deleted
      } finally {
        await t.reconciler.stop();
      }
    });

    it('a newer spec lowering the deadline below the pod age stops the pod on its next sync', async () => {
      const t = setup();
      t.store.markSynced();
      const pod = podSpec({ activeDeadlineSeconds: 600n });
      t.put(pod);
      await t.reconciler.sync(keyOf(pod));
      t.clock.advance(30_000);
      await t.reconciler.sync(keyOf(pod));
      expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
      t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', activeDeadlineSeconds: 20n }));
      await t.reconciler.sync(keyOf(pod));
      expect(t.last()).toMatchObject({ phase: edge.PodPhase.FAILED, reason: 'DeadlineExceeded', observedResourceVersion: '101' });
      expect([...t.runtime.containers.values()].map((c) => c.state)).toEqual(['exited']);
    });
  });

  describe('wake-ups (no resync, no relist: only its own timer syncs it again)', () => {
    const quiet = { resyncMs: 3_600_000, relistMs: 0, retryMs: 50, restartBackoffBaseMs: 100 };
    /** Starts the reconciler and lets its first (and, within the test, only) resync pass. */
    const startQuiet = async (t: ReturnType<typeof setup>) => {
      t.reconciler.start();
      t.store.markSynced();
      await new Promise((r) => setTimeout(r, 20));
      await t.reconciler.idle();
    };

    it('a settled pod has none; a container held back by its restart backoff is restarted when the backoff ends', async () => {
      const t = setup(quiet);
      await startQuiet(t);
      const pod = podSpec();
      const key = keyOf(pod);
      try {
        t.put(pod);
        await until('running', () => t.reports().some((r) => r.phase === edge.PodPhase.RUNNING));
        await t.reconciler.idle();
        expect(t.reconciler.wakeAt(key)).toBeUndefined();
        const running = () => [...t.runtime.containers.values()].find((c) => c.state === 'running')!;
        t.runtime.exit(running().id, 1);
        t.reconciler.enqueue(key); // what the relist would do
        await until('the first restart (not held back)', () => t.last().containerStatuses[0]?.restartCount === 1);
        t.clock.advance(10);
        t.runtime.exit(running().id, 2);
        t.reconciler.enqueue(key);
        await until('CrashLoopBackOff', () => t.last().containerStatuses[0]?.state?.state.case === 'waiting');
        await t.reconciler.idle();
        const exitedAt = t.clock.now();
        expect(t.reconciler.wakeAt(key)).toBe(exitedAt + 100 + 5);
        t.clock.advance(200);
        await until('the restart after the backoff', () => t.last().containerStatuses[0]?.restartCount === 2);
        expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
      } finally {
        await t.reconciler.stop();
      }
    });

    it('a failed step is retried after retryMs', async () => {
      const t = setup(quiet);
      await startQuiet(t);
      t.runtime.failNext('runSandbox');
      const pod = podSpec();
      try {
        t.put(pod);
        await until('the failed sync', () => t.reconciler.lastSync(keyOf(pod))?.result?.ok === false);
        await t.reconciler.idle();
        expect(t.reconciler.wakeAt(keyOf(pod))).toBe(t.clock.now() + 50);
        await until('running after the retry', () => t.last()?.phase === edge.PodPhase.RUNNING);
        expect(t.runtime.calls.filter((c) => c.method === 'runSandbox')).toHaveLength(2);
      } finally {
        await t.reconciler.stop();
      }
    });

    it('a report that could not be written is written by the retry', async () => {
      const t = setup(quiet);
      await startQuiet(t);
      t.outbox.failNext(1);
      const pod = podSpec();
      try {
        t.put(pod);
        await until('the sync', () => t.reconciler.lastSync(keyOf(pod)) !== undefined);
        await t.reconciler.idle();
        expect(t.outbox.published).toHaveLength(0);
        await until('the report', () => t.outbox.published.length === 1);
        expect(t.last()).toMatchObject({ uid: pod.uid, phase: edge.PodPhase.RUNNING });
        expect(t.runtime.calls.filter((c) => c.method === 'runSandbox')).toHaveLength(1);
      } finally {
        await t.reconciler.stop();
      }
    });

    it('nextWake: the earliest of deadline, backoff ends (+5 ms) and retry; 0 for none', () => {
      const b = (untilMs: number) => ({ name: 'c', restartCount: 1, untilMs, message: '' });
      expect(nextWake({ deadlineAtMs: 0, backoff: [] }, 0)).toBe(0);
      expect(nextWake({ deadlineAtMs: 900, backoff: [b(500), b(300)] }, 0)).toBe(305);
      expect(nextWake({ deadlineAtMs: 200, backoff: [b(500)] }, 1000)).toBe(200);
      expect(nextWake({ deadlineAtMs: 0, backoff: [] }, 1000)).toBe(1000);
    });
  });
});
