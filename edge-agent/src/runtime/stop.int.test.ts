/**
 * What containerd does with StopContainer, pinned against a real one (the agent's grace-period shortening relies on
 * it): a second StopContainer with a shorter timeout, sent while a first one still waits out a longer timeout for a
 * container that ignores SIGTERM, kills the container at the shorter deadline, and the first call returns then too.
 */
import { cri, edge } from '@edgefarm/proto';
import { CriPodRuntime } from './cri-runtime.js';
import { BUSYBOX, podSpec, silentLogger, TestSite, waitFor } from '@edgefarm/testing';

const T = 90_000;
let site: TestSite;
let runtime: CriPodRuntime;

const IGNORES_TERM = ['sh', '-c', 'trap "" TERM; while true; do sleep 1; done'];

beforeAll(async () => {
  site = await TestSite.start();
  const config = site.agentConfig();
  runtime = new CriPodRuntime(site.containerd!, { layout: config }, silentLogger());
}, T);

afterAll(async () => {
  await site?.stop();
}, T);

/** A running container in its own hostNetwork sandbox that traps and ignores SIGTERM. */
async function termIgnoringContainer(): Promise<string> {
  const pod = podSpec({
    hostNetwork: true,
    containers: [{ name: 'stubborn', image: BUSYBOX, command: IGNORES_TERM, imagePullPolicy: edge.PullPolicy.NEVER }],
  });
  const sandbox = await runtime.runSandbox(pod, 0);
  const id = await runtime.createContainer(pod, { id: sandbox, attempt: 0 }, pod.containers[0]!, { attempt: 0, restartCount: 0 });
  await runtime.startContainer(id);
  // Let sh install its trap before the first SIGTERM arrives.
  await new Promise((r) => setTimeout(r, 500));
  return id;
}

async function stateOf(id: string): Promise<{ state: cri.ContainerState; exitCode: number; reason: string }> {
  const s = (await site.containerd!.runtime.containerStatus({ containerId: id })).status!;
  return { state: s.state, exitCode: s.exitCode, reason: s.reason };
}

describe('containerd StopContainer', () => {
  it(
    'a container ignoring SIGTERM outlives a short wait of a long StopContainer',
    async () => {
      const id = await termIgnoringContainer();
      const first = runtime.stopContainer(id, 30);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await stateOf(id)).state).toBe(cri.ContainerState.CONTAINER_RUNNING);
      await runtime.stopContainer(id, 0); // cleanup: SIGKILL
      await first;
      expect(await stateOf(id)).toMatchObject({ state: cri.ContainerState.CONTAINER_EXITED, exitCode: 137 });
    },
    T,
  );

  it(
    'a second StopContainer with a shorter timeout ends the container early; both calls return',
    async () => {
      const id = await termIgnoringContainer();
      const t0 = performance.now();
      let firstDoneAt = 0;
      const first = runtime.stopContainer(id, 60).then(() => {
        firstDoneAt = performance.now() - t0;
      });
      await new Promise((r) => setTimeout(r, 1000));
      expect((await stateOf(id)).state).toBe(cri.ContainerState.CONTAINER_RUNNING);
      const t1 = performance.now();
      await runtime.stopContainer(id, 2);
      const secondMs = performance.now() - t1;
      await waitFor('first StopContainer returns', () => firstDoneAt > 0, 10_000, 20);
      await first;
      const st = await stateOf(id);
      process.stdout.write(
        `containerd: StopContainer(60) then StopContainer(2) 1 s later: the second returned after ${Math.round(secondMs)} ms, the first after ${Math.round(firstDoneAt)} ms; exit ${st.exitCode} (${st.reason})\n`,
      );
      expect(st).toMatchObject({ state: cri.ContainerState.CONTAINER_EXITED, exitCode: 137 });
      expect(secondMs).toBeGreaterThan(1500); // the 2 s timeout was waited out (TERM ignored), then KILL
      expect(secondMs).toBeLessThan(10_000);
      expect(firstDoneAt).toBeLessThan(15_000); // not the 60 s
    },
    T,
  );

  it(
    'a second StopContainer with timeout 0 kills at once',
    async () => {
      const id = await termIgnoringContainer();
      const t0 = performance.now();
      let firstDoneAt = 0;
      const first = runtime.stopContainer(id, 60).then(() => {
        firstDoneAt = performance.now() - t0;
      });
      await new Promise((r) => setTimeout(r, 1000));
      const t1 = performance.now();
      await runtime.stopContainer(id, 0);
      const secondMs = performance.now() - t1;
      await first;
      const st = await stateOf(id);
      process.stdout.write(
        `containerd: StopContainer(60) then StopContainer(0) 1 s later: the second returned after ${Math.round(secondMs)} ms, the first after ${Math.round(firstDoneAt)} ms; exit ${st.exitCode} (${st.reason})\n`,
      );
      expect(st).toMatchObject({ state: cri.ContainerState.CONTAINER_EXITED, exitCode: 137 });
      expect(secondMs).toBeLessThan(1500);
      expect(firstDoneAt).toBeLessThan(5000);
    },
    T,
  );
});
