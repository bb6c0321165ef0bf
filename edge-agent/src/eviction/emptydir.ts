/**
 * EmptyDirEviction: enforces the sizeLimit of disk-backed emptyDirs as the kubelet's eviction manager does
 * (pkg/kubelet/eviction localStorageEviction / emptyDirLimitEviction). Every `periodMs` it measures each such volume
 * of the desired pods (usage.ts: du-like, bounded, no symlinks followed, no mounts crossed) and evicts a pod whose
 * emptyDir holds more than its limit: the pod is marked evicted (persisted as `evicted.json` in the pod's volume
 * directory, so a restarted agent does not start it again), a Warning Event `Evicted` is recorded, the counter
 * `edgefarm_agent_evictions_total{reason="emptydir-size-limit"}` goes up, and the pod's key is queued. The reconciler
 * asks {@link EmptyDirEviction.evicted} on every sync: an evicted pod's containers are killed (grace 0, as the kubelet
 * evicts for local storage), nothing of it starts again, and it is reported Failed with reason `Evicted` and the
 * kubelet's message (`Usage of EmptyDir volume "x" exceeds the limit "1Mi".`). Memory-backed emptyDirs are tmpfs
 * mounts of their sizeLimit already (volumes/manager.ts) and are not measured.
 *
 * The pod stays Failed until it is deleted (its directory, and with it the mark, goes with the pod's UID).
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { podKeyString, type edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { EventSink } from '../events/recorder.js';
import { errorMessage } from '../util/time.js';
import { diskUsage } from './usage.js';

/** The kubelet's pod status reason of an eviction (pkg/kubelet/eviction Reason). */
export const EVICTED_REASON = 'Evicted';
export const EVICTION_REASONS = ['emptydir-size-limit'] as const;
const MARK = 'evicted.json';

export interface Eviction {
  reason: string;
  message: string;
}

/** What the reconciler asks (a fake may implement it). */
export interface EvictionView {
  /** The eviction of pod UID `uid`, if it was evicted. */
  evicted(uid: string): Eviction | undefined;
}

export interface EmptyDirEvictionDeps {
  /** The desired pods (the desired store); marks of pods it no longer holds are forgotten once it has synced. */
  desired: { keys(): string[]; get(key: string): edge.EdgePodSpec | undefined; readonly synced: boolean };
  /** UIDs of the pods with a volume directory (read at start for the marks of an earlier run). */
  podUids(): string[];
  /** `<root>/<uid>/volumes/<name>` and `<root>/<uid>` (the VolumeManager's layout). */
  volumeDir(uid: string, volume: string): string;
  podDir(uid: string): string;
  /** Queues a pod key for a sync (the reconciler's enqueue). */
  onEvict(key: string): void;
  events?: EventSink;
  registry?: Registry;
  log: Logger;
}

export interface EmptyDirEvictionOptions {
  /** Interval of the measurements; 0: never (default 10 s, the kubelet's housekeeping). */
  periodMs?: number;
  /** Most entries one volume's walk looks at (default 100,000). */
  maxEntries?: number;
}

const BINARY = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const DECIMAL = ['k', 'M', 'G', 'T', 'P', 'E'];

/** A byte count as a Kubernetes quantity: the largest exact binary or decimal suffix (1048576 -> 1Mi), else bytes. */
export function formatQuantity(bytes: bigint): string {
  if (bytes <= 0n) return bytes.toString();
  for (let i = BINARY.length; i > 0; i--) {
    const unit = 1024n ** BigInt(i);
    if (bytes % unit === 0n) return `${bytes / unit}${BINARY[i - 1]}`;
  }
  for (let i = DECIMAL.length; i > 0; i--) {
    const unit = 1000n ** BigInt(i);
    if (bytes % unit === 0n) return `${bytes / unit}${DECIMAL[i - 1]}`;
  }
  return bytes.toString();
}

/** The kubelet's message (pkg/kubelet/eviction emptyDirMessageFmt). */
export function emptyDirMessage(volume: string, limitBytes: bigint): string {
  return `Usage of EmptyDir volume "${volume}" exceeds the limit "${formatQuantity(limitBytes)}".`;
}

/** The disk-backed emptyDirs of a pod that have a sizeLimit. */
export function limitedEmptyDirs(pod: edge.EdgePodSpec): { name: string; limitBytes: bigint }[] {
  const out: { name: string; limitBytes: bigint }[] = [];
  for (const v of pod.volumes) {
    if (v.source.case !== 'emptyDir' || v.source.value.memory || v.source.value.sizeLimitBytes <= 0n) continue;
    out.push({ name: v.name, limitBytes: v.source.value.sizeLimitBytes });
  }
  return out;
}

