/**
 * A pod the edge cannot run (hostPID) is not sent to the edge: the provider sets phase Failed with reason
 * EdgeUnsupported and records a Warning Event with that reason; nothing of it appears in containerd. Deleting it
 * completes at once (nothing ran).
 */
import { jest } from '@jest/globals';
import {
  BUSYBOX,
  EDGE_PLACEMENT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  criState,
  deleteAndWait,
  eventually,
  kubectl,
  kubectlJson,
  log,
  type PodObj,
} from './stack.js';

const NAME = 'e2e-unsupported-hostpid';
const SELECTOR = 'e2e=unsupported';

interface EventList {
  items: { type: string; reason: string; message: string; involvedObject: { name: string; uid?: string } }[];
}

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`pod/${NAME}`]);
});

test('a hostPID pod on edge-1 fails with EdgeUnsupported, gets a Warning Event and never reaches containerd', async () => {
  const started = Date.now();
  await applyObject({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: NAME, namespace: 'default', labels: { e2e: 'unsupported' } },
    spec: {
      ...EDGE_PLACEMENT,
      hostPID: true,
      terminationGracePeriodSeconds: 2,
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: SLEEP_LOOP_TRAPPED }],
    },
  });
  const pod = await eventually('pod Failed with reason EdgeUnsupported', 60_000, async () => {
    const p = await kubectlJson<PodObj>('get', 'pod', NAME);
    return p.status.phase === 'Failed' && p.status.reason === 'EdgeUnsupported' ? p : undefined;
  });
  log(`hostPID pod Failed/EdgeUnsupported ${Date.now() - started} ms after kubectl apply: ${pod.status.message}`);
  expect(pod.spec.nodeName).toBe('edge-1');
  expect(pod.status.message).toMatch(/hostPID/);

  const event = await eventually('a Warning Event EdgeUnsupported for the pod', 30_000, async () => {
    const { items } = await kubectlJson<EventList>('get', 'events', '--field-selector', `involvedObject.name=${NAME}`);
    return items.find((e) => e.type === 'Warning' && e.reason === 'EdgeUnsupported');
  });
  expect(event.involvedObject.uid).toBe(pod.metadata.uid);
  expect(event.message).toMatch(/hostPID/);

  // Give a wrongly published spec time to reach the agent and run, then look in containerd.
  await new Promise((r) => setTimeout(r, 3000));
  const { sandboxes, containers } = await criState('edge-1', { 'io.kubernetes.pod.uid': pod.metadata.uid });
  expect({ sandboxes: sandboxes.length, containers: containers.length }).toEqual({ sandboxes: 0, containers: 0 });
  const { sandboxes: byName } = await criState('edge-1', { 'io.kubernetes.pod.name': NAME });
  expect(byName).toEqual([]);

  const t0 = Date.now();
  await kubectl('delete', 'pod', NAME, '--wait=false');
  await eventually(
    'the rejected pod gone from the API',
    30_000,
    async () => ((await kubectlJson<{ items: unknown[] }>('get', 'pods', '-l', SELECTOR)).items.length === 0 ? true : undefined),
    100,
  );
  log(`rejected pod gone from the API ${Date.now() - t0} ms after kubectl delete`);
});
