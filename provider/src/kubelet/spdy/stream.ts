/**
 * One SPDY stream as the server sees it; the frames it needs sent go through its connection ({@link StreamOwner}).
 */
import { ChunkQueue, spdy } from '@edgefarm/streaming';

/** What a stream asks of its connection (SpdyConnection implements it). */
export interface StreamOwner {
  consumed(s: SpdyStream, n: number): void;
  sendReply(s: SpdyStream, headers: spdy.SpdyHeaders): Promise<void>;
  writeData(s: SpdyStream, buf: Buffer, fin: boolean): Promise<void>;
  resetStream(s: SpdyStream, status: number, send: boolean): void;
}

/** The stream was reset or its connection is gone. */
export class SpdyStreamClosedError extends Error {
  override name = 'SpdyStreamClosedError';
}

/** One SPDY stream, seen from the server. */
export class SpdyStream {
  /** Bytes the client sent on the stream; ends at the client's FIN, or early (what was not read dropped) on a reset. */
  readonly data: ChunkQueue;
  localFin = false;
  remoteFin = false;
  resetDone = false;
  sendWindow: number;
  /** Bytes consumed and not yet announced in a WINDOW_UPDATE. */
  unacked = 0;
  private windowWaiters: (() => void)[] = [];
  /** Set once reply() was called: frames of the stream go out only after its SYN_REPLY. */
  private replied?: Promise<void>;
  private readonly closedSignal: { resolve: () => void; promise: Promise<void> };

  constructor(
    readonly id: number,
    readonly headers: spdy.SpdyHeaders,
    private readonly conn: StreamOwner,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.data = new ChunkQueue((n) => conn.consumed(this, n));
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.closedSignal = { resolve, promise };
  }

  /** Settles when both sides have sent FIN, or the stream was reset, or the connection ended. */
  get closed(): Promise<void> {
    return this.closedSignal.promise;
  }

  get isClosed(): boolean {
    return this.resetDone || (this.localFin && this.remoteFin);
  }

  /** Accepts the stream (SYN_REPLY). Idempotent. */
  reply(headers: spdy.SpdyHeaders = new Map()): Promise<void> {
    this.replied ??= this.conn.sendReply(this, headers);
    return this.replied;
  }

  /** Writes bytes; resolves when they are handed to the socket (waiting for window and socket drain). */
  async write(chunk: Uint8Array): Promise<void> {
    await this.replied;
    await this.conn.writeData(this, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength), false);
  }

  /** Half-closes (FIN). Idempotent. */
  async end(): Promise<void> {
    await this.replied;
    if (this.localFin || this.resetDone) return;
    await this.conn.writeData(this, Buffer.alloc(0), true);
  }

  /** Aborts the stream (RST_STREAM) with a status of {@link spdy.RstStatus}, after its SYN_REPLY if one is on its way. */
  reset(status: number = spdy.RstStatus.Cancel): void {
    if (!this.replied) return this.conn.resetStream(this, status, true);
    void this.replied.catch(() => undefined).then(() => this.conn.resetStream(this, status, true));
  }

  /** @internal */
  windowChanged(): void {
    const w = this.windowWaiters;
    this.windowWaiters = [];
    for (const f of w) f();
  }

  /** @internal */
  waitForWindow(): Promise<void> {
    return new Promise((r) => this.windowWaiters.push(r));
  }

  /** @internal */
  settleClosed(): void {
    this.windowChanged();
    this.closedSignal.resolve();
  }
}
