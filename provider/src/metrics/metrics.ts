/**
 * The provider's Prometheus metrics, all defined here (docs/metrics.md is the user's table of them). One registry per
 * {@link ProviderMetrics} (never prom-client's global one), so tests and several providers in one process do not
 * collide. Parts of the provider report through the methods below; per-node and shard gauges are computed at scrape
 * time from a {@link ServedNodesSource}, so a node's series disappear as soon as this replica stops serving it.
 *
 * Conventions: base units (seconds), `_total` counters, label sets bounded by the EdgeNodes served (never pod names
 * or UIDs).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { KubeVerb } from '../kube/instrumented.js';
import type { PublishKind } from '../bus/instrumented.js';
import type { PublishRejectReason } from '../bus/limits.js';
import { EDGE_METRICS_REJECT_REASONS, EdgeMetricsTexts } from './edge-metrics.js';
import type { EventResult } from '../events/sink.js';
import { HEARTBEAT_REJECT_REASONS, type HeartbeatRejectReason } from '../nodecontroller/admission.js';
import { ADMISSION_REASONS, type AdmissionReason } from '../podcontroller/admit.js';

export const PREFIX = 'edgefarm_provider_';

export type StatusResult = 'applied' | 'stale' | 'dropped' | 'rejected';
const STATUS_REJECT_REASONS = ['wrong_node', 'unknown_pod', 'overflow'] as const;
/**
 * Why a pod status report was refused: `wrong_node` (about a pod bound to another node), `unknown_pod` (no pod on its
 * node claimed it in time), `overflow` (too many reports no pod claimed).
 */
export type StatusRejectReason = (typeof STATUS_REJECT_REASONS)[number];
/** What became of an Event an agent recorded; `malformed`: the message could not be decoded. */
export type EdgeEventResult = EventResult | 'malformed';
const HUB_REJECT_STREAMS = ['status', 'events'] as const;
/** The hub stream a rejected message came from. */
export type HubRejectStream = (typeof HUB_REJECT_STREAMS)[number];
const HUB_REJECT_REASONS = ['unknown-node', 'malformed'] as const;
/**
 * Why a message from the hub was rejected: its subject names a wire id no EdgeNode has, or it is malformed (also
 * counted status_reports_total{result="dropped"} / edge_events_total{result="malformed"}).
 */
export type HubRejectReason = (typeof HUB_REJECT_REASONS)[number];
/** edge_events_total's results: a refused Event (`wrong_node`, `malformed`) counts `rejected` (or `malformed`). */
const EDGE_EVENT_RESULTS = ['created', 'updated', 'stale', 'dropped', 'coalesced', 'malformed', 'rejected'] as const;
/** Why an Event an agent recorded was refused (edge_events_rejected_total). */
const EDGE_EVENT_REJECT_REASONS = ['wrong_node', 'malformed'] as const;

/** What the scrape-time gauges read: the nodes this replica serves and what it knows of each. */
export interface ServedNodesSource {
  served(): readonly string[];
  connected(node: string): boolean;
  /** Hub storage time (ms) of the node's last heartbeat, and the desired-state sequence it reported applied. */
  lastHeartbeat(node: string): { atMs: number; appliedSequence: number } | undefined;
  /** Hub sequence of the last desired-state message published for the node. */
  desiredSequence(node: string): number | undefined;
  /** Pods the API binds to the node. */
  pods(node: string): number;
  shardsOwned(): number;
}

/** Anything with nats.js's connection status iterator (`NatsConnection.status()`). */
export interface StatusSource {
  status(): AsyncIterable<{ type: string }>;
}

export interface ProviderMetricsOptions {
  /** Default: a new registry. */
  registry?: Registry;
  /** Process and Node.js runtime metrics (collectDefaultMetrics); default true. */
  defaultMetrics?: boolean;
  /** Wall clock in ms (heartbeat age, report delay). */
  nowMs?: () => number;
}

const SECONDS_FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Edge→cloud delay: from sub-second on a live link up to an hour of store-and-forward while offline. */
const SECONDS_DELAY = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const SECONDS_STARTUP = [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60];

