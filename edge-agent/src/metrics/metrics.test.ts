import { CriError, type ImageServiceClient, type RuntimeServiceClient } from '@edgefarm/cri';
import { pino } from 'pino';
import { FakeOutbox } from '../bus/outbox.js';
import { instrumentCri, grpcCodeName } from './instrumented-cri.js';
import { AgentMetrics } from './metrics.js';
import { MAX_METRICS_BYTES, MetricsPublisher } from './publisher.js';
import { MetricsServer } from './server.js';
import { httpGet as get } from '@edgefarm/testing';

const log = pino({ level: 'silent' });

/** A hand-written fake pair of CRI clients: each method resolves or rejects as told, and records its calls. */
function fakeClients(failures: Record<string, CriError | Error> = {}) {
  const calls: string[] = [];
  let closed = 0;
  const method = (name: string) => async () => {
    calls.push(name);
    const f = failures[name];
    if (f) throw f;
    return { name };
  };
  const runtime = {
    runPodSandbox: method('runPodSandbox'),
    stopContainer: method('stopContainer'),
    close: () => closed++,
  } as unknown as RuntimeServiceClient;
  const image = { pullImage: method('pullImage'), close: () => closed++ } as unknown as ImageServiceClient;
  return { clients: { runtime, image }, calls, closed: () => closed };
}

function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

describe('instrumentCri', () => {
  it('observes every call once with the CRI method name and the gRPC status name', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const fake = fakeClients({ stopContainer: new CriError('StopContainer', 5, 'gone'), pullImage: new Error('socket hang up') });
    let t = 0;
    const c = instrumentCri(fake.clients, metrics, () => (t += 250));
    await expect(c.runtime.runPodSandbox({})).resolves.toEqual({ name: 'runPodSandbox' });
    await c.runtime.runPodSandbox({});
    await expect(c.runtime.stopContainer({})).rejects.toThrow(/gone/);
    await expect(c.image.pullImage({})).rejects.toThrow(/hang up/);
    c.runtime.close();
    c.image.close();
    expect(fake.calls).toEqual(['runPodSandbox', 'runPodSandbox', 'stopContainer', 'pullImage']);
    expect(fake.closed()).toBe(2);

    const text = await metrics.text();
    const m = 'edgefarm_agent_cri_request_duration_seconds';
    expect(sample(text, m + '_count', 'service="runtime",method="RunPodSandbox",code="OK"')).toBe(2);
    expect(sample(text, m + '_sum', 'service="runtime",method="RunPodSandbox",code="OK"')).toBeCloseTo(0.5);
    expect(sample(text, m + '_count', 'service="runtime",method="StopContainer",code="NOT_FOUND"')).toBe(1);
    expect(sample(text, m + '_count', 'service="image",method="PullImage",code="UNKNOWN"')).toBe(1);
  });

  it('names gRPC codes', () => {
    expect(grpcCodeName(undefined)).toBe('OK');
    expect(grpcCodeName(new CriError('X', 14, 'down'))).toBe('UNAVAILABLE');
    expect(grpcCodeName(new CriError('X', 4, 'slow'))).toBe('DEADLINE_EXCEEDED');
    expect(grpcCodeName(new CriError('X', 99, '?'))).toBe('UNKNOWN');
  });
});

