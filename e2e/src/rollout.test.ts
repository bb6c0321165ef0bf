/**
 * A Deployment rolls out an image change on edge-1: `kubectl set image` + `kubectl rollout status` complete, the
 * new pods run the new image (in the API and in containerd), and the old pods are gone from containerd.
 */
import { jest } from '@jest/globals';
import { cri as criApi } from '@edgefarm/proto';
import {
  BUSYBOX,
  BUSYBOX_LATEST,
  criState,
  deleteAndWait,
  edgeDeployment,
  applyObject,
  eventually,
  isRunningReady,
  kubectl,
  log,
  pods,
} from './stack.js';

const NAME = 'e2e-rollout';
const SELECTOR = `app=${NAME}`;

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

test('kubectl set image rolls a 2-replica Deployment on edge-1 over to the new image', async () => {
  await applyObject(edgeDeployment(NAME, 'rollout', 2, { image: BUSYBOX, grace: 5 }));
  const before = await eventually('2 pods Running and Ready on the old image', 120_000, async () => {
    const ps = (await pods(SELECTOR)).filter(isRunningReady);
    return ps.length === 2 ? ps : undefined;
  });
  expect(before.every((p) => p.spec.containers[0]!.image === BUSYBOX)).toBe(true);

  const started = Date.now();
  await kubectl('set', 'image', `deployment/${NAME}`, `app=${BUSYBOX_LATEST}`);
  await kubectl('rollout', 'status', `deployment/${NAME}`, '--timeout=120s');
  const rolloutMs = Date.now() - started;
  log(`rollout ${BUSYBOX} -> ${BUSYBOX_LATEST} (2 replicas, grace 5 s): kubectl rollout status returned after ${rolloutMs} ms`);

  // rollout status returns when the old ReplicaSet is scaled to 0; its pods may still be terminating.
  const after = await eventually('only 2 new pods left, Running and Ready', 120_000, async () => {
    const ps = await pods(SELECTOR);
    return ps.length === 2 && ps.every(isRunningReady) ? ps : undefined;
  });
  log(`old pods gone from the API ${Date.now() - started} ms after set image`);
  const oldUids = new Set(before.map((p) => p.metadata.uid));
  for (const p of after) {
    expect(oldUids.has(p.metadata.uid)).toBe(false);
    expect(p.spec.nodeName).toBe('edge-1');
    expect(p.spec.containers[0]!.image).toBe(BUSYBOX_LATEST);
    expect(p.status.containerStatuses?.[0]?.image).toBe(BUSYBOX_LATEST);
    const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': p.metadata.uid });
    expect(sandboxes.map((s) => s.state)).toEqual([criApi.PodSandboxState.SANDBOX_READY]);
    expect(containers).toHaveLength(1);
    expect(containers[0]!.state).toBe(criApi.ContainerState.CONTAINER_RUNNING);
    expect(containers[0]!.image?.image).toBe(BUSYBOX_LATEST);
    expect(p.status.containerStatuses?.[0]?.containerID).toBe(`containerd://${containers[0]!.id}`);
  }
  for (const p of before) {
    const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': p.metadata.uid });
    expect({ pod: p.metadata.name, sandboxes: sandboxes.length, containers: containers.length }).toEqual({
      pod: p.metadata.name,
      sandboxes: 0,
      containers: 0,
    });
  }
});