export class ProviderMetrics {
  readonly registry: Registry;
  private readonly nowMs: () => number;
  private source?: ServedNodesSource;
  private edgeEventsQueued?: () => number;
  private readonly edgeTexts: EdgeMetricsTexts;

  private readonly desiredPublishes: Counter<'kind' | 'result'>;
  private readonly desiredPublishDuration: Histogram;
  private readonly statusReports: Counter<'result'>;
  private readonly statusRejects: Counter<'reason'>;
  private readonly desiredPublishRejects: Counter<'reason'>;
  private readonly statusApplyDuration: Histogram;
  private readonly statusConflicts: Counter;
  private readonly podsRejected: Counter<'reason'>;
  private readonly statusReportDelay: Histogram;
  private readonly podStartup: Histogram;
  private readonly kubeRequestDuration: Histogram<'verb' | 'resource' | 'code'>;
  private readonly natsReconnects: Counter;
  private readonly natsDisconnects: Counter;
  private readonly edgeEvents: Counter<'result'>;
  private readonly edgeEventRejects: Counter<'reason'>;
  private readonly hubRejects: Counter<'stream' | 'reason'>;
  private readonly edgeMetricsRejects: Counter<'reason'>;
  private readonly heartbeatRejects: Counter<'reason'>;
  private readonly deviceTwins: Counter<'result'>;

