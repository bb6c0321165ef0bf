import { create, edge } from '@edgefarm/proto';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { ManualClock, podSpec, silentLogger } from '@edgefarm/testing';
import { ProbeManager, type Scheduler } from './manager.js';
import { NetProber } from './prober.js';
import { FakeEventSink } from '../events/recorder.js';

/** A scheduler the test drives: tick() runs every armed callback once. */
class ManualScheduler implements Scheduler {
  readonly tasks = new Map<number, { ms: number; fn: () => void }>();
  private n = 0;
  every(ms: number, fn: () => void): () => void {
    const id = this.n++;
    this.tasks.set(id, { ms, fn });
    return () => this.tasks.delete(id);
  }
}

const execProbe = (over: Record<string, unknown> = {}) =>
  create(edge.ProbeSchema, {
    handler: { case: 'exec', value: { command: ['check'] } },
    timeoutSeconds: 1,
    periodSeconds: 5,
    successThreshold: 1,
    failureThreshold: 2,
    ...over,
  });

async function setup(container: Record<string, unknown>) {
  const clock = new ManualClock();
  const runtime = new MemoryPodRuntime({ clock, recordCalls: true });
  const changed: string[] = [];
  const scheduler = new ManualScheduler();
  const events = new FakeEventSink();
  const probes = new ProbeManager({
    prober: new NetProber(runtime),
    clock,
    log: silentLogger(),
    onChange: (k) => changed.push(k),
    scheduler,
    events,
  });
  const pod = podSpec({ containers: [{ name: 'main', image: 'img', ...container }] });
  const sb = await runtime.runSandbox(pod, 0);
  const id = await runtime.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 });
  await runtime.startContainer(id);
  const key = `${pod.namespace}/${pod.name}`;
  const sync = async () => probes.sync(key, pod, await runtime.observePod({ namespace: pod.namespace, name: pod.name }), '192.168.0.9');
  await sync();
  probes.start();
  const stepAll = async () => {
    for (const w of probes.workerIds()) await probes.step(w);
  };
  let exitCode = 0;
  runtime.execHandler = () => ({ exitCode, stdout: '', stderr: '', timedOut: false });
  const setExit = (n: number) => (exitCode = n);
  return { clock, runtime, probes, pod, id, key, changed, scheduler, sync, stepAll, setExit, events };
}

