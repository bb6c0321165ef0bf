/**
 * Image garbage collection by disk usage, as the kubelet's ImageGCManager does it:
 *
 * - usage% = 100 - available * 100 / capacity of the image filesystem. At or above the high threshold (default 85),
 *   free `capacity * (100 - low) / 100 - available` bytes (down to the low threshold, default 80). A high threshold of
 *   100 disables collection.
 * - Candidates: images no container of the runtime uses (any container, managed or not, running or not), not pinned,
 *   not the sandbox image, and first seen at least minAge ago (default 2 min, the kubelet's imageMinimumGCAge: a
 *   freshly pulled image is not taken away before its container is created). Least recently used first (then first
 *   seen): an image is "used" when a container uses it at a detection or the image manager hands it out.
 * - Last-used times live in memory only; after a restart every image counts as first seen then.
 *
 * {@link planImageGc} is the pure decision; {@link ImageGC} detects, plans and removes, every interval (default
 * 5 min) between start() and stop(), or when runOnce() is called.
 */
import type { Logger } from 'pino';
import { errorMessage, type Clock } from '../util/time.js';
import type { ImageService } from './service.js';

export interface GcImage {
  id: string;
  names: string[];
  sizeBytes: number;
  pinned: boolean;
  /** 0: never seen in use. */
  lastUsedMs: number;
  firstSeenMs: number;
}

export interface GcPolicy {
  highPercent: number;
  lowPercent: number;
  /** Images first seen less than this long ago are kept. */
  minAgeMs: number;
}

export interface GcInput {
  images: GcImage[];
  /** Image ids (or names) used by the runtime's containers. */
  inUse: ReadonlySet<string>;
  /** Never removed ('' when unknown). */
  sandboxImage: string;
  capacityBytes: number;
  availableBytes: number;
  policy: GcPolicy;
  nowMs: number;
}

export interface GcPlan {
  usagePercent: number;
  /** Bytes to free to reach the low threshold (0: below the high threshold, nothing to do). */
  bytesToFree: number;
  /** What to remove, in order. */
  remove: GcImage[];
  freedBytes: number;
  /** Why each kept image was kept (id -> reason), for logs and tests. */
  kept: Map<string, string>;
}

export const DEFAULT_GC_POLICY: GcPolicy = { highPercent: 85, lowPercent: 80, minAgeMs: 120_000 };

/** Checks thresholds as the kubelet's NewImageGCManager does; returns the problem or ''. */
export function gcPolicyProblem(p: Pick<GcPolicy, 'highPercent' | 'lowPercent'>): string {
  const pct = (n: number): boolean => Number.isFinite(n) && n >= 0 && n <= 100;
  if (!pct(p.highPercent)) return `image GC high threshold ${p.highPercent} is not a percentage (0-100)`;
  if (!pct(p.lowPercent)) return `image GC low threshold ${p.lowPercent} is not a percentage (0-100)`;
  if (p.lowPercent > p.highPercent)
    return `image GC low threshold ${p.lowPercent} can not be higher than the high threshold ${p.highPercent}`;
  return '';
}

export function usagePercent(capacityBytes: number, availableBytes: number): number {
  if (capacityBytes <= 0) return 0;
  return 100 - Math.floor((availableBytes * 100) / capacityBytes);
}

export function planImageGc(input: GcInput): GcPlan {
  const { policy } = input;
  const usage = usagePercent(input.capacityBytes, input.availableBytes);
  const plan: GcPlan = { usagePercent: usage, bytesToFree: 0, remove: [], freedBytes: 0, kept: new Map() };
  if (policy.highPercent >= 100 || input.capacityBytes <= 0 || usage < policy.highPercent) return plan;
  plan.bytesToFree = Math.max(0, Math.ceil((input.capacityBytes * (100 - policy.lowPercent)) / 100 - input.availableBytes));
  if (plan.bytesToFree === 0) return plan;

  const candidates: GcImage[] = [];
  for (const img of input.images) {
    if (input.inUse.has(img.id) || img.names.some((n) => input.inUse.has(n))) plan.kept.set(img.id, 'in use');
    else if (img.pinned) plan.kept.set(img.id, 'pinned');
    else if (input.sandboxImage && img.names.includes(input.sandboxImage)) plan.kept.set(img.id, 'sandbox image');
    else if (input.nowMs - img.firstSeenMs < policy.minAgeMs) plan.kept.set(img.id, 'younger than the minimum age');
    else candidates.push(img);
  }
  candidates.sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.firstSeenMs - b.firstSeenMs || a.id.localeCompare(b.id));
  for (const img of candidates) {
    if (plan.freedBytes >= plan.bytesToFree) {
      plan.kept.set(img.id, 'enough freed');
      continue;
    }
    plan.remove.push(img);
    plan.freedBytes += img.sizeBytes;
  }
  return plan;
}

