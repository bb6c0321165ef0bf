/**
 * Every provider replica is killed (SIGKILL) in the middle of a rollout and started again (hack/up.sh restarts only
 * what is not running): the rollout completes, and the pods that were Running before the kill and are still wanted
 * after it keep their containers (same containerID, restartCount 0): a provider restart disturbs nothing at the edge.
 */
import { jest } from '@jest/globals';
import {
  BUSYBOX,
  BUSYBOX_LATEST,
  applyObject,
  criState,
  deleteAndWait,
  edgeDeployment,
  eventually,
  hack,
  isRunningReady,
  isZombieOrGone,
  kubectl,
  layout,
  log,
  pods,
  providerPid,
  type PodObj,
} from './stack.js';
import { cri as criApi } from '@edgefarm/proto';

const NAME = 'e2e-provider-restart';
const SELECTOR = `app=${NAME}`;

jest.setTimeout(10 * 60_000);

beforeAll(async () => {
  await hack('up.sh'); // every replica running, whatever an earlier test left behind
});

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

test('kill -9 of every provider replica mid-rollout: the rollout completes after its restart, running pods are kept', async () => {
  const deployment = edgeDeployment(NAME, 'provider-restart', 2, { image: BUSYBOX, grace: 5 }) as { spec: Record<string, unknown> };
  // One pod at a time, each Ready for 5 s before the next step: the rollout takes long enough to be interrupted.
  deployment.spec.minReadySeconds = 5;
  deployment.spec.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
  await applyObject(deployment);
  await eventually('2 pods Running and Ready on the old image', 120_000, async () => {
    const ps = (await pods(SELECTOR)).filter(isRunningReady);
    return ps.length === 2 ? ps : undefined;
  });
  // minReadySeconds: wait until the Deployment counts them available, so the rollout starts from a settled state.
  await kubectl('rollout', 'status', `deployment/${NAME}`, '--timeout=120s');

  const started = Date.now();
  await kubectl('set', 'image', `deployment/${NAME}`, `app=${BUSYBOX_LATEST}`);
  // Mid-rollout: the first new pod runs, the old ones are not all gone yet.
  const beforeKill = await eventually('the first new pod Running', 120_000, async () => {
    const ps = await pods(SELECTOR);
    const fresh = ps.filter((p) => p.spec.containers[0]!.image === BUSYBOX_LATEST && isRunningReady(p));
    return fresh.length >= 1 ? ps : undefined;
  });
  const running = beforeKill.filter(isRunningReady);
  log(
    `mid-rollout after ${Date.now() - started} ms: ${beforeKill.map((p) => `${p.metadata.name}[${p.spec.containers[0]!.image.split(':')[1]} ${p.status.phase}${p.metadata.deletionTimestamp ? ' terminating' : ''}]`).join(', ')}`,
  );

  const replicas = Number(await layout('echo "$EF_PROVIDERS"'));
  const pids = await Promise.all(Array.from({ length: replicas }, (_, i) => providerPid(i + 1)));
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();
  for (const pid of pids)
    await eventually(`provider pid ${pid} gone`, 30_000, async () => ((await isZombieOrGone(pid)) ? true : undefined), 100);
  log(`every provider replica (pids ${pids.join(', ')}) killed with SIGKILL ${killedAt - started} ms after set image`);

  // While the provider is down the rollout goes on in the API (the new pod is Ready, minReadySeconds pass): an old
  // pod is deleted and a second new one created. Restart only once that happened, so the restarted provider has a
  // graceful delete and a new pod to carry to the edge.
  const oldUids = new Set(beforeKill.filter((p) => p.spec.containers[0]!.image === BUSYBOX).map((p) => p.metadata.uid));
  await eventually('an old pod Terminating while the provider is down', 60_000, async () => {
    const ps = await pods(SELECTOR);
    return ps.some((p) => oldUids.has(p.metadata.uid) && p.metadata.deletionTimestamp) ? true : undefined;
  });
  log(`an old pod is Terminating ${Date.now() - killedAt} ms after the kill, provider still down`);

  await hack('up.sh');
  const newPids = await Promise.all(pids.map((_, i) => providerPid(i + 1)));
  for (const [i, p] of newPids.entries()) expect(p).not.toBe(pids[i]);
  log(`providers restarted by hack/up.sh (pids ${newPids.join(', ')}), down for ${Date.now() - killedAt} ms`);

  await kubectl('rollout', 'status', `deployment/${NAME}`, '--timeout=120s');
  const after = await eventually('only 2 new pods left, Running and Ready', 120_000, async () => {
    const ps = await pods(SELECTOR);
    return ps.length === 2 && ps.every((p) => isRunningReady(p) && p.spec.containers[0]!.image === BUSYBOX_LATEST) ? ps : undefined;
  });
  log(`rollout with a provider restart complete ${Date.now() - started} ms after set image`);

  const byUid = new Map<string, PodObj>(after.map((p) => [p.metadata.uid, p]));
  const survivors = running.filter((p) => byUid.has(p.metadata.uid));
  expect(survivors.length).toBeGreaterThanOrEqual(1);
  for (const before of survivors) {
    const now = byUid.get(before.metadata.uid)!;
    const was = before.status.containerStatuses![0]!;
    const is = now.status.containerStatuses![0]!;
    log(`survivor ${now.metadata.name}: containerID ${was.containerID} -> ${is.containerID}, restartCount ${is.restartCount}`);
    expect(is.containerID).toBe(was.containerID);
    expect(is.restartCount).toBe(0);
  }
  for (const p of after) {
    const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': p.metadata.uid });
    expect(sandboxes.map((s) => s.state)).toEqual([criApi.PodSandboxState.SANDBOX_READY]);
    expect(containers.map((c) => c.state)).toEqual([criApi.ContainerState.CONTAINER_RUNNING]);
    expect(p.status.containerStatuses?.[0]?.containerID).toBe(`containerd://${containers[0]!.id}`);
  }
  // Old pods are gone from containerd too.
  for (const uid of oldUids) expect(byUid.has(uid)).toBe(false);
  const { sandboxes } = await criState('edge-1', { app: NAME });
  expect(sandboxes.map((s) => s.labels['io.kubernetes.pod.uid']).sort()).toEqual([...byUid.keys()].sort());
});