  constructor(options: ProviderMetricsOptions = {}) {
    this.registry = options.registry ?? new Registry();
    this.nowMs = options.nowMs ?? Date.now;
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    // Per node, computed at scrape time from the source (reset first: nodes no longer served lose their series).
    const self = this;
    const nodeGauge = (name: string, help: string, value: (s: ServedNodesSource, node: string) => number | undefined) =>
      new Gauge({
        name: PREFIX + name,
        help,
        labelNames: ['node'],
        registers,
        collect(this: Gauge<'node'>) {
          this.reset();
          const s = self.source;
          if (!s) return;
          for (const node of s.served()) {
            const v = value(s, node);
            if (v !== undefined && Number.isFinite(v)) this.set({ node }, v);
          }
        },
      });
    nodeGauge('edge_connected', "Whether the edge node's heartbeats are fresh (1) or stale/absent (0).", (s, n) =>
      s.connected(n) ? 1 : 0,
    );
    nodeGauge(
      'edge_heartbeat_age_seconds',
      "Seconds since the hub stored the edge node's last heartbeat (absent before the first one).",
      (s, n) => {
        const hb = s.lastHeartbeat(n);
        return hb && Math.max(0, (this.nowMs() - hb.atMs) / 1000);
      },
    );
    nodeGauge('desired_sequence', 'Hub stream sequence of the last desired-state message published for the node.', (s, n) =>
      s.desiredSequence(n),
    );
    nodeGauge(
      'applied_sequence',
      'Desired-state sequence the edge agent last reported applied (from its heartbeat).',
      (s, n) => s.lastHeartbeat(n)?.appliedSequence,
    );
    nodeGauge(
      'desired_lag',
      'Cloud-to-edge lag: desired_sequence minus applied_sequence (hub stream sequences the site has not applied yet).',
      (s, n) => {
        const desired = s.desiredSequence(n);
        const applied = s.lastHeartbeat(n)?.appliedSequence;
        return desired === undefined || applied === undefined ? undefined : Math.max(0, desired - applied);
      },
    );
    nodeGauge('pods', 'Pods the Kubernetes API binds to the node.', (s, n) => s.pods(n));
    const scalar = (name: string, help: string, value: (s: ServedNodesSource) => number) =>
      new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect(this: Gauge) {
          this.set(self.source ? value(self.source) : 0);
        },
      });
    scalar('shards_owned', 'Shard leases this replica holds.', (s) => s.shardsOwned());
    scalar('nodes_served', 'Edge nodes this replica serves.', (s) => s.served().length);

    this.desiredPublishes = new Counter({
      name: PREFIX + 'desired_publish_total',
      help: 'Desired-state publishes to the hub, by kind (pod, configmap, secret, token, node: a NodeConfig, tombstone) and result (ok, error).',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.desiredPublishRejects = new Counter({
      name: PREFIX + 'desired_publish_rejected_total',
      help: 'Desired-state publishes the hub refused by a stream limit, by reason: stream_full (EF_DESIRED at its byte limit, EF_HUB_DESIRED_MAX_MIB; nothing stored is dropped, the publish is retried), too_large (over max_msg_size). Also counted in desired_publish_total{result="error"}.',
      labelNames: ['reason'],
      registers,
    });
    this.desiredPublishDuration = new Histogram({
      name: PREFIX + 'desired_publish_duration_seconds',
      help: 'Time from a desired-state publish to its JetStream ack (successful publishes).',
      buckets: SECONDS_FAST,
      registers,
    });
    this.statusReports = new Counter({
      name: PREFIX + 'status_reports_total',
      help: 'Pod status reports, by result: applied (to the API), stale (a node this replica serves sent a generation not newer than one already received), dropped (malformed, or inconsistent with its subject), rejected (refused: status_reports_rejected_total).',
      labelNames: ['result'],
      registers,
    });
    this.statusRejects = new Counter({
      name: PREFIX + 'status_reports_rejected_total',
      help: 'Pod status reports refused, by reason: wrong_node (about a pod bound to another node than the one it came in for), unknown_pod (no pod on its node claimed it within 10 minutes), overflow (past 10,000 reports no pod claimed, the oldest).',
      labelNames: ['reason'],
      registers,
    });
    this.statusApplyDuration = new Histogram({
      name: PREFIX + 'status_apply_duration_seconds',
      help: 'Time to apply one pod status report to the API (including conflict retries).',
      buckets: SECONDS_FAST,
      registers,
    });
    this.statusConflicts = new Counter({
      name: PREFIX + 'status_conflicts_total',
      help: 'Pod status writes that met a 409 Conflict (re-read and retried).',
      registers,
    });
    this.podsRejected = new Counter({
      name: PREFIX + 'pods_rejected_total',
      help: 'Pods refused at admission as a kubelet refuses them, once a pod, by reason: SysctlForbidden (a sysctl neither safe nor allowed on the node), PodOSNotSupported (spec.os.name not linux).',
      labelNames: ['reason'],
      registers,
    });
    this.statusReportDelay = new Histogram({
      name: PREFIX + 'status_report_delay_seconds',
      help: 'Edge-to-cloud lag: from the agent observing a pod (observed_at_ms, the edge clock) to its status applied to the API (the provider clock); clock skew between the two adds to it (negative values count as 0).',
      buckets: SECONDS_DELAY,
      registers,
    });
    this.podStartup = new Histogram({
      name: PREFIX + 'pod_startup_seconds',
      help: "From a pod's creationTimestamp (apiserver clock, 1 s resolution) to the provider first writing it Running.",
      buckets: SECONDS_STARTUP,
      registers,
    });
    this.kubeRequestDuration = new Histogram({
      name: PREFIX + 'kube_request_duration_seconds',
      help: 'Kubernetes API calls by verb, resource and code (HTTP status where known, 2xx for other successes, error without a response); watch: the initial list until the watch runs.',
      labelNames: ['verb', 'resource', 'code'],
      buckets: SECONDS_FAST,
      registers,
    });
    this.edgeEvents = new Counter({
      name: PREFIX + 'edge_events_total',
      help: 'Kubernetes Events the agents recorded (EF_EVENTS), by result: created or updated (written to the API), stale (older than one written), dropped (pod gone, or the API kept failing), coalesced (superseded by a later message for the same Event before it was written), malformed, rejected (edge_events_rejected_total).',
      labelNames: ['result'],
      registers,
    });
    this.edgeEventRejects = new Counter({
      name: PREFIX + 'edge_events_rejected_total',
      help: 'Kubernetes Events the agents recorded that were refused, by reason: wrong_node (about a pod bound to another node than the one they came in for), malformed.',
      labelNames: ['reason'],
      registers,
    });
    new Gauge({
      name: PREFIX + 'edge_events_queued',
      help: 'Events waiting to be written to the API.',
      registers,
      collect(this: Gauge) {
        this.set(self.edgeEventsQueued?.() ?? 0);
      },
    });
    this.hubRejects = new Counter({
      name: PREFIX + 'hub_messages_rejected_total',
      help: 'Status reports, heartbeats, metrics and Events from the hub not taken, by stream (status, events) and reason: unknown-node (their subject names a wire id no EdgeNode has: an old key of a node that joined again, a key claimed by two EdgeNodes, a stranger), malformed (not decodable, or inconsistent with its subject).',
      labelNames: ['stream', 'reason'],
      registers,
    });
    this.edgeMetricsRejects = new Counter({
      name: PREFIX + 'edge_metrics_rejected_total',
      help: "Parts of the agents' metrics texts not re-exposed, by reason: malformed (a line that breaks the exposition format), label-too-long, duplicate-series, type-conflict (a family typed unlike other sites type it), too-many-series (past the cap per node), too-large (a whole text over the cap), too-many-nodes (a whole text: no room for another node).",
      labelNames: ['reason'],
      registers,
    });
    this.deviceTwins = new Counter({
      name: PREFIX + 'device_twins_total',
      help: "Devices' twins from the sites, by result: written (into the Device's status), coalesced (a newer twin came before the write was due), stale (older than one written), foreign (from a node the device is not on: dropped), unknown (no such Device, or made anew), failed (the status write failed; retried).",
      labelNames: ['result'],
      registers,
    });
    for (const result of ['written', 'coalesced', 'stale', 'foreign', 'unknown', 'failed']) this.deviceTwins.inc({ result }, 0);
    this.heartbeatRejects = new Counter({
      name: PREFIX + 'heartbeat_rejected_total',
      help: "Parts of served nodes' heartbeats refused (dropped before they reach the Node), by reason: node-name (the whole heartbeat: it names another node than its subject), resource-name (an extended or unknown resource), resource-value, condition, address, too-many (addresses past the cap), string (too long or not printable), number (out of range).",
      labelNames: ['reason'],
      registers,
    });
    this.edgeTexts = new EdgeMetricsTexts({
      rejected: (reason, count) => this.edgeMetricsRejects.inc({ reason }, count),
      served: () => this.source?.served() ?? [],
    });
    this.natsReconnects = new Counter({
      name: PREFIX + 'nats_reconnects_total',
      help: 'Reconnections of the hub NATS connections (both, with credentials).',
      registers,
    });
    this.natsDisconnects = new Counter({
      name: PREFIX + 'nats_disconnects_total',
      help: 'Disconnections of the hub NATS connections (both, with credentials).',
      registers,
    });
    // Every known label combination starts at 0, so rate() and absent() work before the first event.
    for (const result of ['applied', 'stale', 'dropped', 'rejected'] as const) this.statusReports.inc({ result }, 0);
    for (const reason of STATUS_REJECT_REASONS) this.statusRejects.inc({ reason }, 0);
    for (const reason of ['stream_full', 'too_large'] as const) this.desiredPublishRejects.inc({ reason }, 0);
    for (const result of EDGE_EVENT_RESULTS) this.edgeEvents.inc({ result }, 0);
    for (const reason of EDGE_EVENT_REJECT_REASONS) this.edgeEventRejects.inc({ reason }, 0);
    for (const reason of ADMISSION_REASONS) this.podsRejected.inc({ reason }, 0);
    for (const stream of HUB_REJECT_STREAMS) for (const reason of HUB_REJECT_REASONS) this.hubRejects.inc({ stream, reason }, 0);
    for (const reason of EDGE_METRICS_REJECT_REASONS) this.edgeMetricsRejects.inc({ reason }, 0);
    for (const reason of HEARTBEAT_REJECT_REASONS) this.heartbeatRejects.inc({ reason }, 0);
    for (const kind of ['pod', 'configmap', 'secret', 'token', 'node', 'device', 'tombstone'] as const) {
      for (const result of ['ok', 'error']) this.desiredPublishes.inc({ kind, result }, 0);
    }
  }

  /** Where edge_events_queued reads from at scrape time. */
  watchEdgeEvents(queued: () => number): void {
    this.edgeEventsQueued = queued;
  }

  edgeEvent(result: EdgeEventResult): void {
    if (result === 'wrong_node' || result === 'malformed') this.edgeEventRejects.inc({ reason: result });
    if (result === 'malformed') this.hubRejects.inc({ stream: 'events', reason: 'malformed' });
    this.edgeEvents.inc({ result: result === 'wrong_node' ? 'rejected' : result });
  }

  /** A message from the hub was not taken (see hub_messages_rejected_total). */
  hubRejected(stream: HubRejectStream, reason: HubRejectReason): void {
    this.hubRejects.inc({ stream, reason });
  }

  /** What became of a device's twin from its site (see device_twins_total). */
  deviceTwin(result: 'written' | 'coalesced' | 'stale' | 'foreign' | 'unknown' | 'failed'): void {
    this.deviceTwins.inc({ result });
  }

  /** Part of a heartbeat was refused (see heartbeat_rejected_total). */
  heartbeatRejected(reason: HeartbeatRejectReason): void {
    this.heartbeatRejects.inc({ reason });
  }

  /** Where the per-node, shard and served-node gauges read from at scrape time. */
  watchNodes(source: ServedNodesSource): void {
    this.source = source;
  }

  /**
   * Prometheus text exposition of the registry, followed by the `edgefarm_agent_*` metrics the served nodes' agents
   * last published, each sample labelled with its `node`.
   */
  async text(): Promise<string> {
    const own = await this.registry.metrics();
    const edges = this.edgeTexts.render(this.source?.served() ?? []);
    return edges ? `${own.replace(/\n*$/, '\n\n')}${edges}` : own;
  }

  /**
   * The metrics text a node's agent published (ef.status.<node>.metrics); the last one accepted per node is kept, only
   * its valid part (edge-metrics.ts; what is dropped counts in edge_metrics_rejected_total).
   */
  edgeMetrics(node: string, text: string): void {
    this.edgeTexts.set(node, text);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  desiredPublished(kind: PublishKind, seconds: number): void {
    this.desiredPublishes.inc({ kind, result: 'ok' });
    this.desiredPublishDuration.observe(seconds);
  }

  /** `rejected`: the hub refused it by a stream limit (desired_publish_rejected_total). */
  desiredPublishFailed(kind: PublishKind, rejected?: PublishRejectReason): void {
    this.desiredPublishes.inc({ kind, result: 'error' });
    if (rejected) this.desiredPublishRejects.inc({ reason: rejected });
  }

  /** A report not applied; a `rejected` one with its reason (status_reports_rejected_total). */
  statusReport(result: 'stale' | 'dropped'): void;
  statusReport(result: 'rejected', reason: StatusRejectReason): void;
  statusReport(result: Exclude<StatusResult, 'applied'>, reason?: StatusRejectReason): void {
    this.statusReports.inc({ result });
    if (reason) this.statusRejects.inc({ reason });
    if (result === 'dropped') this.hubRejects.inc({ stream: 'status', reason: 'malformed' });
  }

  /** A report was applied to the API in `seconds`; `observedAtMs`: when the agent observed the pod (0: unknown). */
  statusApplied(seconds: number, observedAtMs: number): void {
    this.statusReports.inc({ result: 'applied' });
    this.statusApplyDuration.observe(seconds);
    if (observedAtMs > 0) this.statusReportDelay.observe(Math.max(0, (this.nowMs() - observedAtMs) / 1000));
  }

  statusConflict(): void {
    this.statusConflicts.inc();
  }

  /** A pod was refused at admission (admit.ts). */
  podRejected(reason: AdmissionReason): void {
    this.podsRejected.inc({ reason });
  }

  /** A pod was first written Running; `createdAtMs`: its creationTimestamp. */
  podStarted(createdAtMs: number, runningAtMs: number): void {
    this.podStartup.observe(Math.max(0, (runningAtMs - createdAtMs) / 1000));
  }

  kubeRequest(verb: KubeVerb, resource: string, code: string, seconds: number): void {
    this.kubeRequestDuration.observe({ verb, resource, code }, seconds);
  }

  /**
   * Counts disconnects and reconnects from a NATS connection's status iterator until the returned stop is called
   * (or the connection closes).
   */
  watchNats(nc: StatusSource): () => void {
    const statuses = nc.status();
    void (async () => {
      for await (const s of statuses) {
        if (s.type === 'disconnect') this.natsDisconnects.inc();
        else if (s.type === 'reconnect') this.natsReconnects.inc();
      }
    })().catch(() => undefined);
    return () => (statuses as { stop?: () => void }).stop?.();
  }
}
