/**
 * Graceful delete on edge-1 honours the pod's grace period, as a kubelet does: `kubectl delete pod` leaves the pod
 * Terminating in the API while the container gets SIGTERM; it is gone once the container exited (a container that
 * handles TERM) or was killed at the end of the grace period (one that ignores TERM), and so is its container.
 */
import { jest } from '@jest/globals';
import { cri } from '@edgefarm/proto';
import {
  BUSYBOX,
  EDGE_PLACEMENT,
  applyObject,
  criState,
  deleteAndWait,
  eventually,
  isRunningReady,
  kubectl,
  kubectlJson,
  log,
  pods,
  type PodObj,
} from './stack.js';

const SELECTOR = 'e2e=grace';

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, ['pod/e2e-grace-trap', 'pod/e2e-grace-ignore', 'pod/e2e-grace-shorten']);
});

function edgePod(name: string, grace: number, script: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { e2e: 'grace', app: name } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: grace,
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script] }],
    },
  };
}

/** Creates the pod, waits until it runs, deletes it without waiting; returns how long it stayed in the API. */
async function deleteTimed(
  name: string,
  grace: number,
  script: string,
): Promise<{ pod: PodObj; goneMs: number; terminatingSeen: boolean }> {
  await applyObject(edgePod(name, grace, script));
  const pod = await eventually(`${name} Running and Ready`, 120_000, async () => {
    const ps = (await pods(`app=${name}`)).filter(isRunningReady);
    return ps.length === 1 ? ps[0] : undefined;
  });
  const { containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect(containers).toHaveLength(1);

  const t0 = Date.now();
  await kubectl('delete', 'pod', name, '--wait=false');
  let terminatingSeen = false;
  const goneMs = await eventually(
    `${name} gone from the API`,
    60_000,
    async () => {
      const list = await kubectlJson<{ items: PodObj[] }>('get', 'pods', '-l', `app=${name}`);
      if (list.items.length === 0) return Date.now() - t0;
      if (list.items[0]!.metadata.deletionTimestamp) terminatingSeen = true;
      return undefined;
    },
    100,
  );
  return { pod, goneMs, terminatingSeen };
}

test('a container that handles SIGTERM (3 s cleanup, grace 10 s) keeps its pod Terminating until it exited', async () => {
  // busybox sh as PID 1 receives TERM only through a trap; the trap runs after the current `sleep 1` returns.
  const { pod, goneMs, terminatingSeen } = await deleteTimed(
    'e2e-grace-trap',
    10,
    'trap "echo got TERM; sleep 3; exit 0" TERM; while true; do sleep 1; done',
  );
  log(`grace 10 s, TERM handled in ~3-4 s: pod gone from the API ${goneMs} ms after kubectl delete`);
  expect(terminatingSeen).toBe(true);
  expect(goneMs).toBeGreaterThanOrEqual(2500);
  // Gone before the grace period ended: the container exited on TERM (one killed at 10 s would mean TERM was lost).
  expect(goneMs).toBeLessThan(10_000);
  const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect({ sandboxes: sandboxes.length, containers: containers.length }).toEqual({ sandboxes: 0, containers: 0 });
});

test('a container that ignores SIGTERM (grace 3 s) is killed after the grace period, not before', async () => {
  const { pod, goneMs, terminatingSeen } = await deleteTimed('e2e-grace-ignore', 3, 'while true; do sleep 1; done');
  log(`grace 3 s, TERM ignored: pod gone from the API ${goneMs} ms after kubectl delete (SIGKILL at 3 s)`);
  expect(terminatingSeen).toBe(true);
  expect(goneMs).toBeGreaterThanOrEqual(2500);
  expect(goneMs).toBeLessThan(3000 + 10_000);
  const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect({ sandboxes: sandboxes.length, containers: containers.length }).toEqual({ sandboxes: 0, containers: 0 });
});

test('shortening the grace period of a terminating pod (120 s, then 1 s) ends it at the shorter one', async () => {
  const name = 'e2e-grace-shorten';
  await applyObject(edgePod(name, 120, 'while true; do sleep 1; done'));
  const pod = await eventually(`${name} Running and Ready`, 120_000, async () => {
    const ps = (await pods(`app=${name}`)).filter(isRunningReady);
    return ps.length === 1 ? ps[0] : undefined;
  });
  await kubectl('delete', 'pod', name, '--wait=false');
  await eventually(`${name} Terminating`, 30_000, async () =>
    (await kubectlJson<PodObj>('get', 'pod', name)).metadata.deletionTimestamp ? true : undefined,
  );
  // The agent is now in the 120 s stop of a container that ignores TERM.
  await new Promise((r) => setTimeout(r, 2000));
  const { containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect(containers.filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING)).toHaveLength(1);

  const t0 = Date.now();
  await kubectl('delete', 'pod', name, '--grace-period=1', '--wait=false');
  const goneMs = await eventually(
    `${name} gone from the API`,
    90_000,
    async () => {
      const list = await kubectlJson<{ items: PodObj[] }>('get', 'pods', '-l', `app=${name}`);
      return list.items.length === 0 ? Date.now() - t0 : undefined;
    },
    100,
  );
  log(`grace 120 s shortened to 1 s on a terminating pod: gone from the API ${goneMs} ms after the second kubectl delete`);
  expect(goneMs).toBeLessThan(30_000);
  const after = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect({ sandboxes: after.sandboxes.length, containers: after.containers.length }).toEqual({ sandboxes: 0, containers: 0 });
});
