/**
 * Hub-side test helpers, playing the provider's part: publish desired pods, objects (ConfigMaps, Secrets, tokens),
 * a node's NodeConfig and tombstones to EF_DESIRED, and watch EF_STATUS for what the agents forward. `node` is the
 * node's wire id (its name for a node that never joined).
 */
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import {
  Headers,
  Streams,
  create,
  decodeNodeHeartbeat,
  decodePodStatusReport,
  desiredSubjects,
  edge,
  encode,
  parseStatusSubject,
  statusSubjects,
  type ObjectKind,
} from '@edgefarm/proto';
import { waitFor } from './processes.js';

/** Publishes a pod spec to the hub's desired stream; resolves with the stream sequence. */
export async function publishDesired(hub: NatsConnection, node: string, spec: edge.EdgePodSpec): Promise<number> {
  const ack = await jetstream(hub).publish(desiredSubjects.pod(node, spec), encode(edge.EdgePodSpecSchema, spec));
  return ack.seq;
}

/** Publishes a tombstone (empty payload, KV-Operation: DEL) for a pod; with `ttlSeconds`, the hub drops it then. */
export async function publishTombstone(
  hub: NatsConnection,
  node: string,
  key: { namespace: string; name: string },
  ttlSeconds?: number,
): Promise<number> {
  const h = headers();
  h.set(Headers.operation, 'DEL');
  if (ttlSeconds !== undefined) h.set(Headers.ttl, `${ttlSeconds}s`);
  const ack = await jetstream(hub).publish(desiredSubjects.pod(node, key), new Uint8Array(), { headers: h });
  return ack.seq;
}

/** Publishes a ConfigMap, Secret or token object (EdgeObject) for a node; resolves with the stream sequence. */
export async function publishObject(hub: NatsConnection, node: string, kind: ObjectKind, obj: edge.EdgeObject): Promise<number> {
  const ack = await jetstream(hub).publish(desiredSubjects.of(node, kind, obj), encode(edge.EdgeObjectSchema, obj));
  return ack.seq;
}

/** Publishes a tombstone for an object (the provider's "no pod on the node uses it any more"). */
export async function publishObjectTombstone(
  hub: NatsConnection,
  node: string,
  kind: ObjectKind,
  key: { namespace: string; name: string },
): Promise<number> {
  const h = headers();
  h.set(Headers.operation, 'DEL');
  const ack = await jetstream(hub).publish(desiredSubjects.of(node, kind, key), new Uint8Array(), { headers: h });
  return ack.seq;
}

/** Publishes a node's NodeConfig (its tombstone TTL); resolves with the stream sequence. */
export async function publishNodeConfig(hub: NatsConnection, node: string, tombstoneTtlSeconds: number): Promise<number> {
  const config = create(edge.NodeConfigSchema, { tombstoneTtlSeconds: BigInt(tombstoneTtlSeconds) });
  const ack = await jetstream(hub).publish(desiredSubjects.nodeConfig(node), encode(edge.NodeConfigSchema, config));
  return ack.seq;
}

export interface ReceivedReport {
  report: edge.PodStatusReport;
  /** Local receive time (ms, performance.now()). */
  at: number;
  seq: number;
}

/** Follows the hub's EF_STATUS for one node (every message, in order) and keeps what arrives. */
export class StatusWatcher {
  readonly pods: ReceivedReport[] = [];
  readonly heartbeats: edge.NodeHeartbeat[] = [];
  /** Metrics texts the agent published (ef.status.<node>.metrics), in arrival order. */
  readonly metrics: string[] = [];
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly hub: NatsConnection,
    private readonly node: string,
  ) {}

  async start(): Promise<this> {
    const consumer = await jetstream(this.hub).consumers.get(Streams.status, {
      filter_subjects: statusSubjects.node(this.node),
      deliver_policy: DeliverPolicy.New,
    });
    const messages = await consumer.consume();
    this.messages = messages;
    this.loop = (async () => {
      for await (const m of messages) {
        const parsed = parseStatusSubject(m.subject);
        if (parsed.key.kind === 'pod')
          this.pods.push({ report: decodePodStatusReport(m.data, m.subject), at: performance.now(), seq: m.seq });
        else if (parsed.key.kind === 'metrics') this.metrics.push(new TextDecoder().decode(m.data));
        else this.heartbeats.push(decodeNodeHeartbeat(m.data, m.subject));
      }
    })();
    return this;
  }

  /** Reports of one pod UID, in arrival order. */
  of(uid: string): edge.PodStatusReport[] {
    return this.pods.filter((p) => p.report.uid === uid).map((p) => p.report);
  }

  /** Waits for a report of `uid` matching `predicate`; resolves with it. */
  async waitFor(uid: string, predicate: (r: edge.PodStatusReport) => boolean, timeoutMs = 20_000): Promise<ReceivedReport> {
    return waitFor(`status report of ${uid}`, () => this.pods.find((p) => p.report.uid === uid && predicate(p.report)), timeoutMs, 10);
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop?.catch(() => undefined);
  }
}
