/**
 * Agent metrics against real processes: /metrics of a running agent after a pod ran (CRI calls measured by the
 * wrapper), and the metrics text published through the outbox reaching the hub's EF_STATUS.
 */
import { edge } from '@edgefarm/proto';
import type { Agent } from '../agent.js';
import { httpGet, podSpec, publishDesired, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 90_000;
let site: TestSite;
let agent: Agent;
let watcher: StatusWatcher;

const scrape = (port: number, path = '/metrics') => httpGet(port, path);

function value(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(name + (labels ? '{' : ' ')) && l.includes(labels));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start({ metricsAddr: { host: '127.0.0.1', port: 0 }, metricsPublishSeconds: 1 });
  ({ site, agent, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('agent metrics', () => {
  it(
    'serves CRI latencies, pods and heartbeats on /metrics after a pod ran',
    async () => {
      const pod = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.phase === edge.PodPhase.RUNNING);
      const port = agent.parts.metricsServer!.address.port;
      const m = await scrape(port);
      expect(m.status).toBe(200);
      expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(
        value(m.body, 'edgefarm_agent_cri_request_duration_seconds_count', 'service="runtime",method="RunPodSandbox",code="OK"'),
      ).toBeGreaterThanOrEqual(1);
      expect(
        value(m.body, 'edgefarm_agent_cri_request_duration_seconds_count', 'service="runtime",method="StartContainer",code="OK"'),
      ).toBeGreaterThanOrEqual(1);
      expect(value(m.body, 'edgefarm_agent_pods')).toBeGreaterThanOrEqual(1);
      expect(value(m.body, 'edgefarm_agent_desired_applied_hub_sequence')).toBeGreaterThanOrEqual(1);
      expect(value(m.body, 'edgefarm_agent_outbox_pending')).toBeGreaterThanOrEqual(0);
      expect(value(m.body, 'edgefarm_agent_forwarded_total', 'result="ok"')).toBeGreaterThanOrEqual(1);
      expect(value(m.body, 'edgefarm_agent_sync_duration_seconds_count')).toBeGreaterThanOrEqual(1);
      await waitFor('a heartbeat counted', async () => (value((await scrape(port)).body, 'edgefarm_agent_heartbeats_total') ?? 0) >= 1);
      expect(m.body).toContain('process_cpu_user_seconds_total');
      expect((await scrape(port, '/healthz')).status).toBe(200);
      expect((await scrape(port, '/nope')).status).toBe(404);
    },
    T,
  );

  it(
    'publishes its metrics text to the hub as ef.status.<node>.metrics',
    async () => {
      const text = await waitFor(
        'metrics on the hub',
        () => watcher.metrics.find((t) => t.includes('edgefarm_agent_cri_request_duration_seconds_count')),
        20_000,
      );
      expect(text).toContain('# TYPE edgefarm_agent_pods gauge');
    },
    T,
  );
});
