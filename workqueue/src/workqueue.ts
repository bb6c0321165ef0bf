/**
 * The one keyed work queue of EdgeFarm (provider and agent), like client-go's: a key is queued at most once; a key being processed is never processed
 * concurrently; a key added while it is processed is processed again afterwards; a failed key is retried with
 * per-key exponential backoff. Handlers receive keys and re-read state themselves (level-triggered).
 */
export interface WorkQueueOptions {
  /** Different keys handled in parallel (default 4). */
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Injectable timer for tests. */
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
  onError?: (key: string, err: unknown, attempt: number) => void;
  /** Hold keys until start() (for owners that may be notified before they are ready). Default false. */
  startPaused?: boolean;
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { cancel(): void }>();
  private active = 0;
  private readonly running = new Set<Promise<void>>();
  private stopped = false;
  private paused: boolean;
  private idleWaiters: (() => void)[] = [];
  private readonly workers: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly setTimer: NonNullable<WorkQueueOptions['setTimer']>;

  constructor(
    private readonly handler: (key: string) => Promise<void>,
    private readonly options: WorkQueueOptions = {},
  ) {
    this.workers = options.workers ?? 4;
    if (!Number.isInteger(this.workers) || this.workers < 1) throw new RangeError('workers must be a positive integer');
    this.baseDelayMs = options.baseDelayMs ?? 200;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.paused = options.startPaused ?? false;
    this.setTimer =
      options.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  /** Starts handling keys held since construction with `startPaused`. */
  start(): void {
    this.paused = false;
    this.pump();
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Adds the key after a delay (used for retries and for timed re-checks). */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return;
    this.timers.set(
      key,
      this.setTimer(() => {
        this.timers.delete(key);
        this.add(key);
      }, ms),
    );
  }

  get length(): number {
    return this.queue.length + this.processing.size;
  }

  /** Resolves when nothing is queued or in flight (tests). */
  async drained(): Promise<void> {
    if (this.length === 0 || this.stopped) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops taking keys, drops queued ones and pending retries, and waits for running handlers to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) t.cancel();
    this.timers.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    await Promise.allSettled([...this.running]);
    this.notifyIdle();
  }

  private pump(): void {
    if (this.paused) return;
    while (!this.stopped && this.active < this.workers && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      const run = this.run(key);
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.length !== 0 && !this.stopped) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.failures.delete(key);
    } catch (err) {
      const attempt = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, attempt);
      this.options.onError?.(key, err, attempt);
      this.addAfter(key, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1)));
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
