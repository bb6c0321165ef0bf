import { decodePodStatusReport, edge, outboxSubjects } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { containerHash, sandboxHash } from '../runtime/labels.js';
import type { ObservedContainer, ObservedPod, ObservedSandbox } from '../runtime/types.js';
import { ManualClock, fieldsOf, podSpec, silentLogger } from '@edgefarm/testing';
import { buildPodStatus, type StatusContext } from './build.js';
import { StatusReporter } from './reporter.js';

const NODE = 'n1';
const pod = podSpec({ name: 'web', uid: 'u1' });
const ctx: StatusContext = {
  nodeIp: '192.168.1.5',
  runtimeName: 'containerd',
  containerFailures: new Map(),
  sandboxFailure: null,
  backoff: [],
  nowMs: 0,
};

function sb(over: Partial<ObservedSandbox> = {}): ObservedSandbox {
  return {
    id: 'sb1',
    uid: 'u1',
    namespace: 'default',
    name: 'web',
    attempt: 0,
    state: 'ready',
    createdAtMs: 1000,
    ip: '10.1.0.7',
    hostNetwork: false,
    configHash: sandboxHash(pod),
    resourceVersion: '100',
    ...over,
  };
}
function ct(over: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id: 'c1',
    sandboxId: 'sb1',
    podUid: 'u1',
    name: 'main',
    attempt: 0,
    state: 'running',
    hash: containerHash(pod.containers[0]!),
    restartCount: 0,
    terminationGracePeriodSec: 1,
    image: pod.containers[0]!.image,
    imageRef: 'sha256:abc',
    createdAtMs: 1100,
    startedAtMs: 1200,
    finishedAtMs: 0,
    exitCode: 0,
    reason: '',
    message: '',
    ...over,
  };
}
const obs = (sandboxes: ObservedSandbox[], containers: ObservedContainer[]): ObservedPod => ({
  key: { namespace: 'default', name: 'web' },
  sandboxes,
  containers,
});

