/**
 * The server side of one SPDY/3.1 connection (after the HTTP Upgrade), as Kubernetes' httpstream/spdy uses it:
 * the client opens every stream (odd ids) with SYN_STREAM and the headers that say what the stream is for; the
 * server accepts a stream with SYN_REPLY or refuses it with RST_STREAM, then both sides send DATA and half-close
 * with FIN.
 *
 * Flow control. Inbound: we advertise our stream window in SETTINGS and widen the connection window at once, read
 * frames one at a time and stop reading the socket while a stream holds a window's worth of unconsumed bytes (so a
 * slow consumer pushes back through TCP), and send WINDOW_UPDATEs as bytes are consumed. Outbound: once the peer
 * shows it does flow control (a WINDOW_UPDATE, or SETTINGS with INITIAL_WINDOW_SIZE), DATA never exceeds its stream
 * and connection windows. moby/spdystream, the peer in every Kubernetes component, ignores WINDOW_UPDATE and SETTINGS
 * and never sends either (connection.go, v0.5.1): holding it to the 64 KiB default window would stall every stream
 * after 64 KiB, so toward such a peer the only limit is TCP backpressure (socket drain), as between kubelet and
 * apiserver.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { spdy } from '@edgefarm/streaming';
import { drained } from '../drain.js';
import { SpdyStream, SpdyStreamClosedError, type StreamOwner } from './stream.js';

export { SpdyStream, SpdyStreamClosedError };

/** Largest DATA frame written. */
const MAX_WRITE_FRAME = 32 * 1024;

export interface SpdyConnectionOptions {
  log: Logger;
  /** A new stream from the client: the handler calls reply() or reset() on it. */
  onStream(stream: SpdyStream): void;
  /** Our receive window per stream (default 256 KiB). */
  windowSize?: number;
  /** Concurrent streams; more are refused with REFUSED_STREAM (default 128). */
  maxStreams?: number;
  limits?: Partial<spdy.FrameReaderLimits>;
  /** Largest uncompressed header block (default 64 KiB). */
  maxHeaderBytes?: number;
}

export class SpdyConnection implements StreamOwner {
  private readonly reader: spdy.FrameReader;
  private readonly codec: spdy.HeaderCodec;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly log: Logger;
  private readonly windowSize: number;
  private readonly maxStreams: number;
  private lastStreamId = 0;
  /** Whether the peer does SPDY flow control (it sent a WINDOW_UPDATE or an initial window). */
  private peerFlowControl = false;
  private peerInitialWindow = spdy.DEFAULT_WINDOW;
  private connSendWindow = spdy.DEFAULT_WINDOW;
  private connUnacked = 0;
  private goingAway = false;
  private ended = false;
  /** Serializes header-block frames: compression order must equal write order. */
  private headerChain: Promise<void> = Promise.resolve();
  readonly done: Promise<void>;

