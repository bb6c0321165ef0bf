/**
 * Reads of the hub's last value per subject (an ordered consumer, deliver last-per-subject): the desired state of
 * nodes being taken over, and of a wire id being retired.
 */
import { DeliverPolicy, jetstream, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  Headers,
  Streams,
  TOMBSTONE_OPERATIONS,
  decodeEdgeDevice,
  decodeEdgeObject,
  decodeEdgePodSpec,
  decodeNodeConfig,
  desiredSubjects,
  parseDesiredSubject,
  type ObjectKind,
  type PodKey,
  type edge,
} from '@edgefarm/proto';
import { NAME_WIRE_IDS, type WireIds } from '../membership/identities.js';

/** One entry of the hub's desired state: a pod spec, an object or the node's NodeConfig (undefined: a tombstone). */
export type DesiredRecord = {
  /** The node's name. */
  node: string;
  /** Hub stream sequence of the entry. */
  seq: number;
} & (
  | { kind: 'pod'; key: PodKey; spec?: edge.EdgePodSpec }
  | { kind: ObjectKind; key: PodKey; object?: edge.EdgeObject }
  | { kind: 'node'; config?: edge.NodeConfig }
  | { kind: 'device'; key: PodKey; device?: edge.EdgeDevice }
);

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

/** True when a desired message is a tombstone. */
export function isTombstone(m: JsMsg): boolean {
  return TOMBSTONE_OPERATIONS.includes(m.headers?.get(Headers.operation) ?? '');
}

/**
 * Reads the current desired state of the given nodes from the hub (last value per subject), under each node's wire
 * id as `wireIds` names it now, e.g. to learn what was published before this replica served them. Records carry the
 * node's name. Malformed entries are skipped with a warning.
 */
export async function readDesired(
  nc: NatsConnection,
  nodes: readonly string[],
  log: Logger,
  wireIds: WireIds = NAME_WIRE_IDS,
): Promise<DesiredRecord[]> {
  const names = new Map(nodes.map((n) => [wireIds.wireId(n), n]));
  const out: DesiredRecord[] = [];
  await readLastPerSubject(
    nc,
    Streams.desired,
    [...names.keys()].map((id) => desiredSubjects.node(id)),
    (m) => {
      try {
        const parsed = parseDesiredSubject(m.subject);
        const node = names.get(parsed.node);
        if (node === undefined) throw new Error(`wire id ${parsed.node} is none of the nodes read`);
        const tombstone = isTombstone(m);
        if (parsed.kind === 'node') {
          out.push({ node, kind: 'node', config: tombstone ? undefined : decodeNodeConfig(m.data, m.subject), seq: m.seq });
        } else if (parsed.kind === 'device') {
          out.push({
            node,
            kind: 'device',
            key: parsed.key,
            device: tombstone ? undefined : decodeEdgeDevice(m.data, m.subject),
            seq: m.seq,
          });
        } else if (parsed.kind !== 'pod') {
          const object = tombstone ? undefined : decodeEdgeObject(m.data, m.subject);
          out.push({ node, kind: parsed.kind, key: parsed.key, object, seq: m.seq });
        } else {
          out.push({ node, kind: 'pod', key: parsed.key, spec: tombstone ? undefined : decodeEdgePodSpec(m.data, m.subject), seq: m.seq });
        }
      } catch (err) {
        log.warn({ subject: m.subject, err: (err as Error).message }, 'skipped malformed desired-state entry');
      }
    },
  );
  return out;
}

/** The subjects under a wire id that still hold a value (not a tombstone), as the hub has them now. */
export async function liveDesiredSubjects(nc: NatsConnection, wireId: string): Promise<string[]> {
  const live: string[] = [];
  await readLastPerSubject(nc, Streams.desired, [desiredSubjects.node(wireId)], (m) => {
    if (isTombstone(m)) return;
    try {
      if (parseDesiredSubject(m.subject).node === wireId) live.push(m.subject);
    } catch {
      // not a desired subject (nothing but the provider publishes here): nothing to tombstone
    }
  });
  return live;
}
