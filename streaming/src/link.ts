/**
 * StreamLink: one end of an interactive session (exec, attach, logs, port-forward) over session frames (frames.ts).
 * Both the provider and the agent use it; it knows nothing of NATS: frames go out through `send` and come in through
 * {@link StreamLink.receive}.
 *
 * Flow control (credit based, per direction): each side announces its receive window when the session opens. A
 * sender may have at most that many data bytes unacknowledged; {@link StreamLink.write} waits until the peer grants
 * CREDIT. The receiver grants credit as its consumer takes chunks from the channel iterables (not on arrival), so
 * a consumer that stops reading stops the producer at the other end after one window. Bytes buffered here are
 * therefore bounded by the window ({@link LinkStats.maxBufferedBytes} proves it); a peer that sends beyond its
 * credit is a protocol error.
 *
 * Liveness: a PING goes out when nothing else was sent for `keepaliveMs`; a peer from which nothing arrived for
 * `deadAfterMs` ends the session with an error. END (either side) ends it with a result; nothing follows an END.
 */
import { decodeFrame, encodeFrame, isFrameError, type ChannelId, type Frame } from '@edgefarm/proto';
import { ChunkQueue } from './queue.js';

export interface LinkOptions {
  /** Sends one encoded frame to the peer (fire and forget; core NATS publish). */
  send(frame: Uint8Array): void;
  /** Our receive window: the peer's initial credit. */
  recvWindow: number;
  /** The peer's receive window: our initial credit. */
  sendWindow: number;
  /** Channels this side reads (their iterables exist from the start). */
  inputs: readonly ChannelId[];
  /** Largest data frame body sent (default 32 KiB). */
  maxChunk?: number;
  keepaliveMs?: number;
  deadAfterMs?: number;
  /** Who the peer is, for error messages ("edge node edge-1"). */
  peer: string;
  now?: () => number;
}

export interface LinkResult {
  exitCode: number;
  error?: string;
}

export interface LinkStats {
  bytesIn: number;
  bytesOut: number;
  /** Received data bytes not yet taken by a consumer, now and at most. */
  bufferedBytes: number;
  maxBufferedBytes: number;
  /** Times a write waited for credit (the peer's consumer or the path was the bottleneck). */
  creditWaits: number;
}

export const DEFAULT_WINDOW = 1024 * 1024;
export const DEFAULT_MAX_CHUNK = 32 * 1024;
export const DEFAULT_KEEPALIVE_MS = 1000;
export const DEFAULT_DEAD_AFTER_MS = 5000;

export class StreamLink {
  readonly done: Promise<LinkResult>;
  /** Called with a RESIZE frame from the peer. */
  onResize: ((width: number, height: number) => void) | undefined;
  private resolveDone!: (r: LinkResult) => void;
  private finished: LinkResult | undefined;
  private readonly inputs = new Map<ChannelId, ChunkQueue>();
  private credit: number;
  private creditWaiters: (() => void)[] = [];
  private consumedSinceGrant = 0;
  private lastSent: number;
  private lastReceived: number;
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly now: () => number;
  private readonly maxChunk: number;
  readonly stats: LinkStats = { bytesIn: 0, bytesOut: 0, bufferedBytes: 0, maxBufferedBytes: 0, creditWaits: 0 };

