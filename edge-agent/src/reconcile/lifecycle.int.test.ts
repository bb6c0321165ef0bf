/**
 * Pod lifecycle rules of the edge-agent against a real containerd and NATS (the test plays the provider):
 * activeDeadlineSeconds, and shortening the grace period of a pod that is already terminating.
 */
import { cri, edge } from '@edgefarm/proto';
import type { Agent } from '../agent.js';
import { BUSYBOX, fieldsOf, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let agent: Agent;
let watcher: StatusWatcher;

/** A container that traps and ignores SIGTERM: only SIGKILL (at the end of the grace period) stops it. */
const IGNORES_TERM = ['sh', '-c', 'trap "" TERM; while true; do sleep 1; done'];
const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
const deadlineExceeded = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.FAILED && r.reason === 'DeadlineExceeded';

let bed: AgentBed;
const containersOf = (uid: string) => bed.containers(uid);
const sandboxesOf = (uid: string) => bed.sandboxes(uid);
async function startAgent(): Promise<void> {
  agent = await bed.startAgent();
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, agent, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('shortening the grace period of a terminating pod', () => {
  async function terminatingWithGrace60(): Promise<edge.EdgePodSpec> {
    const pod = podSpec({
      hostNetwork: true,
      terminationGracePeriodSeconds: 60n,
      containers: [{ name: 'stubborn', image: BUSYBOX, command: IGNORES_TERM }],
    });
    await publishDesired(site.hubNc, site.node, pod);
    await watcher.waitFor(pod.uid, running);
    await sleep(500); // sh has installed its trap
    await publishDesired(
      site.hubNc,
      site.node,
      podSpec({ ...fieldsOf(pod), resourceVersion: '200', deleting: true, deletionGracePeriodSeconds: 60n }),
    );
    await sleep(2000);
    // The agent's StopContainer(60) waits: SIGTERM was ignored.
    const live = (await containersOf(pod.uid)).filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING);
    expect(live).toHaveLength(1);
    expect(watcher.of(pod.uid).some((r) => r.removed)).toBe(false);
    return pod;
  }

  it(
    'deleted with grace 60, then the same pod with grace 2: gone in seconds, reported removed',
    async () => {
      const pod = await terminatingWithGrace60();
      const t0 = performance.now();
      await publishDesired(
        site.hubNc,
        site.node,
        podSpec({ ...fieldsOf(pod), resourceVersion: '201', deleting: true, deletionGracePeriodSeconds: 2n }),
      );
      await waitFor(
        'container gone',
        async () => (await containersOf(pod.uid)).every((c) => c.state !== cri.ContainerState.CONTAINER_RUNNING),
        30_000,
        50,
      );
      const goneMs = performance.now() - t0;
      const removed = await watcher.waitFor(pod.uid, (r) => r.removed, 30_000);
      const removedMs = removed.at - t0;
      process.stdout.write(
        `agent: grace 60 shortened to 2 after 2.5 s: container killed ${Math.round(goneMs)} ms and pod reported removed ${Math.round(removedMs)} ms after the shorter grace was published\n`,
      );
      expect(goneMs).toBeGreaterThan(1000); // the 2 s were given (SIGTERM first), not an immediate kill
      expect(goneMs).toBeLessThan(10_000); // well before the 60 s
      expect(removedMs).toBeLessThan(15_000);
      expect(await sandboxesOf(pod.uid)).toHaveLength(0);
      expect(await containersOf(pod.uid)).toHaveLength(0);
    },
    T,
  );

  it(
    'deleted with grace 60, then grace 0 (--force --grace-period=0): killed at once',
    async () => {
      const pod = await terminatingWithGrace60();
      const t0 = performance.now();
      await publishDesired(
        site.hubNc,
        site.node,
        podSpec({ ...fieldsOf(pod), resourceVersion: '201', deleting: true, deletionGracePeriodSeconds: 0n }),
      );
      const removed = await watcher.waitFor(pod.uid, (r) => r.removed, 30_000);
      const removedMs = removed.at - t0;
      process.stdout.write(`agent: grace 60 shortened to 0: pod reported removed ${Math.round(removedMs)} ms after\n`);
      expect(removedMs).toBeLessThan(5000);
      expect(await containersOf(pod.uid)).toHaveLength(0);
    },
    T,
  );
});

describe('activeDeadlineSeconds', () => {
  it(
    'kills the pod when the deadline runs out, reports Failed/DeadlineExceeded and starts nothing again',
    async () => {
      const pod = podSpec({ hostNetwork: true, activeDeadlineSeconds: 3n, terminationGracePeriodSeconds: 1n });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      const failed = await watcher.waitFor(pod.uid, deadlineExceeded, 30_000);
      expect(failed.report.message).toBe('Pod was active on the node longer than the specified deadline');
      const c = failed.report.containerStatuses[0]!;
      expect(c.state?.state.case).toBe('terminated');
      const finished = c.state?.state.case === 'terminated' ? Number(c.state.state.value.finishedAtMs) : 0;
      const activeMs = finished - Number(failed.report.startTimeMs);
      process.stdout.write(`agent: activeDeadlineSeconds 3: containers finished ${activeMs} ms after the pod's start\n`);
      expect(activeMs).toBeGreaterThanOrEqual(3000);
      expect(activeMs).toBeLessThan(3000 + 1000 + 2500); // deadline + grace (sleep as PID 1 ignores TERM) + slack

      await sleep(2000); // several resyncs (500 ms)
      const cs = await containersOf(pod.uid);
      expect(cs).toHaveLength(1);
      expect(cs[0]!.state).toBe(cri.ContainerState.CONTAINER_EXITED);
      expect((await sandboxesOf(pod.uid)).map((s) => s.state)).toEqual([cri.PodSandboxState.SANDBOX_NOTREADY]);
      expect(deadlineExceeded(watcher.of(pod.uid).at(-1)!)).toBe(true);

      await publishTombstone(site.hubNc, site.node, pod);
      const removed = await watcher.waitFor(pod.uid, (r) => r.removed);
      expect(removed.report.phase).toBe(edge.PodPhase.FAILED);
      expect(await sandboxesOf(pod.uid)).toHaveLength(0);
    },
    T,
  );

  it(
    'a newer spec lowering the deadline below the pod age stops the running pod',
    async () => {
      const pod = podSpec({ hostNetwork: true, activeDeadlineSeconds: 600n, terminationGracePeriodSeconds: 0n });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      await sleep(2500);
      const t0 = performance.now();
      await publishDesired(site.hubNc, site.node, podSpec({ ...fieldsOf(pod), resourceVersion: '101', activeDeadlineSeconds: 2n }));
      const failed = await watcher.waitFor(pod.uid, deadlineExceeded, 30_000);
      expect(failed.at - t0).toBeLessThan(3000);
      expect(failed.report.observedResourceVersion).toBe('101');
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'counts from the pod start the runtime holds, across an agent restart',
    async () => {
      const pod = podSpec({ hostNetwork: true, activeDeadlineSeconds: 6n, terminationGracePeriodSeconds: 0n });
      await publishDesired(site.hubNc, site.node, pod);
      const first = await watcher.waitFor(pod.uid, running);
      await agent.stop();
      await sleep(2000);
      await startAgent();
      const failed = await watcher.waitFor(pod.uid, deadlineExceeded, 30_000);
      expect(failed.report.startTimeMs).toBe(first.report.startTimeMs);
      const c = failed.report.containerStatuses[0]!;
      const finished = c.state?.state.case === 'terminated' ? Number(c.state.state.value.finishedAtMs) : 0;
      const activeMs = finished - Number(failed.report.startTimeMs);
      expect(activeMs).toBeGreaterThanOrEqual(6000);
      expect(activeMs).toBeLessThan(8000); // not 6 s after the restart
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );
});
