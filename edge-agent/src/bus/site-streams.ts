/**
 * The node's two streams in the SITE's JetStream, created (or brought back to the expected config) by the agent at
 * start, idempotently. Nothing per node is configured on the hub:
 *
 * - Streams.siteDesired(node): no subjects of its own; sources the hub's EF_DESIRED through the leaf link, filtered
 *   to this node, last value per subject. The local, durable copy the agent reads (works offline).
 * - Streams.outbox(node): the store-and-forward outbox, work-queue retention, last value per subject (per pod, one
 *   heartbeat), drained to the hub by the forwarder.
 * - Streams.siteEvents(node): Kubernetes Events, capped by size and age (SITE_EVENT_LIMITS, oldest dropped),
 *   drained to the hub by a second forwarder.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { HUB_DOMAIN, SITE_EVENT_LIMITS, Streams, desiredSubjects, domainApiPrefix, eventSubjects, outboxSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { isStreamNotFound } from './errors.js';

export function siteDesiredStreamConfig(node: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.siteDesired(node),
    description: `EdgeFarm desired state of node ${node} (sourced from the hub)`,
    sources: [
      {
        name: Streams.desired,
        filter_subject: desiredSubjects.node(node),
        external: { api: domainApiPrefix(HUB_DOMAIN), deliver: '' },
      },
    ],
    max_msgs_per_subject: 1,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  };
}

export function outboxStreamConfig(node: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.outbox(node),
    description: `EdgeFarm outbox of node ${node} (forwarded to the hub)`,
    subjects: [outboxSubjects.node(node)],
    retention: RetentionPolicy.Workqueue,
    max_msgs_per_subject: 1,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: 1,
  };
}

export function siteEventsStreamConfig(node: string): Partial<StreamConfig> & { name: string } {
  return {
    name: Streams.siteEvents(node),
    description: `EdgeFarm Kubernetes Events of node ${node} (forwarded to the hub; capped by size and age)`,
    subjects: [eventSubjects.siteNode(node)],
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

/** Fields the agent owns; anything else an operator set on the stream is left alone. */
function differs(want: Partial<StreamConfig>, have: StreamConfig): string[] {
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
  return jsm.streams.update(want.name, { ...have.config, ...want });
}

export async function ensureSiteStreams(jsm: JetStreamManager, node: string, log: Logger): Promise<void> {
  await ensureStream(jsm, siteDesiredStreamConfig(node), log);
  await ensureStream(jsm, outboxStreamConfig(node), log);
  await ensureStream(jsm, siteEventsStreamConfig(node), log);
}
