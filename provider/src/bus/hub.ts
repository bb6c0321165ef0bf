/**
 * The provider's side of the hub: it owns the hub streams (EF_DESIRED, EF_STATUS), publishes desired state and
 * tombstones, and follows status reports. Subjects come from @edgefarm/proto only.
 */
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type StreamConfig,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  Headers,
  HUB_STREAM_CONFIGS,
  Streams,
  desiredSubjects,
  statusSubjects,
  parseStatusSubject,
  parseDesiredSubject,
  decodeEdgePodSpec,
  decodeEdgeObject,
  TOMBSTONE_OPERATIONS,
  TOMBSTONE_TTL,
  decodeNodeHeartbeat,
  decodePodStatusReport,
  decodeEdgeEvent,
  eventSubjects,
  parseEventSubject,
  encode,
  edge,
  isDecodeError,
  isSubjectError,
  type PodKey,
  type ObjectKind,
} from '@edgefarm/proto';
import { StreamFollower } from './follower.js';

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

export interface DesiredPublisher {
  /** Publishes the desired spec of a pod to its node; returns the hub stream sequence. */
  publishPod(node: string, spec: edge.EdgePodSpec): Promise<number>;
  /** Publishes a tombstone: the pod is no longer desired on that node. */
  tombstonePod(node: string, key: PodKey): Promise<number>;
  /** Publishes a ConfigMap, Secret or token object to a node. Throws a PayloadTooLargeError when it is too large to carry. */
  publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject): Promise<number>;
  /** The object is no longer used by any pod on the node. */
  tombstoneObject(node: string, kind: ObjectKind, key: PodKey): Promise<number>;
}

export interface StatusHandlers {
  pod(node: string, report: edge.PodStatusReport): void;
  /** `storedAtMs`: when the hub stored the heartbeat (freshness is judged on it, not on the agent's clock). */
  heartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void;
  /** A status message was skipped: malformed, or a report whose UID does not match its subject (metrics). */
  dropped?(): void;
  /** The Prometheus text an agent published (ef.status.<node>.metrics). */
  metrics?(node: string, text: string): void;
}

/** Receives the Kubernetes Events agents recorded; the next one is delivered once the promise settled. */
export interface EventHandlers {
  event(node: string, event: edge.EdgeEvent): Promise<void>;
  /** A malformed event message was skipped. */
  dropped?(): void;
}

/** The hub as the provider uses it: {@link HubBus}, or the FakeBus of unit tests. */
export interface Hub extends DesiredPublisher {
  /** Creates or updates the hub streams. Idempotent. */
  ensureStreams(): Promise<void>;
  /** Drops the last stored status of a pod that no longer exists. */
  forgetPodStatus(node: string, uid: string): Promise<void>;
  /** Follows every status report and heartbeat stored from now on. */
  followStatus(handlers: StatusHandlers): Promise<void>;
  /** Delivers the last report of every pod and the last heartbeat of the given nodes. */
  readStatus(nodes: readonly string[], handlers: StatusHandlers): Promise<void>;
  /** The current desired state of the given nodes (last value per subject, tombstones included). */
  readDesired(nodes: readonly string[]): Promise<DesiredRecord[]>;
  /** Follows the Events agents recorded. */
  followEvents(handlers: EventHandlers): Promise<void>;
  stop(): Promise<void>;
}

