/**
 * CallLog: what the in-memory runtime and image service (runtime/memory.ts, images/memory.ts) offer unit tests: a
 * record of every call and errors injected for the next calls of a method. Recording is chosen at construction; off
 * (hollow sites run hundreds of agents per process for days), nothing is kept, and with no error queued a call costs
 * one map lookup.
 */
export interface Call<M extends string> {
  method: M;
  args: unknown[];
}

export class CallLog<M extends string> {
  /** Every call so far, oldest first (empty when not recording); tests may clear it. */
  readonly calls: Call<M>[] = [];
  private readonly errors = new Map<M, Error[]>();

  constructor(private readonly recording: boolean) {}

  /** The next call of `method` throws `err` (queue several for several calls). */
  failNext(method: M, err: Error): void {
    const queue = this.errors.get(method);
    if (queue) queue.push(err);
    else this.errors.set(method, [err]);
  }

  /** Notes a call (when recording) and throws the error queued for its method, if any. */
  enter(method: M, ...args: unknown[]): void {
    if (this.recording) this.calls.push({ method, args });
    const queue = this.errors.get(method);
    if (!queue) return;
    const err = queue.shift()!;
    if (queue.length === 0) this.errors.delete(method);
    throw err;
  }
}
