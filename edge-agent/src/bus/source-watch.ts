/**
 * SourceWatch: brings the node's desired stream's source back as soon as the hub answers again after a silence.
 *
 * The site's nats-server sets a cut source up again by itself, but on its own schedule (nats-server 2.12, stream.go):
 * a source quiet for 10 s is retried; a consumer-create request lost in the cut waits 30 s for its reply; every failed
 * try adds 10 s more of backoff, up to 2 minutes. After a cut of a minute or two the source resumes 40 s to several
 * minutes after the link does, and until it does nothing desired reaches the site although the link is up: at 1,000
 * nodes cut and healed at once, some took over 5 minutes (bench/README.md, reconnect storm).
 *
 * The agent knows when the hub answers again: a forwarder acknowledgement after a silence (`contact`). The watch then
 * looks at the source as the site's JetStream reports it: a healthy source hears from the hub every second (its
 * consumer's idle heartbeat). If it has been quiet for `staleMs` (10 s, what the server itself calls stalled) while
 * the hub answers, the watch removes the source and adds it back (two stream updates at the site): the server sets a
 * new source up at once, resuming after the last message it finds in the stream from that source. It looks again
 * `checkEveryMs` later (35 s: longer than the server waits for a consumer-create reply, so a restart never cancels a
 * set-up that is only slow, as on an overloaded hub) until the source is healthy or `giveUpMs` has passed.
 */
import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import { Streams } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { errorMessage, sleep, type Clock } from '../util/time.js';
import { siteDesiredStreamConfig } from './site-streams.js';

export interface SourceWatchDeps {
  /** The node's name (its site stream's name). */
  node: string;
  /** The node's wire id (its source's filter and deliver prefix). */
  wireId: string;
  /** Site JetStream: the node's desired stream (info, update). */
  jsm: JetStreamManager;
  clock: Clock;
  log: Logger;
}

export interface SourceWatchOptions {
  /** A contact after a silence longer than this starts a watch (default 10 s: a healthy link acks every few seconds). */
  quietMs?: number;
  /** A source that heard nothing from the hub for this long is stalled (default 10 s; healthy: every 1 s). */
  staleMs?: number;
  /** First look after the contact, then between looks (default 3 s, 35 s). */
  firstCheckMs?: number;
  checkEveryMs?: number;
  /** A watch ends after this long (default 180 s). */
  giveUpMs?: number;
}

/** How the source of the node's desired stream is doing: `quietMs` is undefined when the server never heard from it. */
export function sourceHealth(info: StreamInfo): { quietMs: number | undefined; error: string | undefined } | undefined {
  const src = info.sources?.find((s) => s.name === Streams.desired);
  if (!src) return undefined;
  return { quietMs: src.active >= 0 ? src.active / 1e6 : undefined, error: src.error?.description };
}

export class SourceWatch {
  private readonly o: Required<SourceWatchOptions>;
  private lastContactMs = 0;
  private watching: Promise<void> | undefined;
  private readonly abort = new AbortController();
  /** Sources restarted, for tests and logs. */
  restarts = 0;

  constructor(
    private readonly deps: SourceWatchDeps,
    options: SourceWatchOptions = {},
  ) {
    this.o = { quietMs: 10_000, staleMs: 10_000, firstCheckMs: 3_000, checkEveryMs: 35_000, giveUpMs: 180_000, ...options };
  }

  /** A hub acknowledgement arrived; after a silence, watches the source until it is healthy. */
  contact(): void {
    const now = this.deps.clock.now();
    const silentMs = this.lastContactMs === 0 ? 0 : now - this.lastContactMs;
    this.lastContactMs = now;
    if (silentMs <= this.o.quietMs || this.watching || this.abort.signal.aborted) return;
    this.watching = this.watch(silentMs)
      .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'watching the desired stream source failed'))
      .finally(() => (this.watching = undefined));
  }

  private async watch(silentMs: number): Promise<void> {
    const { signal } = this.abort;
    const until = this.deps.clock.now() + this.o.giveUpMs;
    await sleep(this.o.firstCheckMs, signal);
    while (!signal.aborted) {
      if (!(await this.check(silentMs))) return;
      if (this.deps.clock.now() + this.o.checkEveryMs > until) {
        this.deps.log.warn({ giveUpMs: this.o.giveUpMs }, 'the desired stream source is still stalled; leaving it to the site server');
        return;
      }
      await sleep(this.o.checkEveryMs, signal);
    }
  }

  /** Restarts the source when it is stalled; true when it was (look again later). */
  async check(silentMs = 0): Promise<boolean> {
    const { jsm, node, wireId, log } = this.deps;
    const name = Streams.siteDesired(node);
    const info = await jsm.streams.info(name);
    const health = sourceHealth(info);
    if (health && health.quietMs !== undefined && health.quietMs < this.o.staleMs && !health.error) return false;
    log.info(
      { quietMs: health?.quietMs, error: health?.error, silentMs },
      'hub reachable again but the desired stream source is stalled: restarting it',
    );
    // Removing the source and adding it back is what makes the server set it up now; the stream keeps its messages
    // and the new source resumes after the last one it finds from the hub. Between the two updates the stream has
    // no source (and the server gives it its own name as a subject, which nothing publishes to).
    const want = siteDesiredStreamConfig(node, wireId);
    await jsm.streams.update(name, { ...info.config, sources: [] });
    await jsm.streams.update(name, { ...info.config, subjects: [], sources: want.sources });
    this.restarts++;
    return true;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.watching;
  }
}