export class HubBus implements Hub {
  private readonly js: JetStreamClient;
  private jsm?: JetStreamManager;
  private statusFollower?: StreamFollower;
  private eventFollower?: StreamFollower;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly replicas = 1,
    /** Nats-TTL of tombstones, also written into EF_DESIRED's metadata for the sites (see TOMBSTONE_TTL). */
    private readonly tombstoneTtlSeconds: number = TOMBSTONE_TTL.defaultSeconds,
  ) {
    this.js = jetstream(nc);
  }

  /** Creates or updates the hub streams. Idempotent. */
  async ensureStreams(): Promise<void> {
    this.jsm = await jetstreamManager(this.nc);
    for (const cfg of HUB_STREAM_CONFIGS) {
      const want = { ...cfg, subjects: [...cfg.subjects], num_replicas: this.replicas } as Partial<StreamConfig> & { name: string };
      if (cfg.name === Streams.desired) want.metadata = { [TOMBSTONE_TTL.metadataKey]: String(this.tombstoneTtlSeconds) };
      try {
        await this.jsm.streams.info(cfg.name);
        await this.jsm.streams.update(cfg.name, want);
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
        await this.jsm.streams.add(want);
        this.log.info({ stream: cfg.name }, 'created hub stream');
      }
    }
  }

  async publishPod(node: string, spec: edge.EdgePodSpec): Promise<number> {
    const ack = await this.js.publish(desiredSubjects.pod(node, spec), encode(edge.EdgePodSpecSchema, spec));
    return ack.seq;
  }

  tombstonePod(node: string, key: PodKey): Promise<number> {
    return this.tombstone(desiredSubjects.pod(node, key));
  }

  async publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject): Promise<number> {
    const ack = await this.js.publish(desiredSubjects.of(node, kind, object), encode(edge.EdgeObjectSchema, object));
    return ack.seq;
  }

  tombstoneObject(node: string, kind: ObjectKind, key: PodKey): Promise<number> {
    return this.tombstone(desiredSubjects.of(node, kind, key));
  }

  private async tombstone(subject: string): Promise<number> {
    const h = headers();
    h.set(Headers.operation, 'DEL');
    h.set(Headers.ttl, `${this.tombstoneTtlSeconds}s`);
    const ack = await this.js.publish(subject, new Uint8Array(), { headers: h });
    return ack.seq;
  }

  /** Drops the last stored status of a pod that no longer exists, so the status stream stays bounded. */
  async forgetPodStatus(node: string, uid: string): Promise<void> {
    await this.jsm?.streams.purge(Streams.status, { filter: statusSubjects.of(node, { kind: 'pod', uid }) });
  }

  /**
   * Follows every status report and heartbeat stored from now on (all nodes: the handlers ignore nodes this replica
   * does not serve). Start it before {@link readStatus} of newly served nodes, so nothing falls between the two.
   * Bad messages are logged and skipped. Survives the loss of its consumer ({@link StreamFollower}).
   */
  async followStatus(handlers: StatusHandlers): Promise<void> {
    this.statusFollower = new StreamFollower(
      this.nc,
      this.log,
      'status',
      Streams.status,
      statusSubjects.all,
      { deliver_policy: DeliverPolicy.New },
      (m) => this.deliverStatus(m, handlers),
    );
    await this.statusFollower.start();
  }

  /** Delivers the last report of every pod and the last heartbeat of the given nodes (as after a relist). */
  async readStatus(nodes: readonly string[], handlers: StatusHandlers): Promise<void> {
    await readLastPerSubject(
      this.nc,
      Streams.status,
      nodes.map((n) => statusSubjects.node(n)),
      (m) => this.deliverStatus(m, handlers),
    );
  }

  readDesired(nodes: readonly string[]): Promise<DesiredRecord[]> {
    return readDesired(this.nc, nodes, this.log);
  }

  private deliverStatus(m: JsMsg, handlers: StatusHandlers): void {
    try {
      const parsed = parseStatusSubject(m.subject);
      if (parsed.key.kind === 'metrics') {
        handlers.metrics?.(parsed.node, new TextDecoder().decode(m.data));
        return;
      }
      if (parsed.key.kind === 'node') {
        handlers.heartbeat(parsed.node, decodeNodeHeartbeat(m.data, m.subject), m.info.timestampNanos / 1e6);
      } else {
        const report = decodePodStatusReport(m.data, m.subject);
        if (report.uid !== parsed.key.uid) {
          this.log.warn({ subject: m.subject, uid: report.uid }, 'status report UID does not match its subject; dropped');
          handlers.dropped?.();
          return;
        }
        handlers.pod(parsed.node, report);
      }
    } catch (err) {
      if (isDecodeError(err) || isSubjectError(err)) {
        this.log.warn({ subject: m.subject, err: err.message }, 'dropped malformed status message');
        handlers.dropped?.();
      } else {
        this.log.error({ subject: m.subject, err }, 'status handler failed');
      }
    }
  }

  /**
   * Follows the hub's EF_EVENTS (all nodes: the handler ignores nodes this replica does not serve) with one ordered
   * consumer, one event at a time: the next is delivered after the handler's API write. Starts `replayMs` back, so
   * events stored while the provider restarted are not lost (re-writing one is harmless: Events are upserted).
   */
  async followEvents(handlers: EventHandlers, replayMs = 5 * 60_000): Promise<void> {
    const from = { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - replayMs).toISOString() };
    this.eventFollower = new StreamFollower(this.nc, this.log, 'event', Streams.events, eventSubjects.all, from, async (m) => {
      let node: string;
      let event: edge.EdgeEvent;
      try {
        node = parseEventSubject(m.subject).node;
        event = decodeEdgeEvent(m.data, m.subject);
        if (event.nodeName !== node) throw new Error(`event of node ${event.nodeName} on a subject of node ${node}`);
      } catch (err) {
        this.log.warn({ subject: m.subject, err: (err as Error).message }, 'dropped malformed event message');
        handlers.dropped?.();
        return;
      }
      try {
        await handlers.event(node, event);
      } catch (err) {
        this.log.error({ subject: m.subject, err }, 'event handler failed');
      }
    });
    await this.eventFollower.start();
  }

  async stop(): Promise<void> {
    await this.statusFollower?.stop();
    await this.eventFollower?.stop();
  }
}

