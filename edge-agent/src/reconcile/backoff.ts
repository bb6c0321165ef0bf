/**
 * RestartBackoff: the kubelet's container restart backoff (CrashLoopBackOff), a port of client-go's
 * flowcontrol.Backoff as kuberuntime's doBackOff uses it.
 *
 * - One entry per key `<pod>_<namespace>_<uid>_<container>_<container hash>` (getStableKey): a changed container
 *   spec starts from scratch.
 * - A restart is held back while `now - finishedAt < entry.backoff` (IsInBackOffSince, finishedAt of the newest
 *   exited container). Without an entry it is not: the first restart after a crash is immediate.
 * - Every restart that is not held back advances the entry (Next): the first to `base`, then doubling up to `max`.
 *   An entry whose last advance lies more than 2 * max before the crash is expired (the container ran that long,
 *   10 min with the kubelet's 300 s): the crash counts as a first one again. gc() drops entries idle for 2 * max.
 * - The state is in memory only, like the kubelet's: an agent restart forgets it (the restart count survives: it is
 *   in the runtime's annotations).
 *
 * Defaults are the kubelet's: base 10 s (backOffPeriod), max 300 s (MaxContainerBackOff).
 */
import type { edge } from '@edgefarm/proto';
import { containerHash } from '../runtime/labels.js';

export const KUBELET_BACKOFF_BASE_MS = 10_000;
export const KUBELET_BACKOFF_MAX_MS = 300_000;

/** What computePodActions reads (it stays pure: the clock comes in as an argument). */
export interface BackoffView {
  /** The current backoff of a key (0 without an entry). */
  get(key: string): number;
  /** True while a restart of a container that finished at `eventMs` is held back. */
  isInBackOffSince(key: string, eventMs: number, nowMs: number): boolean;
}

interface Entry {
  backoffMs: number;
  lastUpdateMs: number;
}

export class RestartBackoff implements BackoffView {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly baseMs = KUBELET_BACKOFF_BASE_MS,
    readonly maxMs = KUBELET_BACKOFF_MAX_MS,
  ) {}

  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }

  isInBackOffSince(key: string, eventMs: number, nowMs: number): boolean {
    const e = this.entries.get(key);
    if (!e || this.expired(eventMs, e)) return false;
    return nowMs - eventMs < e.backoffMs;
  }

  /** Moves the key's backoff to the next mark (a restart goes ahead now). */
  next(key: string, eventMs: number, nowMs: number): void {
    const e = this.entries.get(key);
    if (!e || this.expired(eventMs, e)) this.entries.set(key, { backoffMs: this.baseMs, lastUpdateMs: nowMs });
    else {
      e.backoffMs = Math.min(e.backoffMs * 2, this.maxMs);
      e.lastUpdateMs = nowMs;
    }
  }

  /** Drops entries not advanced for 2 * max (the kubelet's housekeeping calls backOff.GC()). */
  gc(nowMs: number): void {
    for (const [k, e] of this.entries) if (nowMs - e.lastUpdateMs > this.maxMs * 2) this.entries.delete(k);
  }

  size(): number {
    return this.entries.size;
  }

  private expired(eventMs: number, e: Entry): boolean {
    return eventMs - e.lastUpdateMs > this.maxMs * 2;
  }
}

/** The kubelet's getStableKey: a changed container spec gets a fresh backoff. */
export function backoffKey(pod: Pick<edge.EdgePodSpec, 'name' | 'namespace' | 'uid'>, container: edge.EdgeContainer): string {
  return `${pod.name}_${pod.namespace}_${pod.uid}_${container.name}_${containerHash(container)}`;
}

/** A duration as Go's time.Duration.String() prints it: 10s, 1m20s, 5m0s, 500ms. */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const totalSec = ms / 1000;
  const h = Math.floor(totalSec / 3600);
  const m = Math.floor((totalSec - h * 3600) / 60);
  const s = +(totalSec - h * 3600 - m * 60).toFixed(3);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** The kubelet's CrashLoopBackOff message (doBackOff): `back-off 20s restarting failed container=c pod=p_ns(uid)`. */
export function crashLoopMessage(pod: Pick<edge.EdgePodSpec, 'name' | 'namespace' | 'uid'>, container: string, backoffMs: number): string {
  return `back-off ${goDuration(backoffMs)} restarting failed container=${container} pod=${pod.name}_${pod.namespace}(${pod.uid})`;
}
