/**
 * The provider's Prometheus endpoint on a real stack: the replica serving edge-1 reports it connected with a fresh
 * heartbeat, no desired-state lag once the site applied everything, its pods, and a pod start in the startup
 * histogram, plus the site agent's own metrics (published through the outbox) with node="edge-1"; every replica
 * answers a scrape in the Prometheus text format.
 */
import { jest } from '@jest/globals';
import {
  BUSYBOX,
  EDGE_PLACEMENT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  deleteAndWait,
  eventually,
  isRunningReady,
  layout,
  log,
  pods,
  servingReplica,
} from './stack.js';

const NAME = 'e2e-metrics';

jest.setTimeout(5 * 60_000);

afterAll(async () => {
  await deleteAndWait('e2e=metrics', [`pod/${NAME}`]);
});

async function scrape(replica: number): Promise<{ status: number; type: string; body: string }> {
  const port = Number(await layout('echo "$EF_PROVIDER_HTTP_PORT"')) + replica - 1;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

/** The value of one sample, e.g. sample(body, 'edgefarm_provider_edge_connected{node="edge-1"}'). */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('the replica serving edge-1 exposes its connectivity, lag, pods and pod startup; every replica answers a scrape', async () => {
  await applyObject({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: NAME, namespace: 'default', labels: { e2e: 'metrics' } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 2,
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: SLEEP_LOOP_TRAPPED }],
    },
  });
  await eventually(`${NAME} Running`, 60_000, async () => (await pods('e2e=metrics')).find(isRunningReady));
  const replicas = Number(await layout('echo "$EF_PROVIDERS"'));
  for (let r = 1; r <= replicas; r++) {
    const s = await scrape(r);
    expect(s.status).toBe(200);
    expect(s.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(s.body).toMatch(/^process_resident_memory_bytes \d+/m);
  }
  const owner = await servingReplica('edge-1');
  const body = await eventually(
    "edge-1 connected with no desired lag in the owner's metrics",
    60_000,
    async () => {
      const { body } = await scrape(owner);
      return sample(body, 'edgefarm_provider_edge_connected{node="edge-1"}') === 1 &&
        sample(body, 'edgefarm_provider_desired_lag{node="edge-1"}') === 0
        ? body
        : undefined;
    },
    500,
  );
  expect(sample(body, 'edgefarm_provider_edge_heartbeat_age_seconds{node="edge-1"}')).toBeLessThan(30);
  expect(sample(body, 'edgefarm_provider_pods{node="edge-1"}')).toBeGreaterThanOrEqual(1);
  expect(sample(body, 'edgefarm_provider_pod_startup_seconds_count')).toBeGreaterThanOrEqual(1);
  expect(sample(body, 'edgefarm_provider_desired_publish_total{kind="pod",result="ok"}')).toBeGreaterThanOrEqual(1);
  log(
    `provider-${owner} metrics: heartbeat age ${sample(body, 'edgefarm_provider_edge_heartbeat_age_seconds{node="edge-1"}')} s, ` +
      `pod startup count ${sample(body, 'edgefarm_provider_pod_startup_seconds_count')} sum ${sample(body, 'edgefarm_provider_pod_startup_seconds_sum')} s`,
  );
  // The site's agent publishes its own metrics through the outbox; the owner shows them with the node label.
  const agentBody = await eventually(
    "the agent's metrics on the provider",
    90_000,
    async () => {
      const { body } = await scrape(owner);
      return (sample(body, 'edgefarm_agent_pods{node="edge-1"}') ?? 0) >= 1 ? body : undefined;
    },
    1000,
  );
  const runPodSandbox = agentBody
    .split('\n')
    .filter(
      (l) =>
        l.startsWith('edgefarm_agent_cri_request_duration_seconds_count{') &&
        l.includes('method="RunPodSandbox"') &&
        l.includes('node="edge-1"'),
    );
  expect(runPodSandbox.map((l) => Number(l.split(' ').at(-1))).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
  // Nodes another replica serves are not in this one's series.
  for (let r = 1; r <= replicas; r++) {
    if (r === owner) continue;
    expect(sample((await scrape(r)).body, 'edgefarm_provider_edge_connected{node="edge-1"}')).toBeUndefined();
  }
});