export class EmptyDirEviction implements EvictionView {
  private readonly marks = new Map<string, Eviction>();
  private readonly counter: Counter<'reason'>;
  private readonly periodMs: number;
  private readonly maxEntries: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: EmptyDirEvictionDeps,
    options: EmptyDirEvictionOptions = {},
  ) {
    this.periodMs = options.periodMs ?? 10_000;
    this.maxEntries = options.maxEntries ?? 100_000;
    this.counter = new Counter({
      name: 'edgefarm_agent_evictions_total',
      help: 'Pods the agent evicted, by reason.',
      labelNames: ['reason'],
      registers: deps.registry ? [deps.registry] : [],
    });
    for (const reason of EVICTION_REASONS) this.counter.inc({ reason }, 0);
  }

  evicted(uid: string): Eviction | undefined {
    return this.marks.get(uid);
  }

  /** Evictions so far (what the metric counts). */
  async evictions(): Promise<number> {
    return (await this.counter.get()).values.reduce((n, v) => n + v.value, 0);
  }

  /** Reads the marks an earlier run left in the pods' directories, then measures every period. */
  async start(): Promise<void> {
    for (const uid of this.deps.podUids()) await this.load(uid);
    if (this.periodMs > 0) this.schedule(this.periodMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.running = this.check()
        .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'emptyDir check failed'))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.schedule(this.periodMs);
        });
    }, delayMs);
  }

  /** One round: measures every limited disk emptyDir of every desired pod not yet evicted; public for tests. */
  async check(): Promise<void> {
    const uids = new Set<string>();
    for (const key of this.deps.desired.keys()) {
      if (this.stopped) return;
      const pod = this.deps.desired.get(key);
      if (!pod) continue;
      uids.add(pod.uid);
      if (pod.deleting || this.marks.has(pod.uid)) continue;
      for (const v of limitedEmptyDirs(pod)) {
        const dir = this.deps.volumeDir(pod.uid, v.name);
        let bytes: number;
        try {
          ({ bytes } = await diskUsage(dir, { maxEntries: this.maxEntries, stopAbove: Number(v.limitBytes) }));
        } catch (err) {
          if ((err as NodeJS.ErrnoException)?.code !== 'ENOENT') {
            this.deps.log.warn({ pod: key, volume: v.name, err: errorMessage(err) }, 'cannot measure emptyDir');
          }
          continue;
        }
        if (bytes > Number(v.limitBytes)) {
          await this.evict(pod, { reason: EVICTED_REASON, message: emptyDirMessage(v.name, v.limitBytes) }, bytes);
          break;
        }
      }
    }
    if (!this.deps.desired.synced) return;
    for (const uid of [...this.marks.keys()]) if (!uids.has(uid)) this.marks.delete(uid); // the pod is gone
  }

  private async evict(pod: edge.EdgePodSpec, eviction: Eviction, bytes: number): Promise<void> {
    const key = podKeyString(pod);
    this.marks.set(pod.uid, eviction);
    this.counter.inc({ reason: 'emptydir-size-limit' });
    this.deps.log.warn({ pod: key, uid: pod.uid, usageBytes: bytes, message: eviction.message }, 'evicting pod');
    this.deps.events?.event({ uid: pod.uid, namespace: pod.namespace, name: pod.name }, 'Warning', EVICTED_REASON, eviction.message);
    try {
      const dir = this.deps.podDir(pod.uid);
      const tmp = path.join(dir, `.${MARK}.tmp`);
      await writeFile(tmp, JSON.stringify(eviction));
      await rename(tmp, path.join(dir, MARK));
    } catch (err) {
      this.deps.log.warn({ pod: key, err: errorMessage(err) }, 'cannot persist the eviction; a restarted agent measures again');
    }
    this.deps.onEvict(key);
  }

  private async load(uid: string): Promise<void> {
    try {
      const raw = JSON.parse(await readFile(path.join(this.deps.podDir(uid), MARK), 'utf8')) as Partial<Eviction>;
      if (typeof raw.reason === 'string' && typeof raw.message === 'string') {
        this.marks.set(uid, { reason: raw.reason.slice(0, 128), message: raw.message.slice(0, 1024) });
      }
    } catch {
      // not evicted, or an unreadable mark: measured again
    }
  }
}
