/**
 * ByteQueue: bytes pushed by a protocol reader, consumed once as an AsyncIterable. The producer learns about
 * backpressure from {@link ByteQueue.size} and {@link ByteQueue.whenBelow}; the consumer's progress is reported
 * through `onConsumed` (the SPDY stream turns it into WINDOW_UPDATEs).
 */
export class ByteQueue implements AsyncIterable<Buffer> {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private failure?: Error;
  private wakeConsumer?: () => void;
  private readonly belowWaiters: { limit: number; resolve: () => void }[] = [];
  private iterated = false;

  constructor(private readonly onConsumed?: (n: number) => void) {}

  /** Bytes pushed and not consumed yet. */
  get size(): number {
    return this.bytes;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  push(chunk: Buffer): void {
    if (this.ended || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.wake();
  }

  /** No more bytes (EOF). Pending chunks are still delivered. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Ends the iteration with an error after nothing more is delivered; drops what was not consumed. */
  fail(err: Error): void {
    if (this.ended) return;
    this.failure = err;
    this.ended = true;
    this.discard();
    this.wake();
  }

  /** Resolves once fewer than `limit` bytes are queued (at once when already so, or when the queue ends). */
  whenBelow(limit: number): Promise<void> {
    if (this.bytes < limit || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.belowWaiters.push({ limit, resolve }));
  }

  private discard(): void {
    this.chunks.length = 0;
    this.bytes = 0;
    this.releaseWaiters();
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
    if (this.ended) this.releaseWaiters();
  }

  private releaseWaiters(): void {
    for (let i = this.belowWaiters.length - 1; i >= 0; i--) {
      const w = this.belowWaiters[i]!;
      if (this.bytes < w.limit || this.ended) {
        this.belowWaiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    if (this.iterated) throw new Error('a ByteQueue is consumed once');
    this.iterated = true;
    try {
      for (;;) {
        const chunk = this.chunks.shift();
        if (chunk) {
          this.bytes -= chunk.length;
          this.releaseWaiters();
          this.onConsumed?.(chunk.length);
          yield chunk;
          continue;
        }
        if (this.failure) throw this.failure;
        if (this.ended) return;
        await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
      }
    } finally {
      // The consumer stopped early: drop what is left so the producer is not held back.
      this.ended = true;
      this.discard();
    }
  }
}