export interface ImageGcDeps {
  images: ImageService;
  clock: Clock;
  log: Logger;
}

export interface ImageGcOptions extends Partial<GcPolicy> {
  /** How often start() runs a collection (default 5 min). */
  intervalMs?: number;
}

export interface GcRun {
  usagePercent: number;
  bytesToFree: number;
  removed: string[];
  freedBytes: number;
  /** Removals that failed (id: message). */
  errors: string[];
}

export class ImageGC {
  private readonly policy: GcPolicy;
  private readonly intervalMs: number;
  private readonly lastUsed = new Map<string, number>();
  private readonly firstSeen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<GcRun> | undefined;
  private stopped = false;

  constructor(
    private readonly deps: ImageGcDeps,
    options: ImageGcOptions = {},
  ) {
    this.policy = {
      highPercent: options.highPercent ?? DEFAULT_GC_POLICY.highPercent,
      lowPercent: options.lowPercent ?? DEFAULT_GC_POLICY.lowPercent,
      minAgeMs: options.minAgeMs ?? DEFAULT_GC_POLICY.minAgeMs,
    };
    const problem = gcPolicyProblem(this.policy);
    if (problem) throw new RangeError(problem);
    this.intervalMs = options.intervalMs ?? 5 * 60_000;
  }

  /** An image is about to be used by a container (the image manager calls it). */
  noteUsed(imageId: string): void {
    const now = this.deps.clock.now();
    this.lastUsed.set(imageId, now);
    if (!this.firstSeen.has(imageId)) this.firstSeen.set(imageId, now);
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One detection and collection (one at a time: a call while one runs gets that run's result). */
  runOnce(): Promise<GcRun> {
    this.running ??= this.collect().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.runOnce()
        .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'image garbage collection failed'))
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  private async collect(): Promise<GcRun> {
    const { images, clock, log } = this.deps;
    const [list, inUse, sandboxImage, fs] = await Promise.all([
      images.listImages(),
      images.imagesInUse(),
      images.sandboxImage(),
      images.imageFsUsage(),
    ]);
    const now = clock.now();
    const present = new Set(list.map((i) => i.id));
    for (const id of [...this.firstSeen.keys()]) {
      if (!present.has(id)) {
        this.firstSeen.delete(id);
        this.lastUsed.delete(id);
      }
    }
    const gcImages: GcImage[] = list.map((i) => {
      if (!this.firstSeen.has(i.id)) this.firstSeen.set(i.id, now);
      if (inUse.has(i.id) || i.names.some((n) => inUse.has(n))) this.lastUsed.set(i.id, now);
      return { ...i, lastUsedMs: this.lastUsed.get(i.id) ?? 0, firstSeenMs: this.firstSeen.get(i.id)! };
    });
    const plan = planImageGc({
      images: gcImages,
      inUse,
      sandboxImage,
      capacityBytes: fs.capacityBytes,
      availableBytes: fs.availableBytes,
      policy: this.policy,
      nowMs: now,
    });
    const run: GcRun = { usagePercent: plan.usagePercent, bytesToFree: plan.bytesToFree, removed: [], freedBytes: 0, errors: [] };
    if (plan.bytesToFree === 0) return run;
    log.info(
      {
        usagePercent: plan.usagePercent,
        high: this.policy.highPercent,
        low: this.policy.lowPercent,
        bytesToFree: plan.bytesToFree,
        candidates: plan.remove.length,
      },
      'image filesystem above the high threshold: removing unused images',
    );
    for (const img of plan.remove) {
      try {
        await images.removeImage(img.id);
        run.removed.push(img.id);
        run.freedBytes += img.sizeBytes;
        this.firstSeen.delete(img.id);
        this.lastUsed.delete(img.id);
        log.info({ image: img.names[0] ?? img.id, id: img.id, sizeBytes: img.sizeBytes }, 'image removed');
      } catch (err) {
        run.errors.push(`${img.id}: ${errorMessage(err)}`);
      }
    }
    if (run.freedBytes < plan.bytesToFree) {
      log.warn(
        { freedBytes: run.freedBytes, bytesToFree: plan.bytesToFree, errors: run.errors },
        'image garbage collection could not free enough space',
      );
    }
    return run;
  }
}
