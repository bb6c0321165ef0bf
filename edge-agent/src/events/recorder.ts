/**
 * EventRecorder: records Kubernetes Events about pods the way the kubelet's client-go recorder does, and writes them
 * to the node's events stream in the SITE's JetStream (Streams.siteEvents), from where a forwarder moves them to the
 * hub. Events are best effort: the site stream is capped by size and age and drops the oldest.
 *
 * - Aggregation (client-go's EventCorrelator, simplified): an event with the same involved object, field path, type,
 *   reason and message as one recorded within `aggregateWindowMs` is the same event with count+1 and a new
 *   lastTimestamp. Every message for it carries the same `key`, so the provider updates one Kubernetes Event.
 * - Rate limit: at most one message per key per `minPublishIntervalMs`; what happens in between is coalesced into
 *   the next message (the latest count wins), published when the interval is over.
 * - A message the site stream did not take is counted in {@link EventRecorder.dropped} and logged; never retried
 *   (the next occurrence carries the aggregated count anyway).
 *
 * The reason strings and message formats are the kubelet's (pkg/kubelet/events), see {@link Reasons}.
 */
import { createHash, randomBytes } from 'node:crypto';
import { create, edge, encode, eventSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { OutboxWriter } from '../bus/outbox.js';
import { errorMessage, type Clock } from '../util/time.js';

/** The object an event is about: a pod, optionally one of its containers. */
export interface EventRef {
  uid: string;
  namespace: string;
  name: string;
  /** involvedObject.fieldPath, e.g. {@link containerFieldPath}('app'). */
  fieldPath?: string;
}

export type EventKind = 'Normal' | 'Warning';

/** Records events; what the rest of the agent depends on (a no-op or a fake in tests). */
export interface EventSink {
  event(ref: EventRef, type: EventKind, reason: string, message: string): void;
}

/** The kubelet's field path for a container: `spec.containers{name}` (init containers: `spec.initContainers{name}`). */
export function containerFieldPath(name: string, kind: boolean | 'init' | 'ephemeral' | 'regular' = false): string {
  const list =
    kind === true || kind === 'init' ? 'spec.initContainers' : kind === 'ephemeral' ? 'spec.ephemeralContainers' : 'spec.containers';
  return `${list}{${name}}`;
}

/** The kubelet's reason strings (pkg/kubelet/events/event.go). */
export const Reasons = {
  created: 'Created',
  started: 'Started',
  failed: 'Failed',
  killing: 'Killing',
  backOff: 'BackOff',
  exceededGracePeriod: 'ExceededGracePeriod',
  pulling: 'Pulling',
  pulled: 'Pulled',
  failedToInspectImage: 'InspectFailed',
  errImageNeverPull: 'ErrImageNeverPull',
  unhealthy: 'Unhealthy',
  failedMount: 'FailedMount',
  deadlineExceeded: 'DeadlineExceeded',
  failedSync: 'FailedSync',
} as const;

export interface EventRecorderOptions {
  /** Identical events within this window are aggregated (default 10 min, as client-go). */
  aggregateWindowMs?: number;
  /** At most one message per key per this interval (default 5 s). */
  minPublishIntervalMs?: number;
  /** Keys remembered at most (oldest forgotten first; default 4096). */
  maxKeys?: number;
}

export interface EventRecorderDeps {
  /** The Kubernetes node name (each Event's nodeName). */
  node: string;
  /** The node's wire id (the site event subjects name it). */
  wireId: string;
  /** Writes to the site events stream (a JetStreamOutbox on Streams.siteEvents(node)). */
  sink: OutboxWriter;
  clock: Clock;
  log: Logger;
}

interface Entry {
  ref: EventRef;
  type: EventKind;
  reason: string;
  message: string;
  first: number;
  last: number;
  count: number;
  /** When a message for this key was last published (0: never). */
  publishedAt: number;
  /** Count already published; pending while count > publishedCount. */
  publishedCount: number;
  timer?: NodeJS.Timeout;
}

export class EventRecorder implements EventSink {
  private readonly opts: Required<EventRecorderOptions>;
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Set<Promise<void>>();
  /** Unique per agent process: ids stay unique across restarts (the hub de-duplicates on them). */
  private readonly instance = randomBytes(6).toString('hex');
  private seq = 0;
  private droppedCount = 0;
  private publishedTotal = 0;
  private stopped = false;

  constructor(
    private readonly deps: EventRecorderDeps,
    options: EventRecorderOptions = {},
  ) {
    this.opts = {
      aggregateWindowMs: options.aggregateWindowMs ?? 10 * 60_000,
      minPublishIntervalMs: options.minPublishIntervalMs ?? 5_000,
      maxKeys: options.maxKeys ?? 4096,
    };
  }

  /** Events the site stream did not take (publish failed). */
  get dropped(): number {
    return this.droppedCount;
  }
  /** Messages written to the site stream. */
  get published(): number {
    return this.publishedTotal;
  }

  event(ref: EventRef, type: EventKind, reason: string, message: string): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    const key = eventKey(ref, type, reason, message);
    let e = this.entries.get(key);
    if (e && now - e.last <= this.opts.aggregateWindowMs) {
      e.count++;
      e.last = now;
    } else {
      if (e?.timer) clearTimeout(e.timer);
      e = { ref, type, reason, message, first: now, last: now, count: 1, publishedAt: 0, publishedCount: 0 };
      this.entries.delete(key);
      this.entries.set(key, e);
      this.evict();
    }
    const wait = e.publishedAt + this.opts.minPublishIntervalMs - now;
    if (e.publishedAt === 0 || wait <= 0) this.publish(key, e);
    else if (!e.timer) {
      const entry = e;
      e.timer = setTimeout(() => {
        entry.timer = undefined;
        this.publish(key, entry);
      }, wait);
    }
  }

  /** Publishes every coalesced update now (stop() does; tests do instead of waiting). Resolves when written. */
  async flush(): Promise<void> {
    for (const [key, e] of this.entries) {
      if (e.count > e.publishedCount) {
        if (e.timer) clearTimeout(e.timer);
        e.timer = undefined;
        this.publish(key, e);
      }
    }
    await Promise.all([...this.inflight]);
  }

  async stop(): Promise<void> {
    await this.flush();
    this.stopped = true;
    for (const e of this.entries.values()) if (e.timer) clearTimeout(e.timer);
    this.entries.clear();
    if (this.droppedCount > 0)
      this.deps.log.info({ dropped: this.droppedCount, published: this.publishedTotal }, 'events dropped since start');
  }

  private publish(key: string, e: Entry): void {
    const { node, wireId, sink, log } = this.deps;
    e.publishedAt = this.deps.clock.now();
    e.publishedCount = e.count;
    const id = `${this.instance}-${++this.seq}`;
    const msg = create(edge.EdgeEventSchema, {
      id,
      key,
      podUid: e.ref.uid,
      podNamespace: e.ref.namespace,
      podName: e.ref.name,
      fieldPath: e.ref.fieldPath ?? '',
      type: e.type === 'Warning' ? edge.EventType.WARNING : edge.EventType.NORMAL,
      reason: e.reason,
      message: e.message,
      firstTimestampMs: BigInt(e.first),
      lastTimestampMs: BigInt(e.last),
      count: e.count,
      nodeName: node,
    });
    const p = (async () => {
      try {
        await sink.publish(eventSubjects.site(wireId, id), encode(edge.EdgeEventSchema, msg));
        this.publishedTotal++;
      } catch (err) {
        this.droppedCount++;
        log.warn(
          { err: errorMessage(err), reason: e.reason, pod: `${e.ref.namespace}/${e.ref.name}`, dropped: this.droppedCount },
          'event dropped: the site events stream did not take it',
        );
      }
    })();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private evict(): void {
    while (this.entries.size > this.opts.maxKeys) {
      const [oldest, e] = this.entries.entries().next().value as [string, Entry];
      if (e.timer) clearTimeout(e.timer);
      this.entries.delete(oldest);
    }
  }
}

/** The aggregation key: stable across agent restarts, so the provider keeps updating the same Kubernetes Event. */
export function eventKey(ref: EventRef, type: EventKind, reason: string, message: string): string {
  return createHash('sha256')
    .update([ref.uid, ref.fieldPath ?? '', type, reason, message].join('\u0000'))
    .digest('hex')
    .slice(0, 16);
}

/** An EventSink that records nothing (components built without a recorder). */
export const noEvents: EventSink = { event: () => undefined };

/** Hand-written fake: records every event. */
export class FakeEventSink implements EventSink {
  readonly events: { ref: EventRef; type: EventKind; reason: string; message: string }[] = [];
  event(ref: EventRef, type: EventKind, reason: string, message: string): void {
    this.events.push({ ref, type, reason, message });
  }
  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }
}
