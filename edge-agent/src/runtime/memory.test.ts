import { decodePodStatusReport, desiredSubjects, edge, encode } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { DesiredStore } from '../desired/store.js';
import { FakeEventSink } from '../events/recorder.js';
import { MemoryImageService } from '../images/memory.js';
import { Reconciler } from '../reconcile/reconciler.js';
import { StatusReporter } from '../status/reporter.js';
import { BUSYBOX, ManualClock, podSpec, silentLogger } from '@edgefarm/testing';
import { containerHash } from './labels.js';
import { MemoryPodRuntime } from './memory.js';
import { isRuntimeNotFound } from './types.js';

const NODE = 'hollow-0001';
const keyOf = (p: edge.EdgePodSpec) => ({ namespace: p.namespace, name: p.name });

/** A reconciler (the real one, as a hollow agent runs it) over a given runtime; a new one = an agent restart. */
function agentOn(runtime: MemoryPodRuntime, clock: ManualClock) {
  const outbox = new FakeOutbox();
  const log = silentLogger();
  let reconciler: Reconciler | undefined;
  const store = new DesiredStore(NODE, log, (k) => reconciler?.enqueue(k));
  const status = new StatusReporter({ wireId: NODE, outbox, clock, log });
  reconciler = new Reconciler(
    { runtime, desired: store, status, clock, log, events: new FakeEventSink() },
    { nodeIp: '10.0.0.9', restartBackoffBaseMs: 1000 },
  );
  store.markSynced();
  let seq = 0;
  const put = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: encode(edge.EdgePodSpecSchema, spec) });
  const last = () => decodePodStatusReport(outbox.published.at(-1)!.data);
  return { reconciler, put, last, outbox };
}

describe('MemoryPodRuntime', () => {
  it('keeps a pod as CRI would: identity, hashes and restart count read back from labels and annotations', async () => {
    const clock = new ManualClock();
    const rt = new MemoryPodRuntime({ clock });
    const pod = podSpec({ hostNetwork: false });
    const sb = await rt.runSandbox(pod, 0);
    const c = await rt.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 3 });
    expect((await rt.observePod(keyOf(pod))).containers[0]).toMatchObject({ state: 'created', startedAtMs: 0 });
    clock.advance(5);
    await rt.startContainer(c);

    const seen = await rt.observePod(keyOf(pod));
    expect(seen.sandboxes).toEqual([
      expect.objectContaining({ id: sb, uid: pod.uid, namespace: pod.namespace, name: pod.name, state: 'ready', hostNetwork: false }),
    ]);
    expect(seen.sandboxes[0]!.ip).toMatch(/^10\.254\.0\.\d+$/);
    expect(seen.containers).toEqual([
      expect.objectContaining({
        id: c,
        sandboxId: sb,
        podUid: pod.uid,
        name: 'main',
        state: 'running',
        hash: containerHash(pod.containers[0]!),
        restartCount: 3,
        startedAtMs: clock.now(),
      }),
    ]);
    expect(await rt.listPodKeys()).toEqual([keyOf(pod)]);
    expect((await rt.relist()).get(`${pod.namespace}/${pod.name}`)).toContain(`c:${c}:`);
  });

  it('makes a container exit, stops and removes idempotently, and says NotFound for what is gone', async () => {
    const rt = new MemoryPodRuntime();
    const pod = podSpec();
    const sb = await rt.runSandbox(pod, 0);
    const c = await rt.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 });
    await rt.startContainer(c);
    rt.exit(c, 2);
    expect((await rt.observePod(keyOf(pod))).containers[0]).toMatchObject({ state: 'exited', exitCode: 2, reason: 'Error' });
    await rt.stopContainer(c, 30);
    await rt.stopSandbox(sb);
    expect((await rt.observePod(keyOf(pod))).sandboxes[0]!.state).toBe('notready');
    await rt.removeSandbox(sb);
    await rt.removeSandbox(sb);
    await rt.removeContainer(c);
    expect(await rt.observePod(keyOf(pod))).toEqual({ key: keyOf(pod), sandboxes: [], containers: [] });
    expect(await rt.relist()).toEqual(new Map());
    const notFound = (p: Promise<unknown>) => p.then(() => false, isRuntimeNotFound);
    expect(await notFound(rt.startContainer(c))).toBe(true);
    expect(await notFound(rt.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 }))).toBe(true);
  });

  it('runs a pod under the real reconciler, restarts an exited container with its restart count, and a new agent re-adopts', async () => {
    const clock = new ManualClock();
    const rt = new MemoryPodRuntime({ clock });
    const pod = podSpec();
    const first = agentOn(rt, clock);
    first.put(pod);
    await first.reconciler.sync(`${pod.namespace}/${pod.name}`);
    expect(first.last()).toMatchObject({ uid: pod.uid, phase: edge.PodPhase.RUNNING });
    const [c1] = rt.containerIds(keyOf(pod));

    rt.exit(c1!, 1);
    await first.reconciler.sync(`${pod.namespace}/${pod.name}`);
    expect(first.last().containerStatuses[0]).toMatchObject({ restartCount: 1, ready: true });
    const before = await rt.observePod(keyOf(pod));

    // An agent restart: a new reconciler with nothing in memory, on the same runtime.
    const second = agentOn(rt, clock);
    second.put(pod);
    await second.reconciler.sync(`${pod.namespace}/${pod.name}`);
    expect(second.last()).toMatchObject({ uid: pod.uid, phase: edge.PodPhase.RUNNING });
    expect(second.last().containerStatuses[0]).toMatchObject({ restartCount: 1, ready: true });
    const after = await rt.observePod(keyOf(pod));
    expect(after.sandboxes.map((s) => s.id)).toEqual(before.sandboxes.map((s) => s.id));
    expect(after.containers.map((c) => c.id)).toEqual(before.containers.map((c) => c.id));
  });

  it('keeps no call log by default (a hollow node runs for days); injected errors work either way', async () => {
    const rt = new MemoryPodRuntime();
    const agent = agentOn(rt, new ManualClock());
    const pod = podSpec();
    agent.put(pod);
    await agent.reconciler.sync(`${pod.namespace}/${pod.name}`);
    expect(rt.calls).toEqual([]);
    expect(rt.images.calls).toEqual([]);
    rt.failNext('health');
    await expect(rt.health()).rejects.toThrow('injected health failure');
    expect(await rt.health()).toMatchObject({ runtimeReady: true });
  });

  it('with recordCalls, records every call in order and throws each injected error once', async () => {
    const rt = new MemoryPodRuntime({ recordCalls: true });
    const pod = podSpec();
    rt.failNext('runSandbox');
    await expect(rt.runSandbox(pod, 0)).rejects.toThrow('injected runSandbox failure');
    const sb = await rt.runSandbox(pod, 1);
    await rt.ensureImage(pod, pod.containers[0]!);
    expect(rt.methods()).toEqual(['runSandbox', 'runSandbox', 'ensureImage']);
    expect(rt.calls[1]!.args).toEqual([pod.uid, 1]);
    expect([...rt.sandboxes.keys()]).toEqual([sb]);
    rt.images.pullAny = false;
    const other = podSpec({ containers: [{ name: 'main', image: 'docker.io/nope/missing:1' }] });
    await expect(rt.ensureImage(other, other.containers[0]!)).rejects.toMatchObject({ kind: 'image-pull' });
  });

  it('a container that ignores SIGTERM: a stop waits out its grace on the clock; 0, stopSandbox or removal end it sooner', async () => {
    const clock = new ManualClock();
    const rt = new MemoryPodRuntime({ clock });
    const pod = podSpec();
    const sb = await rt.runSandbox(pod, 0);
    const start = async () => {
      const id = await rt.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 });
      await rt.startContainer(id);
      rt.ignoreSigterm(id);
      return id;
    };
    const a = await start();
    let stopped = false;
    const stop = rt.stopContainer(a, 30).then(() => (stopped = true));
    expect(rt.pendingStops()).toEqual([{ id: a, graceSec: 30, deadlineMs: clock.now() + 30_000 }]);
    clock.advance(29_000);
    rt.expireStops();
    await Promise.resolve();
    expect(stopped).toBe(false);
    clock.advance(1_000);
    rt.expireStops();
    await stop;
    expect(rt.containers.get(a)).toMatchObject({ state: 'exited', exitCode: 137 });

    const b = await start();
    const waiting = rt.stopContainer(b, 30);
    await rt.stopContainer(b, 0);
    await waiting;
    const c = await start();
    const removed = rt.stopContainer(c, 30);
    await rt.removeSandbox(sb);
    await removed;
    expect(rt.pendingStops()).toEqual([]);
  });
});

