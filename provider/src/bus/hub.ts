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
  type ConsumerMessages,
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
  TOMBSTONE_OPERATIONS,
  decodeNodeHeartbeat,
  decodePodStatusReport,
  encode,
  edge,
  isDecodeError,
  isSubjectError,
  type PodKey,
} from '@edgefarm/proto';

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

export interface DesiredPublisher {
  /** Publishes the desired spec of a pod to its node; returns the hub stream sequence. */
  publishPod(node: string, spec: edge.EdgePodSpec): Promise<number>;
  /** Publishes a tombstone: the pod is no longer desired on that node. */
  tombstonePod(node: string, key: PodKey): Promise<number>;
}

export interface StatusHandlers {
  pod(node: string, report: edge.PodStatusReport): void;
  /** `storedAtMs`: when the hub stored the heartbeat (freshness is judged on it, not on the agent's clock). */
  heartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void;
}


export class HubBus implements DesiredPublisher {
  private readonly js: JetStreamClient;
  private jsm?: JetStreamManager;
  private statusMessages?: ConsumerMessages;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly replicas = 1,
  ) {
    this.js = jetstream(nc);
  }

  /** Creates or updates the hub streams. Idempotent. */
  async ensureStreams(): Promise<void> {
    this.jsm = await jetstreamManager(this.nc);
    for (const cfg of HUB_STREAM_CONFIGS) {
      const want = { ...cfg, subjects: [...cfg.subjects], num_replicas: this.replicas } as Partial<StreamConfig> & { name: string };
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

  async tombstonePod(node: string, key: PodKey): Promise<number> {
    const h = headers();
    h.set(Headers.operation, 'DEL');
    const ack = await this.js.publish(desiredSubjects.pod(node, key), new Uint8Array(), { headers: h });
    return ack.seq;
  }

  /** Drops the last stored status of a pod that no longer exists, so the status stream stays bounded. */
  async forgetPodStatus(node: string, uid: string): Promise<void> {
    await this.jsm?.streams.purge(Streams.status, { filter: statusSubjects.of(node, { kind: 'pod', uid }) });
  }

  /**
   * Follows status for the given nodes: first the last report of every pod and node (the current state, as after a
   * relist), then every new one. Bad messages are logged and skipped.
   */
  async followStatus(nodes: readonly string[], handlers: StatusHandlers): Promise<void> {
    const consumer = await this.js.consumers.get(Streams.status, {
      filter_subjects: nodes.map((n) => statusSubjects.node(n)),
      deliver_policy: DeliverPolicy.LastPerSubject,
    });
    const messages = await consumer.consume();
    this.statusMessages = messages;
    void (async () => {
      for await (const m of messages) {
        try {
          const parsed = parseStatusSubject(m.subject);
          if (parsed.key.kind === 'node') {
            handlers.heartbeat(parsed.node, decodeNodeHeartbeat(m.data, m.subject), m.info.timestampNanos / 1e6);
          } else {
            const report = decodePodStatusReport(m.data, m.subject);
            if (report.uid !== parsed.key.uid) {
              this.log.warn({ subject: m.subject, uid: report.uid }, 'status report UID does not match its subject; dropped');
              continue;
            }
            handlers.pod(parsed.node, report);
          }
        } catch (err) {
          if (isDecodeError(err) || isSubjectError(err)) {
            this.log.warn({ subject: m.subject, err: (err as Error).message }, 'dropped malformed status message');
          } else {
            this.log.error({ subject: m.subject, err }, 'status handler failed');
          }
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.statusMessages?.close();
  }
}

export interface DesiredRecord {
  node: string;
  key: PodKey;
  /** Undefined for a tombstone. */
  spec?: edge.EdgePodSpec;
  /** Hub stream sequence of the entry. */
  seq: number;
}

/**
 * Reads the current desired state of the given nodes from the hub (last value per subject), e.g. to learn after a
 * restart what was published before. Malformed entries are skipped with a warning.
 */
export async function readDesired(
  nc: NatsConnection,
  nodes: readonly string[],
  log: Logger,
): Promise<DesiredRecord[]> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(Streams.desired, {
    filter_subjects: nodes.map((n) => desiredSubjects.node(n)),
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const info = await consumer.info();
  const out: DesiredRecord[] = [];
  if (info.num_pending === 0) return out;
  const messages = await consumer.consume();
  for await (const m of messages) {
    try {
      const parsed = parseDesiredSubject(m.subject);
      const op = m.headers?.get(Headers.operation) ?? '';
      const tombstone = TOMBSTONE_OPERATIONS.includes(op);
      out.push({ node: parsed.node, key: parsed.pod, spec: tombstone ? undefined : decodeEdgePodSpec(m.data, m.subject), seq: m.seq });
    } catch (err) {
      log.warn({ subject: m.subject, err: (err as Error).message }, 'skipped malformed desired-state entry');
    }
    if (m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}
