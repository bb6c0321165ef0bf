/**
 * HA: the e2e stack runs 2 provider replicas sharing the edge nodes through shard Leases. The replica serving edge-1
 * is killed with SIGKILL: the other takes the node over within the shard lease time, the Node's Lease in
 * kube-node-lease never goes unrenewed long enough for the node lifecycle controller (Ready stays True throughout),
 * no pod is deleted or recreated, and the new owner carries the next change (a scale-up) to the edge.
 */
import { jest } from '@jest/globals';
import {
  applyObject,
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
  servingReplica,
} from './stack.js';

const NAME = 'e2e-ha';
const SELECTOR = `app=${NAME}`;
/** The Node Lease duration the provider writes (leaseDurationSeconds, as a kubelet's). */
const NODE_LEASE_SECONDS = 40;

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await hack('up.sh'); // the killed replica, if the test failed before it restarted it
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

const fingerprint = (ps: Awaited<ReturnType<typeof pods>>) =>
  ps
    .map(
      (p) => `${p.metadata.uid} ${p.status.containerStatuses?.[0]?.containerID} restarts=${p.status.containerStatuses?.[0]?.restartCount}`,
    )
    .sort();

test('kill -9 of the replica serving edge-1: another takes over, Ready stays True, no pod churn', async () => {
  const replicas = Number(await layout('echo "$EF_PROVIDERS"'));
  expect(replicas).toBeGreaterThanOrEqual(2);
  await applyObject(edgeDeployment(NAME, 'ha', 2));
  const before = await eventually('2 pods Running and Ready', 120_000, async () => {
    const ps = (await pods(SELECTOR)).filter(isRunningReady);
    return ps.length === 2 ? ps : undefined;
  });

  const owner = await servingReplica('edge-1');
  const pid = await providerPid(owner);
  const renewals: number[] = [];
  const readiness = new Set<string>();
  const sample = async () => {
    const lease = JSON.parse(await kubectl('get', 'lease', '-n', 'kube-node-lease', 'edge-1', '-o', 'json')) as {
      spec: { renewTime: string };
    };
    const t = Date.parse(lease.spec.renewTime);
    if (renewals.at(-1) !== t) renewals.push(t);
    const ready = await kubectl('get', 'node', 'edge-1', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}');
    readiness.add(ready);
  };
  // Start measuring from a renewal seen happening, not from whatever state an earlier test left the Lease in.
  await sample();
  await eventually(
    'a Node Lease renewal before the kill',
    30_000,
    async () => {
      await sample();
      return renewals.length >= 2 ? true : undefined;
    },
    250,
  );
  renewals.splice(0, renewals.length - 1);
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();
  await eventually(`provider-${owner} (pid ${pid}) gone`, 30_000, async () => ((await isZombieOrGone(pid)) ? true : undefined), 100);
  log(`provider-${owner} (pid ${pid}), serving edge-1, killed with SIGKILL`);

  const newOwner = await eventually(
    'another replica serving edge-1',
    90_000,
    async () => {
      await sample();
      const r = await servingReplica('edge-1');
      return r !== owner ? r : undefined;
    },
    250,
  );
  const takeoverMs = Date.now() - killedAt;
  // Sample on until the new owner renewed the Node Lease twice, so the gap across the takeover is measured.
  const renewedBefore = renewals.length;
  await eventually(
    'two Node Lease renewals by the new owner',
    60_000,
    async () => {
      await sample();
      return renewals.length >= renewedBefore + 2 ? true : undefined;
    },
    250,
  );
  const gaps = renewals.slice(1).map((t, i) => t - renewals[i]!);
  const maxGap = Math.max(...gaps);
  log(
    `edge-1 taken over by provider-${newOwner} ${takeoverMs} ms after the kill; Node Lease renewal gaps ${gaps.map((g) => (g / 1000).toFixed(1)).join(' / ')} s (max ${(maxGap / 1000).toFixed(1)} s of ${NODE_LEASE_SECONDS} s); Ready seen: ${[...readiness].join(',')}`,
  );
  expect(maxGap).toBeLessThan(NODE_LEASE_SECONDS * 1000);
  expect([...readiness]).toEqual(['True']);

  // No churn: same pods, same containers, no restarts.
  expect(fingerprint((await pods(SELECTOR)).filter(isRunningReady))).toEqual(fingerprint(before));

  // The new owner carries changes to the edge.
  await kubectl('scale', `deployment/${NAME}`, '--replicas=3');
  await eventually('3 pods Running after the takeover', 120_000, async () => {
    const ps = (await pods(SELECTOR)).filter(isRunningReady);
    return ps.length === 3 ? true : undefined;
  });

  // The killed replica comes back (hack/up.sh starts what is not running) and the shards are shared again.
  await hack('up.sh');
  await eventually(
    'both replicas holding shards',
    60_000,
    async () => {
      const holders = (
        await kubectl(
          'get',
          'lease',
          '-n',
          'edgefarm-system',
          '-l',
          'edgefarm.io/provider-lease=shard',
          '-o',
          'jsonpath={.items[*].spec.holderIdentity}',
        )
      )
        .split(/\s+/)
        .filter(Boolean);
      return new Set(holders).size === replicas ? true : undefined;
    },
    500,
  );
  expect(fingerprint((await pods(SELECTOR)).filter(isRunningReady)).length).toBe(3);
});