describe('buildPodStatus', () => {
  it('Pending with ContainerCreating before anything runs', () => {
    const s = buildPodStatus(pod, obs([], []), ctx);
    expect(s.phase).toBe(edge.PodPhase.PENDING);
    expect(s.containerStatuses[0]!.state?.state).toMatchObject({ case: 'waiting', value: { reason: 'ContainerCreating' } });
    expect(s.podIp).toBe('');
  });

  it('Running with pod IP, start time and a ready container', () => {
    const s = buildPodStatus(pod, obs([sb()], [ct()]), ctx);
    expect(s.phase).toBe(edge.PodPhase.RUNNING);
    expect(s.podIp).toBe('10.1.0.7');
    expect(s.podIps).toEqual(['10.1.0.7']);
    expect(s.startTimeMs).toBe(1000n);
    const c = s.containerStatuses[0]!;
    expect(c).toMatchObject({
      name: 'main',
      ready: true,
      started: true,
      restartCount: 0,
      containerId: 'containerd://c1',
      imageId: 'sha256:abc',
    });
    expect(c.state?.state).toMatchObject({ case: 'running', value: { startedAtMs: 1200n } });
    expect(s.observedResourceVersion).toBe('100');
  });

  it('uses the node IP for hostNetwork pods', () => {
    const hn = podSpec({ ...fieldsOf(pod), hostNetwork: true });
    expect(buildPodStatus(hn, obs([sb({ ip: '' })], [ct()]), ctx).podIp).toBe('192.168.1.5');
  });

  it('reports the previous attempt as lastState and the restart count', () => {
    const s = buildPodStatus(
      pod,
      obs(
        [sb()],
        [
          ct({ id: 'c2', attempt: 1, restartCount: 1, createdAtMs: 3000 }),
          ct({ state: 'exited', exitCode: 3, finishedAtMs: 2500, reason: 'Error' }),
        ],
      ),
      ctx,
    );
    const c = s.containerStatuses[0]!;
    expect(c.restartCount).toBe(1);
    expect(c.lastState?.state).toMatchObject({
      case: 'terminated',
      value: { exitCode: 3, reason: 'Error', containerId: 'containerd://c1' },
    });
  });

  it('Waiting CrashLoopBackOff during a restart backoff, phase Running under Always', () => {
    const s = buildPodStatus(pod, obs([sb()], [ct({ state: 'exited', exitCode: 1, finishedAtMs: 5000 })]), {
      ...ctx,
      backoff: [
        { name: 'main', restartCount: 0, untilMs: 6000, message: 'back-off 10s restarting failed container=main pod=p_default(u)' },
      ],
      nowMs: 5000,
    });
    expect(s.phase).toBe(edge.PodPhase.RUNNING);
    expect(s.containerStatuses[0]!.state?.state).toMatchObject({
      case: 'waiting',
      value: { reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=main pod=p_default(u)' },
    });
    expect(s.containerStatuses[0]!.lastState?.state.case).toBe('terminated');
  });

  it('Succeeded / Failed under Never', () => {
    const never = podSpec({ ...fieldsOf(pod), restartPolicy: edge.RestartPolicy.NEVER });
    expect(buildPodStatus(never, obs([sb()], [ct({ state: 'exited', exitCode: 0 })]), ctx).phase).toBe(edge.PodPhase.SUCCEEDED);
    expect(buildPodStatus(never, obs([sb()], [ct({ state: 'exited', exitCode: 2 })]), ctx).phase).toBe(edge.PodPhase.FAILED);
  });

  it('carries start failures as the waiting reason', () => {
    const s = buildPodStatus(pod, obs([sb()], []), {
      ...ctx,
      containerFailures: new Map([['main', { reason: 'ErrImagePull', message: 'nope' }]]),
    });
    expect(s.phase).toBe(edge.PodPhase.PENDING);
    expect(s.containerStatuses[0]!.state?.state).toMatchObject({ case: 'waiting', value: { reason: 'ErrImagePull', message: 'nope' } });
  });

  describe('activeDeadlineSeconds (start: the sandbox, created at 1000)', () => {
    const limited = (over: Partial<Pick<edge.EdgePodSpec, 'restartPolicy'>> = {}) =>
      podSpec({ ...fieldsOf(pod), activeDeadlineSeconds: 5n, ...over });
    const exceeded = {
      phase: edge.PodPhase.FAILED,
      reason: 'DeadlineExceeded',
      message: 'Pod was active on the node longer than the specified deadline',
    };

    it('Running before the deadline, Failed/DeadlineExceeded from now - start = deadline on', () => {
      expect(buildPodStatus(limited(), obs([sb()], [ct()]), { ...ctx, nowMs: 5999 })).toMatchObject({
        phase: edge.PodPhase.RUNNING,
        reason: '',
      });
      expect(buildPodStatus(limited(), obs([sb()], [ct()]), { ...ctx, nowMs: 6000 })).toMatchObject(exceeded);
    });

    it('stays Failed/DeadlineExceeded once the containers are killed, with their terminated states', () => {
      const s = buildPodStatus(limited(), obs([sb({ state: 'notready' })], [ct({ state: 'exited', exitCode: 137, finishedAtMs: 6100 })]), {
        ...ctx,
        nowMs: 9000,
      });
      expect(s).toMatchObject({ ...exceeded, startTimeMs: 1000n });
      expect(s.containerStatuses[0]!.state?.state).toMatchObject({ case: 'terminated', value: { exitCode: 137 } });
      const never = limited({ restartPolicy: edge.RestartPolicy.NEVER });
      expect(
        buildPodStatus(never, obs([sb({ state: 'notready' })], [ct({ state: 'exited', exitCode: 137, finishedAtMs: 6100 })]), {
          ...ctx,
          nowMs: 9000,
        }),
      ).toMatchObject(exceeded);
    });

    it('a pod that completed before its deadline keeps its phase', () => {
      const never = limited({ restartPolicy: edge.RestartPolicy.NEVER });
      const s = buildPodStatus(never, obs([sb({ state: 'notready' })], [ct({ state: 'exited', exitCode: 0, finishedAtMs: 3000 })]), {
        ...ctx,
        nowMs: 60_000,
      });
      expect(s).toMatchObject({ phase: edge.PodPhase.SUCCEEDED, reason: '', message: '' });
    });

    it('no deadline before the pod has started', () => {
      expect(buildPodStatus(limited(), obs([], []), { ...ctx, nowMs: 1e12 })).toMatchObject({ phase: edge.PodPhase.PENDING, reason: '' });
    });
  });

  it('an evicted pod is Failed with the eviction reason and message, whatever its containers do', () => {
    const evicted = { reason: 'Evicted', message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".' };
    expect(buildPodStatus(pod, obs([sb()], [ct()]), { ...ctx, evicted })).toMatchObject({ phase: edge.PodPhase.FAILED, ...evicted });
    const killed = obs([sb({ state: 'notready' })], [ct({ state: 'exited', exitCode: 137, finishedAtMs: 6100 })]);
    expect(buildPodStatus(pod, killed, { ...ctx, evicted })).toMatchObject({ phase: edge.PodPhase.FAILED, ...evicted });
  });

  it('ignores sandboxes and containers of another UID under the same key', () => {
    const s = buildPodStatus(pod, obs([sb({ id: 'old', uid: 'u0' })], [ct({ sandboxId: 'old', podUid: 'u0' })]), ctx);
    expect(s.phase).toBe(edge.PodPhase.PENDING);
    expect(s.startTimeMs).toBe(0n);
  });
});

describe('StatusReporter', () => {
  function setup() {
    const outbox = new FakeOutbox();
    const clock = new ManualClock(1_700_000_000_000);
    const reporter = new StatusReporter({ wireId: NODE, outbox, clock, log: silentLogger() });
    const reports = () => outbox.published.map((p) => ({ subject: p.subject, r: decodePodStatusReport(p.data) }));
    return { outbox, clock, reporter, reports };
  }
  const key = { namespace: 'default', name: 'web' };

  it('writes to the pod outbox subject only when the status changed (observed_at aside)', async () => {
    const { reporter, clock, reports } = setup();
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    clock.advance(1500);
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    expect(reports()).toHaveLength(1);
    expect(reports()[0]!.subject).toBe(outboxSubjects.of(NODE, { kind: 'pod', uid: 'u1' }));
    await reporter.sync(key, pod, obs([sb()], [ct({ state: 'exited', exitCode: 1, finishedAtMs: 9 })]), ctx);
    expect(reports()).toHaveLength(2);
  });

  it('stamps strictly increasing generations, at least now_ms * 1000', async () => {
    const { reporter, clock, reports } = setup();
    await reporter.sync(key, pod, obs([], []), ctx);
    await reporter.sync(key, pod, obs([sb()], []), ctx); // same clock reading
    clock.advance(-5000); // the wall clock steps back
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    const gens = reports().map((x) => x.r.generation);
    expect(gens[0]).toBe(1_700_000_000_000n * 1000n);
    expect(gens[1]).toBe(gens[0]! + 1n);
    expect(gens[2]).toBe(gens[1]! + 1n);
    expect(reports()[2]!.r.observedAtMs).toBe(1_699_999_995_000n);
  });

  it('retries a failed write on the next sync', async () => {
    const { reporter, outbox, reports } = setup();
    outbox.failNext();
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    expect(reports()).toHaveLength(0);
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    expect(reports()).toHaveLength(1);
  });

  it('reports removed once a deleting pod is gone, once', async () => {
    const { reporter, reports } = setup();
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    const deleting = podSpec({ ...fieldsOf(pod), deleting: true, resourceVersion: '101' });
    await reporter.sync(key, deleting, obs([], []), ctx);
    await reporter.sync(key, deleting, obs([], []), ctx);
    const rs = reports().map((x) => x.r);
    expect(rs).toHaveLength(2);
    expect(rs[1]).toMatchObject({ uid: 'u1', removed: true, observedResourceVersion: '101', phase: edge.PodPhase.RUNNING });
  });

  it('reports removed after a crash between removing the sandbox and reporting it (fresh reporter)', async () => {
    const { reporter, reports } = setup(); // a restarted agent: no memory of the pod, the deleting spec is still desired
    const deleting = podSpec({ ...fieldsOf(pod), deleting: true, resourceVersion: '101' });
    await reporter.sync(key, deleting, obs([], []), ctx);
    expect(reports().map((x) => x.r)).toEqual([expect.objectContaining({ uid: 'u1', removed: true, observedResourceVersion: '101' })]);
  });

  it('reports removed after a tombstone once nothing is left, then forgets the pod', async () => {
    const { reporter, reports } = setup();
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    await reporter.sync(key, undefined, obs([sb()], [ct()]), ctx); // still being torn down: nothing new
    expect(reports()).toHaveLength(1);
    await reporter.sync(key, undefined, obs([], []), ctx);
    expect(reports().map((x) => x.r.removed)).toEqual([false, true]);
    expect(reporter.pendingKeys()).toEqual([]);
    await reporter.sync(key, undefined, obs([], []), ctx);
    expect(reports()).toHaveLength(2);
  });

  it('reports removed for an earlier UID replaced under the same name', async () => {
    const { reporter, reports } = setup();
    await reporter.sync(key, pod, obs([sb()], [ct()]), ctx);
    const next = podSpec({ ...fieldsOf(pod), uid: 'u2' });
    await reporter.sync(key, next, obs([], []), ctx);
    const rs = reports().map((x) => [x.r.uid, x.r.removed]);
    expect(rs).toEqual([
      ['u1', false],
      ['u2', false],
      ['u1', true],
    ]);
  });

  it('reports removed for an orphan found in the runtime (agent restarted after a tombstone)', async () => {
    const { reporter, reports } = setup();
    await reporter.sync(key, undefined, obs([sb({ uid: 'u9', resourceVersion: '77' })], []), ctx);
    expect(reports()).toHaveLength(0);
    await reporter.sync(key, undefined, obs([], []), ctx);
    expect(reports().map((x) => x.r)).toEqual([expect.objectContaining({ uid: 'u9', removed: true, observedResourceVersion: '77' })]);
  });
});
