/**
 * A keyed work queue in the manner of client-go's: callers queue keys, never objects; a key is handled by at most one
 * worker at a time; a key queued again while it is being handled runs once more after the current run; a key queued
 * several times while waiting runs once. Handlers are expected to be level-triggered (re-read state by key).
 * Failures are the handler's business: the queue logs them and relies on the next add or resync to retry.
 */
import type { Logger } from 'pino';

export type KeyHandler = (key: string) => Promise<void>;

export interface WorkQueueOptions {
  /** Keys handled in parallel (different keys only). Default 4. */
  concurrency?: number;
}

export class WorkQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  private readonly concurrency: number;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly handler: KeyHandler,
    private readonly log: Logger,
    options: WorkQueueOptions = {},
  ) {
    this.concurrency = options.concurrency ?? 4;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new RangeError('concurrency must be >= 1');
  }

  start(): void {
    if (this.state !== 'new') throw new Error('work queue already started');
    this.state = 'running';
    this.pump();
  }

  /** Queues a key. Keys added before start() wait for it; keys added after stop() are dropped. */
  add(key: string): void {
    if (this.state === 'stopped') return;
    if (this.active.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Number of keys waiting or being handled. */
  get length(): number {
    return this.pending.length + this.active.size;
  }

  /** Resolves when nothing is queued or running (for tests and orderly shutdown). */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Stops taking new keys and waits for the running handlers to finish. Queued keys are dropped. */
  async stop(): Promise<void> {
    this.state = 'stopped';
    this.pending.length = 0;
    this.queued.clear();
    this.dirty.clear();
    await Promise.allSettled([...this.running]);
    this.notifyIdle();
  }

  private pump(): void {
    if (this.state !== 'running') return;
    while (this.active.size < this.concurrency) {
      const i = this.pending.findIndex((k) => !this.active.has(k));
      if (i < 0) break;
      const key = this.pending.splice(i, 1)[0]!;
      this.queued.delete(key);
      this.active.add(key);
      const run = this.run(key);
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }
    this.notifyIdle();
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
    } catch (err) {
      this.log.error({ err, key }, 'sync failed; retrying on the next resync');
    } finally {
      this.active.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }

  private notifyIdle(): void {
    if (this.length !== 0 && this.state !== 'stopped') return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