  constructor(
    private readonly socket: Duplex,
    private readonly opts: SpdyConnectionOptions,
    head?: Buffer,
  ) {
    this.log = opts.log;
    this.windowSize = Math.min(opts.windowSize ?? 256 * 1024, spdy.MAX_WINDOW);
    this.maxStreams = opts.maxStreams ?? 128;
    this.reader = new spdy.FrameReader(opts.limits);
    this.codec = new spdy.HeaderCodec(opts.maxHeaderBytes);
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'SPDY socket error'));
    this.raw(spdy.encode.settings([{ id: spdy.SETTINGS_INITIAL_WINDOW_SIZE, value: this.windowSize }]));
    if (this.windowSize > spdy.DEFAULT_WINDOW) this.raw(spdy.encode.windowUpdate(0, this.windowSize - spdy.DEFAULT_WINDOW));
    this.done = this.readLoop(head);
  }

  /** Open streams (for tests and metrics). */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Ends the connection: GOAWAY, then the socket is closed; every stream ends. */
  close(status: number = spdy.GoAwayStatus.Ok): void {
    if (this.ended) return;
    if (!this.goingAway) {
      this.goingAway = true;
      this.raw(spdy.encode.goAway(this.lastStreamId, status));
    }
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const s of this.streams.values()) {
      s.resetDone = true;
      s.data.end();
      s.data.discard();
      s.settleClosed();
    }
    this.streams.clear();
    this.codec.close();
    this.socket.end();
    // A peer that never reads must not hold the socket open.
    const timer = setTimeout(() => this.socket.destroy(), 5_000);
    this.socket.once('close', () => clearTimeout(timer));
    if (this.socket.destroyed) clearTimeout(timer);
  }

  private async readLoop(head?: Buffer): Promise<void> {
    try {
      if (head?.length) await this.feed(head);
      // destroyOnReturn false: on a protocol error the GOAWAY must still go out before the socket closes.
      for await (const chunk of this.socket.iterator({ destroyOnReturn: false })) {
        if (this.ended) break;
        await this.feed(chunk as Buffer);
      }
    } catch (err) {
      if (spdy.isSpdyProtocolError(err)) {
        this.log.info({ err: err.message }, 'SPDY protocol error; closing the connection');
        this.close(spdy.GoAwayStatus.ProtocolError);
      } else if (!this.ended) {
        this.log.debug({ err: (err as Error).message }, 'SPDY connection read failed');
      }
    } finally {
      this.finish();
    }
  }

  private async feed(chunk: Buffer): Promise<void> {
    this.reader.push(chunk);
    for (let f = this.reader.next(); f; f = this.reader.next()) {
      await this.handle(f);
      if (this.ended) return;
    }
  }

  private async handle(f: spdy.Frame): Promise<void> {
    switch (f.type) {
      case 'syn_stream':
        return this.onSynStream(f.streamId, f.block, f.fin);
      case 'data':
        return this.onData(f.streamId, f.data, f.fin);
      case 'headers':
        // Decoded to keep the zlib context in step; trailing headers carry nothing Kubernetes uses.
        await this.codec.decode(f.block);
        if (f.fin) this.remoteFinished(this.streams.get(f.streamId));
        return;
      case 'syn_reply':
        await this.codec.decode(f.block);
        throw new spdy.SpdyProtocolError(`SYN_REPLY for stream ${f.streamId}: this server opens no streams`);
      case 'rst_stream': {
        const s = this.streams.get(f.streamId);
        if (s) this.resetStream(s, f.status, false);
        return;
      }
      case 'settings':
        for (const e of f.entries) {
          if (e.id !== spdy.SETTINGS_INITIAL_WINDOW_SIZE) continue;
          if (e.value > spdy.MAX_WINDOW) throw new spdy.SpdyProtocolError(`initial window of ${e.value}`);
          this.peerFlowControl = true;
          const delta = e.value - this.peerInitialWindow;
          this.peerInitialWindow = e.value;
          for (const s of this.streams.values()) {
            s.sendWindow += delta;
            s.windowChanged();
          }
        }
        return;
      case 'ping':
        // Pings from the client have odd ids and are echoed; even ids would be answers to ours (we send none).
        if (f.id % 2 === 1) this.raw(spdy.encode.ping(f.id));
        return;
      case 'goaway':
        this.goingAway = true;
        if (this.streams.size === 0) this.finish();
        return;
      case 'window_update':
        return this.onWindowUpdate(f.streamId, f.delta);
      case 'unknown':
        return;
    }
  }

  private async onSynStream(id: number, block: Buffer, fin: boolean): Promise<void> {
    const headers = await this.codec.decode(block);
    if (id === 0 || id % 2 === 0 || id <= this.lastStreamId) {
      throw new spdy.SpdyProtocolError(
        `SYN_STREAM with stream id ${id} (client streams are odd and increasing; last was ${this.lastStreamId})`,
      );
    }
    this.lastStreamId = id;
    if (this.goingAway || this.streams.size >= this.maxStreams) {
      this.raw(spdy.encode.rstStream(id, spdy.RstStatus.RefusedStream));
      return;
    }
    const s = new SpdyStream(id, headers, this, this.peerInitialWindow);
    this.streams.set(id, s);
    if (fin) this.remoteFinished(s);
    this.opts.onStream(s);
  }

  private async onData(id: number, data: Buffer, fin: boolean): Promise<void> {
    const s = this.streams.get(id);
    if (!s || s.remoteFin) {
      // Data for a stream we reset or never had: tell the peer once per frame, keep the connection.
      if (id > this.lastStreamId || !s) this.raw(spdy.encode.rstStream(id, spdy.RstStatus.InvalidStream));
      else this.raw(spdy.encode.rstStream(id, spdy.RstStatus.StreamAlreadyClosed));
      this.connConsumed(data.length);
      return;
    }
    s.data.push(data);
    if (fin) this.remoteFinished(s);
    // Backpressure: stop reading the socket while this stream holds a window's worth of unread bytes.
    if (s.data.bytes >= this.windowSize) await s.data.below(this.windowSize / 2);
  }

  private onWindowUpdate(id: number, delta: number): void {
    this.peerFlowControl = true;
    if (id === 0) {
      this.connSendWindow = Math.min(this.connSendWindow + delta, spdy.MAX_WINDOW);
      for (const s of this.streams.values()) s.windowChanged();
      return;
    }
    const s = this.streams.get(id);
    if (!s) return;
    if (s.sendWindow + delta > spdy.MAX_WINDOW) {
      this.resetStream(s, spdy.RstStatus.FlowControlError, true);
      return;
    }
    s.sendWindow += delta;
    s.windowChanged();
  }

  private remoteFinished(s: SpdyStream | undefined): void {
    if (!s || s.remoteFin) return;
    s.remoteFin = true;
    s.data.end();
    this.maybeRemove(s);
  }

  private maybeRemove(s: SpdyStream): void {
    if (!s.isClosed) return;
    this.streams.delete(s.id);
    s.settleClosed();
    if (this.goingAway && this.streams.size === 0) this.finish();
  }

  /** @internal */
  resetStream(s: SpdyStream, status: number, send: boolean): void {
    if (s.resetDone) return;
    s.resetDone = true;
    if (send && !this.ended) this.raw(spdy.encode.rstStream(s.id, status));
    s.data.end();
    s.data.discard();
    this.maybeRemove(s);
  }

  /** @internal The consumer read n bytes of a stream: reopen the window. */
  consumed(s: SpdyStream, n: number): void {
    this.connConsumed(n);
    if (s.remoteFin || s.resetDone) return;
    s.unacked += n;
    if (s.unacked >= this.windowSize / 2) {
      this.raw(spdy.encode.windowUpdate(s.id, s.unacked));
      s.unacked = 0;
    }
  }

  private connConsumed(n: number): void {
    this.connUnacked += n;
    if (this.connUnacked >= this.windowSize / 2) {
      this.raw(spdy.encode.windowUpdate(0, this.connUnacked));
      this.connUnacked = 0;
    }
  }

  /** @internal */
  sendReply(s: SpdyStream, headers: spdy.SpdyHeaders): Promise<void> {
    return this.headerFrame(async () => spdy.encode.synReply(s.id, await this.codec.encode(headers), false));
  }

  private headerFrame(build: () => Promise<Buffer>): Promise<void> {
    const next = this.headerChain.then(async () => {
      if (this.ended) throw new SpdyStreamClosedError('connection closed');
      this.raw(await build());
    });
    this.headerChain = next.catch(() => undefined);
    return next;
  }

  /** @internal */
  async writeData(s: SpdyStream, buf: Buffer, fin: boolean): Promise<void> {
    let off = 0;
    do {
      if (s.resetDone || this.ended) throw new SpdyStreamClosedError(`stream ${s.id} is closed`);
      if (s.localFin) throw new SpdyStreamClosedError(`stream ${s.id} was already half-closed`);
      let n = Math.min(buf.length - off, MAX_WRITE_FRAME);
      if (this.peerFlowControl && n > 0) {
        const window = Math.min(s.sendWindow, this.connSendWindow);
        if (window <= 0) {
          await s.waitForWindow();
          continue;
        }
        n = Math.min(n, window);
        s.sendWindow -= n;
        this.connSendWindow -= n;
      }
      const last = off + n >= buf.length;
      if (fin && last) s.localFin = true;
      const ok = this.raw(spdy.encode.data(s.id, buf.subarray(off, off + n), fin && last));
      off += n;
      if (!ok) await this.drain();
    } while (off < buf.length);
    if (fin) this.maybeRemove(s);
  }

  private async drain(): Promise<void> {
    if (this.ended || !(await drained(this.socket))) throw new SpdyStreamClosedError('connection closed');
  }

  /** Writes a frame; false when the socket wants a drain. */
  private raw(frame: Buffer): boolean {
    if (this.socket.destroyed || this.socket.writableEnded) return true;
    return this.socket.write(frame);
  }
}
