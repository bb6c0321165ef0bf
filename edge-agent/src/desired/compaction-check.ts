/**
 * CompactionCheck: finds deletes the site never received because the hub compacted their tombstones away, like an
 * informer that relists after HTTP 410 Gone.
 *
 * The hub keeps a tombstone for a limited time (TOMBSTONE_TTL; the provider tells each node its value in the node's
 * NodeConfig, which the site stream holds with the rest of the node's desired state). A site cut off for longer may
 * never see a delete: the site stream keeps the last spec of the deleted pod for ever. So whenever the agent hears
 * from the hub again (a forwarder acknowledgement) after a silence of more than half that time, or for the first time
 * since it started without a snapshot, it compares the site's desired copy with the hub:
 *
 *  1. note the site stream's last sequence (everything up to it came from the hub before the listing starts);
 *  2. list the subjects the hub holds for this node (hub-listing.ts: a push consumer through the filtered consumer
 *     create, the only listing a node's permissions allow);
 *  3. every pod or object the store holds from a sequence up to (1) whose subject the hub no longer has was deleted
 *     and its tombstone compacted: purge exactly that message from the site stream (so a later list agrees) and
 *     forget it in the store, which the reconciler sees as a delete.
 *
 * Half the TTL leaves room for the source to catch up after the link returns and for clock error. Without a usable
 * NodeConfig (none published yet, a tombstone, undecodable) it checks to be safe. A check costs one listing of the
 * node's own subjects, so an unneeded one is cheap; a missed one would leave a deleted pod running.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Headers, Streams, TOMBSTONE_OPERATIONS, decodeNodeConfig, desiredSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { errorMessage, type Clock } from '../util/time.js';
import type { HubSubjects } from './hub-listing.js';
import type { DesiredStore } from './store.js';

export interface CompactionCheckDeps {
  /** The node's name (its site stream's name). */
  node: string;
  /** The node's wire id (its NodeConfig's subject). */
  wireId: string;
  store: DesiredStore;
  /** Site JetStream: the node's desired stream (info, purge, its NodeConfig). */
  siteJsm: JetStreamManager;
  /** The node's subjects on the hub. */
  hub: HubSubjects;
  clock: Clock;
  log: Logger;
  /** The store changed (a snapshot is due). */
  onForgotten?: (keys: string[]) => void;
}

export interface CompactionCheckResult {
  hubSubjects: number;
  forgotten: string[];
}

/** Silence after which the TTL is looked up at all (a healthy link acknowledges a heartbeat every few seconds). */
const QUIET_MS = 10_000;

export class CompactionCheck {
  private lastContactMs: number;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Checks done (tests wait for them). */
  checks = 0;

  /** `lastContactMs`: the last hub contact known from before this start (0: unknown, check at the first contact). */
  constructor(
    private readonly deps: CompactionCheckDeps,
    lastContactMs: number,
  ) {
    this.lastContactMs = lastContactMs;
  }

  /** Wall-clock ms of the last hub acknowledgement (0: none yet). */
  get lastHubContactMs(): number {
    return this.lastContactMs;
  }

  /** A hub acknowledgement arrived. Starts a check when the silence before it was long enough. */
  contact(): void {
    const now = this.deps.clock.now();
    const silentMs = this.lastContactMs === 0 ? Infinity : now - this.lastContactMs;
    this.lastContactMs = now;
    if (silentMs <= QUIET_MS || this.running || this.stopped) return;
    this.running = this.afterSilence(silentMs)
      .catch((err: unknown) => {
        // The next long silence (or restart) tries again; until then the site keeps what it has.
        this.deps.log.warn({ err }, 'checking the hub for compacted deletes failed');
        this.lastContactMs = 0;
      })
      .finally(() => (this.running = undefined));
  }

  private async afterSilence(silentMs: number): Promise<void> {
    const ttl = await this.tombstoneTtlSeconds();
    if (ttl === undefined) {
      this.deps.log.warn('no tombstone TTL in the node config at the site; checking to be safe');
    } else if (silentMs < (ttl * 1000) / 2) {
      this.deps.log.debug({ silentMs, ttlSeconds: ttl }, 'hub contact again; within the tombstone horizon, no check');
      return;
    }
    this.deps.log.info(
      { silentMs: Number.isFinite(silentMs) ? silentMs : 'unknown', ttlSeconds: ttl },
      'hub contact after a long silence: checking the hub for deletes whose tombstones were compacted',
    );
    await this.check();
  }

  /** The tombstone TTL of the node's NodeConfig as the site stream holds it; undefined when there is none usable. */
  async tombstoneTtlSeconds(): Promise<number | undefined> {
    const { siteJsm, node, wireId, log } = this.deps;
    const m = await siteJsm.streams.getMessage(Streams.siteDesired(node), { last_by_subj: desiredSubjects.nodeConfig(wireId) });
    if (!m || TOMBSTONE_OPERATIONS.includes(m.header?.get(Headers.operation) ?? '')) return undefined;
    try {
      return Number(decodeNodeConfig(m.data, m.subject).tombstoneTtlSeconds);
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'the node config at the site is unusable');
      return undefined;
    }
  }

  /** Compares the store with the hub's subjects and forgets what the hub no longer has (see the module doc). */
  async check(): Promise<CompactionCheckResult> {
    const { store, node, siteJsm, log } = this.deps;
    await store.whenSynced();
    const siteStream = Streams.siteDesired(node);
    const siteLast = (await siteJsm.streams.info(siteStream)).state.last_seq;
    const hub = await this.deps.hub.list();
    const forgotten: string[] = [];
    for (const held of store.heldSubjects()) {
      if (hub.has(held.subject) || held.seq > siteLast || held.seq === 0) continue;
      await siteJsm.streams.purge(siteStream, { filter: held.subject, seq: held.seq + 1 });
      store.forget(held.key);
      forgotten.push(held.key);
    }
    this.checks++;
    if (forgotten.length > 0) {
      log.info({ forgotten, hubSubjects: hub.size }, 'compaction check: deletes whose tombstones the hub compacted applied');
      this.deps.onForgotten?.(forgotten);
    } else log.info({ hubSubjects: hub.size, held: store.size }, 'compaction check: the site agrees with the hub');
    return { hubSubjects: hub.size, forgotten };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