describe('AgentMetrics', () => {
  it('reads scrape-time state and counts events', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    metrics.watch({
      outboxPending: async () => 3,
      appliedSequence: () => 17,
      appliedHubSequence: () => 42,
      pods: () => 2,
      forwarded: () => ({ ok: 5, duplicate: 1, error: 2, dropped: 0 }),
    });
    metrics.containerRestarted(2);
    metrics.synced(0.01);
    metrics.heartbeat();
    const text = await metrics.text();
    expect(text).toContain('edgefarm_agent_outbox_pending 3\n');
    expect(text).toContain('edgefarm_agent_desired_applied_sequence 17\n');
    expect(text).toContain('edgefarm_agent_desired_applied_hub_sequence 42\n');
    expect(text).toContain('edgefarm_agent_pods 2\n');
    expect(text).toContain('edgefarm_agent_forwarded_total{result="ok"} 5\n');
    expect(text).toContain('edgefarm_agent_forwarded_total{result="error"} 2\n');
    expect(text).toContain('edgefarm_agent_container_restarts_total 2\n');
    expect(text).toContain('edgefarm_agent_sync_duration_seconds_count 1\n');
    expect(text).toContain('edgefarm_agent_heartbeats_total 1\n');
    expect(text).toContain('edgefarm_agent_nats_reconnects_total 0\n');
  });

  it('keeps the last outbox_pending read when the consumer cannot be read', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    let pending: number | undefined = 4;
    metrics.watch({
      outboxPending: async () => {
        if (pending === undefined) throw new Error('no consumer');
        return pending;
      },
      appliedSequence: () => 0,
      appliedHubSequence: () => 0,
      pods: () => 0,
      forwarded: () => ({ ok: 0, duplicate: 0, error: 0, dropped: 0 }),
    });
    expect(await metrics.text()).toMatch(/^edgefarm_agent_outbox_pending 4$/m);
    pending = undefined;
    expect(await metrics.text()).toMatch(/^edgefarm_agent_outbox_pending 4$/m);
  });

  it('counts events the site refused and, as a lower bound that never goes down, those its size/age cap dropped', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    let e: { published: number; rejected: number; forwarded: number; pending: number } | undefined = {
      published: 10,
      rejected: 1,
      forwarded: 4,
      pending: 2,
    };
    metrics.watch({
      outboxPending: async () => 0,
      appliedSequence: () => 0,
      appliedHubSequence: () => 0,
      pods: () => 0,
      forwarded: () => ({ ok: 0, duplicate: 0, error: 0, dropped: 0 }),
      events: async () => e,
    });
    let text = await metrics.text();
    expect(text).toMatch(/^edgefarm_agent_events_dropped_total\{reason="rejected"\} 1$/m);
    expect(text).toMatch(/^edgefarm_agent_events_dropped_total\{reason="limit"\} 4$/m);
    e = { published: 10, rejected: 1, forwarded: 0, pending: 10 }; // leftovers of an earlier run: never below 4
    expect(await metrics.text()).toMatch(/^edgefarm_agent_events_dropped_total\{reason="limit"\} 4$/m);
    e = undefined; // stream unreadable: the last values stay
    text = await metrics.text();
    expect(text).toMatch(/^edgefarm_agent_events_dropped_total\{reason="limit"\} 4$/m);
  });
});

describe('MetricsServer', () => {
  it('answers /metrics in the Prometheus text format, /healthz, and 404 elsewhere', async () => {
    const metrics = new AgentMetrics({ defaultMetrics: false });
    metrics.heartbeat();
    const server = new MetricsServer(metrics, { host: '127.0.0.1', port: 0 });
    await server.start();
    try {
      const { port } = server.address;
      const m = await get(port, '/metrics');
      expect(m.status).toBe(200);
      expect(m.type).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(m.body).toContain('edgefarm_agent_heartbeats_total 1');
      expect((await get(port, '/healthz')).status).toBe(200);
      expect((await get(port, '/other')).status).toBe(404);
      expect((await get(port, '/')).status).toBe(404);
    } finally {
      await server.stop();
    }
  });

  it('fails to start on an address in use', async () => {
    const a = new MetricsServer(new AgentMetrics({ defaultMetrics: false }), { host: '127.0.0.1', port: 0 });
    await a.start();
    const b = new MetricsServer(new AgentMetrics({ defaultMetrics: false }), { host: '127.0.0.1', port: a.address.port });
    await expect(b.start()).rejects.toThrow(/EADDRINUSE/);
    await a.stop();
    await b.stop();
  });
});

describe('MetricsPublisher', () => {
  it('publishes the metrics text on ef.outbox.<node>.metrics', async () => {
    const outbox = new FakeOutbox();
    const metrics = new AgentMetrics({ defaultMetrics: false });
    const p = new MetricsPublisher({ wireId: 'edge.1', metrics, outbox, log }, 30_000);
    expect(await p.publish()).toBe(true);
    expect(outbox.published.map((m) => m.subject)).toEqual(['ef.outbox.edge~2E1.metrics']);
    expect(new TextDecoder().decode(outbox.published[0]!.data)).toBe(await metrics.text());
  });

  it('skips a text over 256 KiB and survives outbox failures', async () => {
    const outbox = new FakeOutbox();
    let size = MAX_METRICS_BYTES + 1;
    const metrics = { contentType: 'text/plain', text: async () => 'x'.repeat(size) };
    const p = new MetricsPublisher({ wireId: 'n', metrics, outbox, log }, 30_000);
    expect(await p.publish()).toBe(false);
    size = MAX_METRICS_BYTES;
    expect(await p.publish()).toBe(true);
    outbox.failNext();
    expect(await p.publish()).toBe(false);
    expect(outbox.published).toHaveLength(1);
  });

  it('publishes at start and stops its timer', async () => {
    const outbox = new FakeOutbox();
    const p = new MetricsPublisher({ wireId: 'n', metrics: new AgentMetrics({ defaultMetrics: false }), outbox, log }, 60_000);
    p.start();
    await p.stop();
    expect(outbox.published).toHaveLength(1);
    new MetricsPublisher({ wireId: 'n', metrics: new AgentMetrics({ defaultMetrics: false }), outbox, log }, 0).start(); // 0: off, no timer
  });
});