  constructor(private readonly options: LinkOptions) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.now = options.now ?? Date.now;
    this.credit = options.sendWindow;
    this.maxChunk = Math.max(1, Math.min(options.maxChunk ?? DEFAULT_MAX_CHUNK, Math.floor(options.sendWindow / 4) || 1));
    this.lastSent = this.lastReceived = this.now();
    for (const ch of options.inputs) this.inputs.set(ch, new ChunkQueue((n) => this.taken(n)));
  }

  /** Starts the keepalive timer (call once the peer knows the session). */
  start(): this {
    const keepaliveMs = this.options.keepaliveMs ?? DEFAULT_KEEPALIVE_MS;
    const deadAfterMs = this.options.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS;
    this.timer = setInterval(() => this.tick(keepaliveMs, deadAfterMs), Math.min(keepaliveMs, deadAfterMs / 2));
    return this;
  }

  get ended(): boolean {
    return this.finished !== undefined;
  }

  /** The data received on a channel, in order; ends at the peer's EOF or the session's end. */
  input(channel: ChannelId): AsyncIterable<Uint8Array> {
    const q = this.inputs.get(channel);
    if (!q) throw new Error(`channel ${channel} is not an input of this session`);
    return q;
  }

  /** Sends data, waiting for credit; resolves (dropping the rest) if the session ends meanwhile. */
  async write(channel: ChannelId, data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length && !this.finished) {
      if (this.credit <= 0) {
        this.stats.creditWaits++;
        await new Promise<void>((resolve) => this.creditWaiters.push(resolve));
        continue;
      }
      const n = Math.min(this.credit, this.maxChunk, data.length - off);
      this.credit -= n;
      this.stats.bytesOut += n;
      this.sendFrame({ kind: 'data', channel, data: data.subarray(off, off + n) });
      off += n;
    }
  }

  eof(channel: ChannelId): void {
    if (!this.finished) this.sendFrame({ kind: 'eof', channel });
  }

  resize(width: number, height: number): void {
    if (!this.finished) this.sendFrame({ kind: 'resize', width, height });
  }

  /** Ends the session from this side: sends END with the result, then finishes. */
  end(result: LinkResult): void {
    if (this.finished) return;
    this.sendFrame({ kind: 'end', ...result });
    this.finish(result);
  }

  /** Handles one frame from the peer. */
  receive(raw: Uint8Array): void {
    if (this.finished) return;
    this.lastReceived = this.now();
    let f: Frame;
    try {
      f = decodeFrame(raw);
    } catch (err) {
      if (!isFrameError(err)) throw err;
      return this.end({ exitCode: 1, error: `protocol error from ${this.options.peer}: ${err.message}` });
    }
    switch (f.kind) {
      case 'data': {
        const q = this.inputs.get(f.channel);
        if (!q) return this.end({ exitCode: 1, error: `protocol error from ${this.options.peer}: data on channel ${f.channel}` });
        this.stats.bytesIn += f.data.length;
        this.stats.bufferedBytes += f.data.length;
        if (this.stats.bufferedBytes > this.options.recvWindow) {
          return this.end({ exitCode: 1, error: `protocol error from ${this.options.peer}: sent beyond its credit` });
        }
        this.stats.maxBufferedBytes = Math.max(this.stats.maxBufferedBytes, this.stats.bufferedBytes);
        // the frame's buffer belongs to the transport: keep a copy only as long as it is queued
        q.push(f.data.slice());
        return;
      }
      case 'eof':
        return this.inputs.get(f.channel)?.end();
      case 'credit':
        this.credit += f.bytes;
        for (const w of this.creditWaiters.splice(0)) w();
        return;
      case 'resize':
        return this.onResize?.(f.width, f.height);
      case 'ping':
        return;
      case 'end':
        return this.finish({ exitCode: f.exitCode, ...(f.error ? { error: f.error } : {}) });
    }
  }

  /** Ends the session without telling the peer (it is gone). */
  fail(error: string): void {
    this.finish({ exitCode: 1, error });
  }

  private taken(n: number): void {
    this.stats.bufferedBytes -= n;
    this.consumedSinceGrant += n;
    if (!this.finished && this.consumedSinceGrant >= Math.max(1, Math.floor(this.options.recvWindow / 4))) {
      this.sendFrame({ kind: 'credit', bytes: this.consumedSinceGrant });
      this.consumedSinceGrant = 0;
    }
  }

  private tick(keepaliveMs: number, deadAfterMs: number): void {
    const now = this.now();
    if (now - this.lastReceived > deadAfterMs) {
      return this.fail(`${this.options.peer} went silent: nothing received for ${Math.round((now - this.lastReceived) / 1000)} s`);
    }
    if (now - this.lastSent >= keepaliveMs) this.sendFrame({ kind: 'ping' });
  }

  private sendFrame(f: Frame): void {
    this.lastSent = this.now();
    try {
      this.options.send(encodeFrame(f));
    } catch (err) {
      // the connection is closed or draining: the session cannot continue
      if (f.kind !== 'end') this.fail(`cannot send to ${this.options.peer}: ${(err as Error).message}`);
    }
  }

  private finish(result: LinkResult): void {
    if (this.finished) return;
    this.finished = result;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const q of this.inputs.values()) q.end();
    for (const w of this.creditWaiters.splice(0)) w();
    this.resolveDone(result);
  }
}
