/**
 * The agent's Prometheus metrics, all defined here (docs/metrics.md has the user's table). One registry per
 * {@link AgentMetrics} (never prom-client's global one), so tests and several agents in one process do not collide.
 * Parts report through the methods below; gauges of state owned elsewhere (outbox depth, applied sequences, pods,
 * forwarder counts) are read at scrape time from a {@link AgentStateSource}.
 *
 * Conventions as the provider's: base units, `_total` counters, bounded labels (never pod names or UIDs).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const PREFIX = 'edgefarm_agent_';

/** What the scrape-time metrics read; every method may be slow or fail (the metric is then left out). */
export interface AgentStateSource {
  /** Outbox messages not yet forwarded (pending + ack pending of the forwarder's consumer). */
  outboxPending(): Promise<number | undefined>;
  /** Site stream sequence of the last desired message applied. */
  appliedSequence(): number;
  /** Hub stream sequence of the last desired message applied (0: unknown). */
  appliedHubSequence(): number;
  /** Pods with something in the runtime. */
  pods(): number;
  /** The forwarder's counts so far (monotonic for the agent's life). */
  forwarded(): { ok: number; duplicate: number; error: number; dropped: number };
  /**
   * Kubernetes Events since start: written into the site events stream, refused by it, forwarded to the hub, and
   * still waiting there (undefined when the stream cannot be read).
   */
  events?(): Promise<{ published: number; rejected: number; forwarded: number; pending: number } | undefined>;
}

/** Anything with nats.js's connection status iterator. */
export interface StatusSource {
  status(): AsyncIterable<{ type: string }>;
}

export interface AgentMetricsOptions {
  registry?: Registry;
  /** Process and Node.js runtime metrics; default true. */
  defaultMetrics?: boolean;
}

const SECONDS_FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
export const FORWARD_RESULTS = ['ok', 'duplicate', 'error', 'dropped'] as const;

export class AgentMetrics {
  readonly registry: Registry;
  private source?: AgentStateSource;
  private readonly criDuration: Histogram<'service' | 'method' | 'code'>;
  private readonly restarts: Counter;
  private readonly syncDuration: Histogram;
  private readonly heartbeats: Counter;
  private readonly natsReconnects: Counter;

  constructor(options: AgentMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const self = this;

    this.criDuration = new Histogram({
      name: PREFIX + 'cri_request_duration_seconds',
      help: 'CRI calls to the container runtime by service (runtime, image), method (CRI name) and code (gRPC status name; OK on success).',
      labelNames: ['service', 'method', 'code'],
      buckets: SECONDS_FAST,
      registers,
    });
    new Gauge({
      name: PREFIX + 'outbox_pending',
      help: 'Messages in the site outbox not yet forwarded to the hub (read at scrape time; the last value read when the consumer cannot be read).',
      registers,
      async collect(this: Gauge) {
        const n = await self.source?.outboxPending().catch(() => undefined);
        if (n !== undefined) this.set(n);
      },
    });
    new Counter({
      name: PREFIX + 'forwarded_total',
      help: 'Outbox messages handled by the forwarder, by result: ok (stored on the hub), duplicate (already stored), error (hub publish failed; retried), dropped (cannot be forwarded).',
      labelNames: ['result'],
      registers,
      collect(this: Counter<'result'>) {
        const f = self.source?.forwarded() ?? { ok: 0, duplicate: 0, error: 0, dropped: 0 };
        this.reset();
        for (const result of FORWARD_RESULTS) this.inc({ result }, f[result]);
      },
    });
    let overLimit = 0;
    new Counter({
      name: PREFIX + 'events_dropped_total',
      help:
        'Kubernetes Events lost at the site, by reason: rejected (the site events stream refused the write), limit (dropped by the ' +
        "stream's size/age cap before they were forwarded; counted as written - forwarded - still waiting, a lower bound across restarts).",
      labelNames: ['reason'],
      registers,
      async collect(this: Counter<'reason'>) {
        const e = await self.source?.events?.().catch(() => undefined);
        if (!e) return;
        overLimit = Math.max(overLimit, e.published - e.forwarded - e.pending);
        this.reset();
        this.inc({ reason: 'rejected' }, e.rejected);
        this.inc({ reason: 'limit' }, overLimit);
      },
    });
    const gauge = (name: string, help: string, value: (s: AgentStateSource) => number) =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect(this: Gauge) {
          this.set(self.source ? value(self.source) : 0);
        },
      });
    gauge('desired_applied_sequence', 'Site stream sequence of the last desired-state message the agent applied.', (s) =>
      s.appliedSequence(),
    );
    gauge('desired_applied_hub_sequence', 'Hub stream sequence (EF_DESIRED) of the last desired-state message the agent applied.', (s) =>
      s.appliedHubSequence(),
    );
    gauge('pods', 'Pods with a sandbox in the container runtime.', (s) => s.pods());
    this.restarts = new Counter({
      name: PREFIX + 'container_restarts_total',
      help: 'Containers the agent started again after an earlier instance (restart count > 0).',
      registers,
    });
    this.syncDuration = new Histogram({
      name: PREFIX + 'sync_duration_seconds',
      help: 'Duration of one reconciler sync of one pod key (observe, act, observe, status).',
      buckets: SECONDS_FAST,
      registers,
    });
    this.heartbeats = new Counter({ name: PREFIX + 'heartbeats_total', help: 'Node heartbeats written to the outbox.', registers });
    this.natsReconnects = new Counter({
      name: PREFIX + 'nats_reconnects_total',
      help: 'Reconnections of the site NATS connection.',
      registers,
    });
  }

  /** Where the scrape-time metrics read from. */
  watch(source: AgentStateSource): void {
    this.source = source;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  criRequest(service: 'runtime' | 'image', method: string, code: string, seconds: number): void {
    this.criDuration.observe({ service, method, code }, seconds);
  }

  containerRestarted(count = 1): void {
    this.restarts.inc(count);
  }

  synced(seconds: number): void {
    this.syncDuration.observe(seconds);
  }

  heartbeat(): void {
    this.heartbeats.inc();
  }

  /** Counts reconnects from a NATS connection's status iterator until the connection closes or stop is called. */
  watchNats(nc: StatusSource): () => void {
    const statuses = nc.status();
    void (async () => {
      for await (const s of statuses) if (s.type === 'reconnect') this.natsReconnects.inc();
    })().catch(() => undefined);
    return () => (statuses as { stop?: () => void }).stop?.();
  }
}
