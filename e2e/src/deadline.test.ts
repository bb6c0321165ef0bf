/**
 * activeDeadlineSeconds on an edge pod, as on a kubelet: the agent stops the pod once it has been active that long,
 * and the pod ends Failed with reason DeadlineExceeded; nothing restarts it. Setting a deadline on a running pod (an
 * update Kubernetes allows) takes effect too.
 */
import { jest } from '@jest/globals';
import { cri } from '@edgefarm/proto';
import {
  BUSYBOX,
  EDGE_PLACEMENT,
  SLEEP_LOOP_TRAPPED,
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

const SELECTOR = 'e2e=deadline';

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, ['pod/e2e-deadline', 'pod/e2e-deadline-set']);
});

function edgePod(name: string, activeDeadlineSeconds?: number): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { e2e: 'deadline', app: name } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 2,
      ...(activeDeadlineSeconds === undefined ? {} : { activeDeadlineSeconds }),
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: SLEEP_LOOP_TRAPPED }],
    },
  };
}

async function failedWithDeadline(name: string): Promise<PodObj> {
  return eventually(`${name} Failed with DeadlineExceeded`, 90_000, async () => {
    const p = await kubectlJson<PodObj>('get', 'pod', name);
    return p.status.phase === 'Failed' && p.status.reason === 'DeadlineExceeded' ? p : undefined;
  });
}

test('a pod with activeDeadlineSeconds 8 runs, then ends Failed/DeadlineExceeded with its container stopped', async () => {
  const name = 'e2e-deadline';
  await applyObject(edgePod(name, 8));
  const running = await eventually(`${name} Running`, 60_000, async () => (await pods(`app=${name}`)).find(isRunningReady));
  const pod = await failedWithDeadline(name);
  const startedAt = Date.parse((pod.status as { startTime?: string }).startTime ?? '');
  log(`activeDeadlineSeconds 8: Failed/DeadlineExceeded seen ${Date.now() - startedAt} ms after the pod's startTime`);
  expect(pod.status.message).toMatch(/longer than the specified deadline/);
  expect(pod.metadata.uid).toBe(running.metadata.uid);
  const { containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect(containers.filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING)).toEqual([]);
  // Stays Failed: nothing restarts it.
  await new Promise((r) => setTimeout(r, 3000));
  const later = await kubectlJson<PodObj>('get', 'pod', name);
  expect([later.status.phase, later.status.containerStatuses?.[0]?.restartCount]).toEqual(['Failed', 0]);
});

test('setting activeDeadlineSeconds on a running pod stops it', async () => {
  const name = 'e2e-deadline-set';
  await applyObject(edgePod(name));
  await eventually(`${name} Running`, 60_000, async () => (await pods(`app=${name}`)).find(isRunningReady));
  await new Promise((r) => setTimeout(r, 3000));
  const t0 = Date.now();
  await kubectl('patch', 'pod', name, '-p', JSON.stringify({ spec: { activeDeadlineSeconds: 1 } }));
  await failedWithDeadline(name);
  log(`activeDeadlineSeconds set to 1 on a pod running for 3 s: Failed/DeadlineExceeded ${Date.now() - t0} ms after kubectl patch`);
});