describe('ProbeManager (in-memory runtime, manual clock and scheduler)', () => {
  it('records an Unhealthy Warning event for every failed probe, with the kubelet message', async () => {
    const t = await setup({ livenessProbe: execProbe(), readinessProbe: execProbe() });
    t.runtime.execHandler = () => ({ exitCode: 1, stdout: 'not ok', stderr: '', timedOut: false });
    await t.stepAll();
    const got = t.events.events.map((e) => [e.type, e.reason, e.message, e.ref.fieldPath]).sort();
    expect(got).toEqual([
      ['Warning', 'Unhealthy', 'Liveness probe failed: not ok', 'spec.containers{main}'],
      ['Warning', 'Unhealthy', 'Readiness probe failed: not ok', 'spec.containers{main}'],
    ]);
    expect(t.events.events[0]!.ref).toMatchObject({ uid: t.pod.uid, namespace: t.pod.namespace, name: t.pod.name });
  });

  it('one worker per probe, on a timer of period_seconds; stop cancels every timer', async () => {
    const t = await setup({ livenessProbe: execProbe(), readinessProbe: execProbe({ periodSeconds: 3 }) });
    expect(t.probes.workerIds().sort()).toEqual([`${t.pod.uid}/main/liveness`, `${t.pod.uid}/main/readiness`]);
    expect([...t.scheduler.tasks.values()].map((x) => x.ms).sort()).toEqual([3000, 5000]);
    await t.probes.stop();
    expect(t.scheduler.tasks.size).toBe(0);
  });

  it('readiness: not ready until the probe succeeds; failureThreshold failures make it unready; the key is queued on each flip', async () => {
    const t = await setup({ readinessProbe: execProbe() });
    const status = async () =>
      t.probes.statuses(t.pod, await t.runtime.observePod({ namespace: t.pod.namespace, name: t.pod.name })).get(t.id);
    expect(await status()).toEqual({ started: true, ready: false });
    await t.stepAll();
    expect(await status()).toEqual({ started: true, ready: true });
    expect(t.changed).toContain(t.key);
    t.changed.length = 0;
    t.setExit(1);
    await t.stepAll();
    expect((await status())!.ready).toBe(true); // 1 of 2
    await t.stepAll();
    expect(await status()).toEqual({ started: true, ready: false });
    expect(t.changed).toEqual([t.key]);
    expect(t.runtime.calls.filter((c) => c.method === 'execSync').at(-1)!.args).toEqual([t.id, ['check'], 1]);
  });

  it('liveness: failureThreshold failures report the container for a kill, then the worker holds until a new container', async () => {
    const t = await setup({ livenessProbe: execProbe() });
    t.setExit(1);
    await t.stepAll();
    expect(t.probes.failures().size).toBe(0);
    await t.stepAll();
    expect(t.probes.failures()).toEqual(new Map([[t.id, 'liveness']]));
    const execs = () => t.runtime.calls.filter((c) => c.method === 'execSync').length;
    const before = execs();
    await t.stepAll();
    expect(execs()).toBe(before); // on hold
    // the reconciler kills and replaces the container
    t.runtime.exit(t.id, 137);
    const id2 = await t.runtime.createContainer(t.pod, { id: [...t.runtime.sandboxes.keys()][0]!, attempt: 0 }, t.pod.containers[0]!, {
      attempt: 1,
      restartCount: 1,
    });
    await t.runtime.startContainer(id2);
    await t.sync();
    t.setExit(0);
    await t.stepAll();
    expect(t.probes.failures().has(id2)).toBe(false);
    expect(t.probes.failures().has(t.id)).toBe(false); // the old container's result is dropped
    expect(execs()).toBe(before + 1);
  });

  it('startup gates liveness and readiness: not started, not ready, no liveness probe until it succeeds', async () => {
    const t = await setup({ startupProbe: execProbe({ failureThreshold: 30 }), readinessProbe: execProbe(), livenessProbe: execProbe() });
    const status = async () =>
      t.probes.statuses(t.pod, await t.runtime.observePod({ namespace: t.pod.namespace, name: t.pod.name })).get(t.id);
    t.setExit(1);
    await t.stepAll();
    expect(await status()).toEqual({ started: false, ready: false });
    expect(t.runtime.calls.filter((c) => c.method === 'execSync')).toHaveLength(1); // the startup probe only
    t.setExit(0);
    await t.stepAll(); // startup succeeds (liveness/readiness stepped before it in this round may still wait)
    await t.stepAll();
    expect(await status()).toEqual({ started: true, ready: true });
  });

  it('initial delay on the clock', async () => {
    const t = await setup({ readinessProbe: execProbe({ initialDelaySeconds: 10 }) });
    await t.stepAll();
    expect(t.runtime.calls.filter((c) => c.method === 'execSync')).toHaveLength(0);
    t.clock.advance(10_000);
    await t.stepAll();
    expect(t.runtime.calls.filter((c) => c.method === 'execSync')).toHaveLength(1);
  });

  it('a pod gone from the key loses its workers and results', async () => {
    const t = await setup({ readinessProbe: execProbe() });
    await t.stepAll();
    t.probes.sync(t.key, undefined, { key: { namespace: t.pod.namespace, name: t.pod.name }, sandboxes: [], containers: [] }, '');
    expect(t.probes.workerIds()).toEqual([]);
    expect(t.probes.result(t.id, 'readiness')).toBeUndefined();
    expect(t.scheduler.tasks.size).toBe(0);
  });
});