/** One entry of the hub's desired state: a pod spec or an object (undefined for a tombstone). */
export type DesiredRecord = {
  node: string;
  key: PodKey;
  /** Hub stream sequence of the entry. */
  seq: number;
} & ({ kind: 'pod'; spec?: edge.EdgePodSpec } | { kind: ObjectKind; object?: edge.EdgeObject });

/** Filter subjects per consumer when reading many nodes at once (each consumer creation carries the whole list). */
const FILTERS_PER_CONSUMER = 64;

/**
 * Reads the last message of every subject matching the filters (an ordered consumer, deliver last-per-subject) and
 * hands each to `each`; resolves once all that were pending at the start were read.
 */
export async function readLastPerSubject(
  nc: NatsConnection,
  stream: string,
  filters: readonly string[],
  each: (m: JsMsg) => void,
): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < filters.length; i += FILTERS_PER_CONSUMER) {
    const consumer = await js.consumers.get(stream, {
      filter_subjects: filters.slice(i, i + FILTERS_PER_CONSUMER),
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    const info = await consumer.info();
    if (info.num_pending === 0) continue;
    const messages = await consumer.consume();
    for await (const m of messages) {
      each(m);
      if (m.info.pending === 0) break;
    }
    await messages.close();
  }
}

/**
 * Reads the current desired state of the given nodes from the hub (last value per subject), e.g. to learn what was
 * published before this replica served them. Malformed entries are skipped with a warning.
 */
export async function readDesired(nc: NatsConnection, nodes: readonly string[], log: Logger): Promise<DesiredRecord[]> {
  const out: DesiredRecord[] = [];
  await readLastPerSubject(
    nc,
    Streams.desired,
    nodes.map((n) => desiredSubjects.node(n)),
    (m) => {
      try {
        const parsed = parseDesiredSubject(m.subject);
        if (parsed.kind === 'node') return; // a node's NodeConfig: not a pod or an object
        const op = m.headers?.get(Headers.operation) ?? '';
        const tombstone = TOMBSTONE_OPERATIONS.includes(op);
        if (parsed.kind !== 'pod') {
          out.push({
            node: parsed.node,
            kind: parsed.kind,
            key: parsed.key,
            object: tombstone ? undefined : decodeEdgeObject(m.data, m.subject),
            seq: m.seq,
          });
        } else {
          out.push({
            node: parsed.node,
            kind: 'pod',
            key: parsed.key,
            spec: tombstone ? undefined : decodeEdgePodSpec(m.data, m.subject),
            seq: m.seq,
          });
        }
      } catch (err) {
        log.warn({ subject: m.subject, err: (err as Error).message }, 'skipped malformed desired-state entry');
      }
    },
  );
  return out;
}
