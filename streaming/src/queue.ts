/**
 * ChunkQueue: received byte chunks waiting for one consumer, read as an async iterable. The owner learns about every
 * chunk the consumer takes (`onTaken`: to grant flow-control credit, or to resume a paused reader), and can wait
 * until the queue holds at most a given number of bytes ({@link ChunkQueue.below}). A consumer that stops iterating
 * (break, return) discards the queue: later chunks are dropped and reported as taken.
 */
export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Uint8Array[] = [];
  private queued = 0;
  private ended = false;
  private discarded = false;
  private wake: (() => void) | undefined;
  private lowWaiters: { limit: number; resolve: () => void }[] = [];

  constructor(private readonly onTaken: (n: number) => void = () => undefined) {}

  /** Bytes queued now. */
  get bytes(): number {
    return this.queued;
  }

  push(chunk: Uint8Array): void {
    if (this.discarded || this.ended) return this.onTaken(chunk.length);
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  discard(): void {
    this.discarded = true;
    for (const c of this.chunks.splice(0)) this.take(c);
  }

  /** Resolves once at most `limit` bytes are queued (at once if so now, or when the queue was discarded). */
  below(limit: number): Promise<void> {
    if (this.queued <= limit || this.discarded) return Promise.resolve();
    return new Promise((resolve) => this.lowWaiters.push({ limit, resolve }));
  }

  private take(c: Uint8Array): void {
    this.queued -= c.length;
    this.onTaken(c.length);
    if (this.lowWaiters.length === 0) return;
    const keep = [];
    for (const w of this.lowWaiters) {
      if (this.queued <= w.limit) w.resolve();
      else keep.push(w);
    }
    this.lowWaiters = keep;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    try {
      for (;;) {
        const chunk = this.chunks.shift();
        if (chunk) {
          this.take(chunk);
          yield chunk;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
      }
    } finally {
      this.discard();
    }
  }
}
