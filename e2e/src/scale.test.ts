/**
 * Scaling a Deployment on edge-1 up (1 -> 3) and down (3 -> 1): the API holds that many Running pods and edge-1's
 * containerd that many running sandboxes for the app (sandboxes map to pods by their io.kubernetes.pod.uid label).
 */
import { jest } from '@jest/globals';
import { cri as criApi } from '@edgefarm/proto';
import { applyObject, criState, deleteAndWait, edgeDeployment, eventually, isRunningReady, kubectl, log, pods } from './stack.js';

const NAME = 'e2e-scale';
const SELECTOR = `app=${NAME}`;

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

/** Waits until exactly `n` pods exist, all Running and Ready, and containerd runs exactly their sandboxes. */
async function expectReplicas(n: number): Promise<void> {
  const started = Date.now();
  const ps = await eventually(`${n} pods Running and Ready, no others`, 120_000, async () => {
    const list = await pods(SELECTOR);
    return list.length === n && list.every(isRunningReady) ? list : undefined;
  });
  // The pods the API lost (scale down) may need a moment more to be gone from containerd: poll that too.
  const uids = new Set(ps.map((p) => p.metadata.uid));
  const ready = await eventually(`containerd runs exactly the ${n} pods' sandboxes`, 60_000, async () => {
    // Sandboxes carry the pod's labels; containers only the pod identity labels: match them by pod UID.
    const { sandboxes } = await criState('edge-1', { app: NAME });
    const { containers: all } = await criState('edge-1', {});
    const sandboxUids = new Set(sandboxes.map((s) => s.labels['io.kubernetes.pod.uid']));
    const live = sandboxes.filter((s) => s.state === criApi.PodSandboxState.SANDBOX_READY);
    const running = all.filter(
      (c) => sandboxUids.has(c.labels['io.kubernetes.pod.uid']) && c.state === criApi.ContainerState.CONTAINER_RUNNING,
    );
    const liveUids = new Set(live.map((s) => s.labels['io.kubernetes.pod.uid']));
    const ok = sandboxes.length === n && live.length === n && running.length === n && [...uids].every((u) => liveUids.has(u));
    return ok ? live : undefined;
  });
  expect(ready).toHaveLength(n);
  log(`${n} replica(s) Running in the API and in containerd after ${Date.now() - started} ms`);
}

test('scale 1 -> 3 -> 1 on edge-1: pods in the API and sandboxes in containerd follow', async () => {
  await applyObject(edgeDeployment(NAME, 'scale', 1, { grace: 5 }));
  await expectReplicas(1);
  await kubectl('scale', `deployment/${NAME}`, '--replicas=3');
  await expectReplicas(3);
  await kubectl('scale', `deployment/${NAME}`, '--replicas=1');
  await expectReplicas(1);
});