describe('MemoryImageService', () => {
  it('pulls any image at once under a name-derived id, lists and removes it, and asks the runtime what is in use', async () => {
    const rt = new MemoryPodRuntime();
    const images = rt.images;
    expect(await images.imageId(BUSYBOX)).toBeUndefined();
    const id = await images.pullImage(BUSYBOX);
    expect(id).toBe(MemoryImageService.idOf(BUSYBOX));
    expect(await images.imageId(BUSYBOX)).toBe(id);
    const pod = podSpec();
    const sb = await rt.runSandbox(pod, 0);
    await rt.createContainer(pod, { id: sb, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 });
    expect(await images.imagesInUse()).toEqual(new Set([id]));
    const fs = await images.imageFsUsage();
    expect(fs.availableBytes / fs.capacityBytes).toBeGreaterThan(0.99);
    await images.removeImage(id);
    expect((await images.listImages()).map((i) => i.names)).toEqual([[await images.sandboxImage()]]);
  });

  it('with a registry: its ids and sizes, the credentials it requires, one image under several names; pullAny off fails others', async () => {
    const images = new MemoryImageService({ recordCalls: true, pullAny: false });
    const auth = { username: 'alice', password: 'right' };
    images.registry.set('reg.io/a:1', { id: 'sha256:a', sizeBytes: 10, auth });
    images.registry.set('reg.io/a:latest', { id: 'sha256:a', sizeBytes: 10 });
    await expect(images.pullImage('reg.io/a:1')).rejects.toThrow('failed to pull and unpack image "reg.io/a:1": 401 Unauthorized');
    expect(await images.pullImage('reg.io/a:1', auth)).toBe('sha256:a');
    expect(await images.pullImage('reg.io/a:latest')).toBe('sha256:a');
    await expect(images.pullImage('reg.io/b:1')).rejects.toMatchObject({ kind: 'image-pull' });
    expect((await images.listImages()).find((i) => i.id === 'sha256:a')?.names).toEqual(['reg.io/a:1', 'reg.io/a:latest']);
    expect(images.pulls().map((p) => p.image)).toEqual(['reg.io/a:1', 'reg.io/a:1', 'reg.io/a:latest', 'reg.io/b:1']);
  });
});
