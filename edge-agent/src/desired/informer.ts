/**
 * DesiredInformer: reads the node's site desired-state stream into a {@link DesiredStore}, like an informer.
 *
 * - Start: with a usable snapshot (snapshot.ts: same stream incarnation, a sequence the stream has reached) the store
 *   is restored from it and an ordered consumer resumes at the next sequence, like a watch from a resourceVersion.
 *   Without one it lists: an ordered consumer with deliver policy last_per_subject (the last value per subject is
 *   exactly the current state). Either way the store is synced once the consumer has nothing pending.
 * - Resuming is exact for this stream: it keeps the last message per subject and nothing else, so a message the
 *   snapshot does not cover was either delivered after it or superseded by one that was. Deletes the site never
 *   received because the hub compacted their tombstones are found by the compaction check
 *   (compaction-check.ts), not here.
 * - The ordered consumer recreates itself from the last seen sequence after a disconnect, so nothing is missed while
 *   the agent runs. The snapshot is rewritten shortly after every change (debounced) and on stop.
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Headers, Streams, desiredSubjects, sourcedSequence } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { SnapshotFile } from './snapshot.js';
import type { DesiredStore } from './store.js';

export interface DesiredInformerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  /** The node's name (its site stream's name, the snapshot's owner). */
  node: string;
  /** The node's wire id: only its subjects are read (a stream sourced under an earlier wire id keeps those). */
  wireId: string;
  store: DesiredStore;
  log: Logger;
  /** Where the snapshot lives (none: every start lists). */
  snapshots?: SnapshotFile;
  /** Wall-clock ms of the last hub acknowledgement, saved with the snapshot (see compaction-check.ts). */
  lastHubContactMs?: () => number;
}

/** How the informer started: resumed after a snapshot's sequence, or listed (and why). */
export type StartMode = { mode: 'resume'; fromSeq: number; lastHubContactMs: number } | { mode: 'list'; reason: string };

const SAVE_DEBOUNCE_MS = 200;

export class DesiredInformer {
  private messages: ConsumerMessages | undefined;
  private loops: Promise<void>[] = [];
  private stream = { name: '', created: '' };
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private dirty = false;
  private savedContact = -1;
  /** How the last start() began; the agent reads lastHubContactMs from it. */
  startMode: StartMode = { mode: 'list', reason: 'not started' };

  constructor(private readonly deps: DesiredInformerDeps) {}

  async start(): Promise<void> {
    const { js, jsm, node, wireId, store, log } = this.deps;
    const name = Streams.siteDesired(node);
    const info = await jsm.streams.info(name);
    this.stream = { name, created: info.created };
    const mode = await this.chooseStart(info.state.last_seq);
    this.startMode = mode;
    if (mode.mode === 'resume')
      log.info({ fromSeq: mode.fromSeq, pods: store.size }, 'desired state restored from the snapshot; resuming the site stream');
    else log.info({ reason: mode.reason }, 'listing the desired state from the site stream');
    if (info.state.messages === 0 || (mode.mode === 'resume' && info.state.last_seq < mode.fromSeq)) store.markSynced();
    const consumer = await js.consumers.get(
      name,
      mode.mode === 'resume'
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: mode.fromSeq, filter_subjects: desiredSubjects.node(wireId) }
        : { deliver_policy: DeliverPolicy.LastPerSubject, filter_subjects: desiredSubjects.node(wireId) },
    );
    const messages = await consumer.consume({ max_messages: 256 });
    this.messages = messages;
    this.loops.push(
      (async () => {
        for await (const m of messages) {
          store.apply({
            subject: m.subject,
            seq: m.seq,
            hubSeq: sourcedSequence(m.headers?.get(Headers.streamSource)),
            data: m.data,
            operation: m.headers?.get(Headers.operation) || undefined,
          });
          if (m.info.pending === 0) store.markSynced();
          this.scheduleSave();
        }
      })().catch((err: unknown) => log.error({ err }, 'desired-state consumer stopped')),
      (async () => {
        for await (const s of messages.status()) {
          if (s.type === 'heartbeats_missed' || s.type === 'reset' || s.type === 'ordered_consumer_recreated')
            log.info({ status: s }, 'desired-state consumer');
          else log.trace({ status: s }, 'desired-state consumer');
        }
      })().catch(() => undefined),
    );
  }

  private async chooseStart(lastSeq: number): Promise<StartMode> {
    const { snapshots, node, store } = this.deps;
    if (!snapshots) return { mode: 'list', reason: 'no state directory' };
    const loaded = await snapshots.load(node);
    if (!loaded.ok) return { mode: 'list', reason: loaded.reason };
    const snap = loaded.snapshot;
    if (snap.stream.name !== this.stream.name || snap.stream.created !== this.stream.created) {
      return {
        mode: 'list',
        reason: `snapshot of another incarnation of the site stream (created ${snap.stream.created}, now ${this.stream.created})`,
      };
    }
    if (snap.state.seq > lastSeq) return { mode: 'list', reason: `snapshot at sequence ${snap.state.seq}, the stream ends at ${lastSeq}` };
    store.restore(snap.state);
    this.savedContact = snap.lastHubContactMs;
    return { mode: 'resume', fromSeq: snap.state.seq + 1, lastHubContactMs: snap.lastHubContactMs };
  }

  /** The store changed: saves the snapshot soon (debounced). */
  scheduleSave(): void {
    this.dirty = true;
    if (!this.deps.snapshots || this.saveTimer || !this.deps.store.synced) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      this.saving = this.saving.then(() => this.saveNow());
    }, SAVE_DEBOUNCE_MS);
  }

  /** Writes the snapshot if the store changed or the hub-contact time moved by 30 s or more. */
  async saveNow(): Promise<void> {
    const { snapshots, store, node, log } = this.deps;
    if (!snapshots || !store.synced || !this.stream.name) return;
    const contact = this.deps.lastHubContactMs?.() ?? 0;
    if (!this.dirty && contact - this.savedContact < 30_000) return;
    this.dirty = false;
    try {
      await snapshots.save({ node, stream: this.stream, lastHubContactMs: contact }, store.snapshot());
      this.savedContact = contact;
    } catch (err) {
      this.dirty = true;
      log.warn({ err, path: snapshots.path }, 'writing the desired-state snapshot failed; a restart will list the stream');
    }
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await Promise.allSettled(this.loops);
    this.loops = [];
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    await this.saving;
    await this.saveNow();
  }
}
