/**
 * The node's three streams in the SITE's JetStream, created (or brought back to the expected config) by the agent at
 * start, idempotently. Nothing per node is configured on the hub. Stream names carry the node's name, subjects its
 * wire id (proto nodeWireId):
 *
 * - Streams.siteDesired(node): no subjects of its own; sources the hub's EF_DESIRED through the leaf link, filtered
 *   to this node's wire id, last value per subject, delivered below the node's deliver prefix (sourceDeliverPrefix:
 *   the only deliveries its leaf permissions let through). The local, durable copy the agent reads (works offline).
 *   A changed wire id (the node joined again) changes the filter; messages under the old one stay in the stream and
 *   are not read (the informer and the store take only the current wire id's).
 * - Streams.outbox(node): the store-and-forward outbox, work-queue retention, last value per subject (per pod, one
 *   heartbeat), drained to the hub by the forwarder.
 * - Streams.siteEvents(node): Kubernetes Events, capped by size and age (SITE_EVENT_LIMITS, oldest dropped),
 *   drained to the hub by a second forwarder.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import {
  HUB_DOMAIN,
  SITE_EVENT_LIMITS,
  Streams,
  desiredSubjects,
  domainApiPrefix,
  eventSubjects,
  outboxSubjects,
  sourceDeliverPrefix,
} from '@edgefarm/proto';
import type { Logger } from 'pino';
import { isStreamNotFound } from './errors.js';

export function siteDesiredStreamConfig(node: string, wireId: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.siteDesired(node),
    description: `EdgeFarm desired state of node ${node} (sourced from the hub)`,
    sources: [
      {
        name: Streams.desired,
        filter_subject: desiredSubjects.node(wireId),
        external: { api: domainApiPrefix(HUB_DOMAIN), deliver: sourceDeliverPrefix(wireId) },
      },
    ],
    max_msgs_per_subject: 1,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  };
}

export function outboxStreamConfig(node: string, wireId: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.outbox(node),
    description: `EdgeFarm outbox of node ${node} (forwarded to the hub)`,
    subjects: [outboxSubjects.node(wireId)],
    retention: RetentionPolicy.Workqueue,
    max_msgs_per_subject: 1,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  };
}

export function siteEventsStreamConfig(node: string, wireId: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.siteEvents(node),
    description: `EdgeFarm Kubernetes Events of node ${node} (forwarded to the hub; capped by size and age)`,
    subjects: [eventSubjects.siteNode(wireId)],
    retention: RetentionPolicy.Workqueue,
    max_msgs_per_subject: -1,
    max_bytes: SITE_EVENT_LIMITS.max_bytes,
    max_age: SITE_EVENT_LIMITS.max_age,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  };
}

export class SiteStreamError extends Error {
  override name = 'SiteStreamError';
}
export function isSiteStreamError(err: unknown): err is SiteStreamError {
  return err instanceof SiteStreamError;
}

/**
 * Fields the agent owns; anything else an operator set on the stream is left alone. A source differs when its
 * stream, filter, API prefix or deliver prefix does.
 */
export function differs(want: Partial<StreamConfig>, have: StreamConfig): string[] {
  const out: string[] = [];
  if (JSON.stringify(want.subjects ?? []) !== JSON.stringify(have.subjects ?? [])) out.push('subjects');
  if (want.max_msgs_per_subject !== have.max_msgs_per_subject) out.push('max_msgs_per_subject');
  if (want.max_bytes !== undefined && want.max_bytes !== have.max_bytes) out.push('max_bytes');
  if (want.max_age !== undefined && want.max_age !== have.max_age) out.push('max_age');
  const src = (s: StreamConfig['sources']) =>
    JSON.stringify((s ?? []).map((x) => [x.name, x.filter_subject ?? '', x.external?.api ?? '', x.external?.deliver ?? '']));
  if (src(want.sources) !== src(have.sources)) out.push('sources');
  return out;
}

async function ensureStream(jsm: JetStreamManager, want: Partial<StreamConfig> & { name: string }, log: Logger): Promise<StreamInfo> {
  let have: StreamInfo | undefined;
  try {
    have = await jsm.streams.info(want.name);
  } catch (err) {
    if (!isStreamNotFound(err)) throw err;
  }
  if (!have) {
    log.info({ stream: want.name }, 'creating site stream');
    return jsm.streams.add(want);
  }
  if (have.config.retention !== want.retention || have.config.storage !== want.storage) {
    throw new SiteStreamError(
      `site stream ${want.name} exists with retention ${have.config.retention}/storage ${have.config.storage}; ` +
        `it needs ${want.retention}/${want.storage} and JetStream cannot change that in place: delete it`,
    );
  }
  const changed = differs(want, have.config);
  if (changed.length === 0) return have;
  log.info({ stream: want.name, changed }, 'updating site stream');
  if (changed.includes('sources')) {
    // nats-server 2.12 keeps a running source whose deliver prefix changed on its old consumer (delivering where the
    // node's permissions let nothing through): removing the source and adding it back sets it up anew, resuming after
    // the last message the stream has from it (as SourceWatch does). Meanwhile the stream has no source, and the
    // server gives it its own name as a subject; the second update takes it away again.
    await jsm.streams.update(want.name, { ...have.config, sources: [] });
    return jsm.streams.update(want.name, { ...have.config, ...want, subjects: want.subjects ?? [] });
  }
  return jsm.streams.update(want.name, { ...have.config, ...want });
}

/** `node`: the node's name (stream names); `wireId`: its wire id (subjects, the source's filter and deliver prefix). */
export async function ensureSiteStreams(jsm: JetStreamManager, node: string, wireId: string, log: Logger): Promise<void> {
  await ensureStream(jsm, siteDesiredStreamConfig(node, wireId), log);
  await ensureStream(jsm, outboxStreamConfig(node, wireId), log);
  await ensureStream(jsm, siteEventsStreamConfig(node, wireId), log);
}
