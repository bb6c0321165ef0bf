/**
 * A minimal SPDY/3.1 client: what the Kubernetes streaming protocols (remotecommand v4, portforward.k8s.io) need from
 * it toward containerd's CRI streaming server (k8s.io/kubelet/pkg/cri/streaming, moby/spdystream on the server):
 * HTTP/1.1 Upgrade, client-initiated streams (odd ids; SYN_STREAM with a zlib-compressed name/value block, then the
 * server's SYN_REPLY), data in both directions, half-close with FIN, RST_STREAM, PING echo and GOAWAY. Frames and
 * header blocks are proto's `spdy` (shared with the provider's SPDY server); this file is the client's connection.
 *
 * A stream is handed out only after its SYN_REPLY: spdystream drops data that arrives before it replied.
 * spdystream does no SPDY flow control (it ignores WINDOW_UPDATE), so neither do we: backpressure is TCP's, because
 * the reader below stops reading the socket while a stream's consumer lags ({@link SpdyStream.data} holds at most
 * `highWater` bytes).
 *
 * Why SPDY and not WebSocket: containerd 1.6's streaming server speaks WebSocket only in the v4 channel protocols,
 * which cannot half-close stdin (v5.channel.k8s.io added that in Kubernetes 1.29), so `cat`, `tar` (kubectl cp) and
 * every other stdin reader would never see EOF. SPDY half-closes a stream with FIN.
 */
import type { Socket } from 'node:net';
import { ChunkQueue, spdy } from '@edgefarm/streaming';
import { http } from '../util/node-http.js';

/** Largest DATA frame the protocol carries (24-bit length); both directions. */
const MAX_DATA_FRAME = 0xff_ffff;

export class SpdyError extends Error {
  override name = 'SpdyError';
}
export function isSpdyError(err: unknown): err is SpdyError {
  return err instanceof SpdyError;
}

export class SpdyStream {
  /** Data from the server, in order; ends at its FIN, a reset, or the connection's end. */
  readonly data: ChunkQueue;
  private replied: (() => void) | undefined;
  private rejected: ((err: Error) => void) | undefined;
  readonly reply: Promise<void>;
  private closedLocal = false;
  /** The server half-closed the stream (FIN), as opposed to the connection going away under it. */
  finReceived = false;

  constructor(
    readonly id: number,
    private readonly conn: SpdyConnection,
    onTaken: () => void,
  ) {
    this.data = new ChunkQueue(onTaken);
    this.reply = new Promise((resolve, reject) => {
      this.replied = resolve;
      this.rejected = reject;
    });
    this.reply.catch(() => undefined);
  }

  /** Sends data (resolves when the socket took it, i.e. after 'drain' when it was full). */
  write(data: Uint8Array): Promise<void> {
    if (this.closedLocal) return Promise.resolve();
    return this.conn.writeData(this.id, data, false);
  }

  /** Half-closes our side (FIN): the server reads EOF. */
  async end(): Promise<void> {
    if (this.closedLocal) return;
    this.closedLocal = true;
    await this.conn.writeData(this.id, new Uint8Array(0), true);
  }

  /** @internal */
  onReply(): void {
    this.replied?.();
  }
  /** @internal The server half-closed the stream. */
  onFin(): void {
    this.finReceived = true;
    this.data.end();
  }
  /** @internal */
  onReset(err: Error): void {
    this.rejected?.(err);
    this.data.end();
  }
}

export class SpdyConnection {
  private nextId = 1;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly reader = new spdy.FrameReader({ maxDataFrame: MAX_DATA_FRAME });
  private readonly codec = new spdy.HeaderCodec();
  /** Serializes SYN_STREAMs: header-block compression order must equal write order. */
  private headerChain: Promise<unknown> = Promise.resolve();
  private ended = false;
  readonly closed: Promise<void>;
  private resumeReader: (() => void) | undefined;
  /** The server said GOAWAY (an orderly end), as opposed to the socket closing or resetting. */
  goAwayReceived = false;

  private constructor(
    private readonly socket: Socket,
    head: Buffer,
    private readonly highWater: number,
  ) {
    this.closed = this.read(head).finally(() => this.close());
  }

  /** Upgrades `url` (http://, as the CRI streaming server hands it out) to SPDY/3.1 with a subprotocol. */
  static connect(url: string, protocol: string, options: { timeoutMs?: number; highWater?: number } = {}): Promise<SpdyConnection> {
    return new Promise((resolve, reject) => {
      const req = http.request(url, {
        method: 'POST',
        headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': protocol, 'Content-Length': '0' },
        timeout: options.timeoutMs ?? 5000,
      });
      req.on('upgrade', (res, socket, head) => {
        const chosen = res.headers['x-stream-protocol-version'];
        if (chosen !== protocol) {
          socket.destroy();
          return reject(new SpdyError(`streaming server chose protocol "${String(chosen)}", want ${protocol}`));
        }
        // the upgrade's timeout must not outlive it: an interactive session may be idle for long
        socket.setTimeout(0);
        req.removeAllListeners('timeout');
        socket.setNoDelay(true);
        resolve(new SpdyConnection(socket, head, options.highWater ?? 256 * 1024));
      });
      req.on('response', (res) => {
        const body: Buffer[] = [];
        res.on('data', (c: Buffer) => body.push(c));
        res.on('end', () =>
          reject(new SpdyError(`streaming server answered ${res.statusCode}: ${Buffer.concat(body).toString('utf8').trim()}`)),
        );
      });
      req.on('timeout', () => req.destroy(new SpdyError('streaming server did not answer the upgrade in time')));
      req.on('error', reject);
      req.end();
    });
  }

  /** Opens a stream with the given headers and waits for the server's SYN_REPLY. */
  async openStream(headers: Record<string, string>): Promise<SpdyStream> {
    const id = this.nextId;
    this.nextId += 2;
    const stream = new SpdyStream(id, this, () => this.resumeReader?.());
    this.streams.set(id, stream);
    const sent = this.headerChain.then(async () => {
      if (this.ended) throw new SpdyError('connection closed before the stream was opened');
      void this.write(spdy.encode.synStream(id, await this.codec.encode(spdy.headersOf(headers)), false));
    });
    this.headerChain = sent.catch(() => undefined);
    const gone = this.closed.then(() => Promise.reject(new SpdyError('connection closed before the stream was accepted')));
    await Promise.race([sent.then(() => stream.reply), gone]);
    return stream;
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.destroy();
    this.codec.close();
    for (const s of this.streams.values()) s.data.end();
    this.resumeReader?.();
  }

  /** @internal */
  writeData(id: number, data: Uint8Array, fin: boolean): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    const writes: Promise<void>[] = [];
    let off = 0;
    do {
      const n = Math.min(MAX_DATA_FRAME, data.length - off);
      writes.push(this.write(spdy.encode.data(id, data.subarray(off, off + n), fin && off + n === data.length)));
      off += n;
    } while (off < data.length);
    return Promise.all(writes).then(() => undefined);
  }

  private write(buf: Buffer): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    if (this.socket.write(buf)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  private async read(head: Buffer): Promise<void> {
    try {
      this.reader.push(head);
      await this.drainFrames();
      for await (const chunk of this.socket) {
        this.reader.push(chunk as Buffer);
        await this.drainFrames();
      }
    } catch {
      // socket error or reset, or the server broke the framing (SpdyProtocolError): the connection is over
    }
  }

  private async drainFrames(): Promise<void> {
    for (let f = this.reader.next(); f && !this.ended; f = this.reader.next()) await this.handle(f);
  }

  private async handle(f: spdy.Frame): Promise<void> {
    switch (f.type) {
      case 'data': {
        const stream = this.streams.get(f.streamId);
        if (!stream) return;
        if (f.data.length > 0) {
          stream.data.push(f.data);
          if (stream.data.bytes > this.highWater) {
            // stop reading the socket until the consumer caught up (TCP backpressure toward the server)
            await new Promise<void>((resolve) => {
              this.resumeReader = resolve;
              void stream.data.below(this.highWater / 2).then(resolve);
            });
            this.resumeReader = undefined;
          }
        }
        if (f.fin) stream.onFin();
        return;
      }
      case 'syn_reply':
      case 'headers': {
        // decoded to keep the inflate context in step; the streaming protocols put nothing in these headers
        await this.codec.decode(f.block);
        const s = this.streams.get(f.streamId);
        if (f.type === 'syn_reply') s?.onReply();
        if (s && f.fin) s.onFin();
        return;
      }
      case 'rst_stream':
        this.streams.get(f.streamId)?.onReset(new SpdyError(`stream ${f.streamId} reset by the server (status ${f.status})`));
        return;
      case 'ping':
        // the server's pings have even ids (spdystream echoes a ping only when its parity is not its own)
        if (f.id % 2 === 0) void this.write(spdy.encode.ping(f.id));
        return;
      case 'goaway':
        this.goAwayReceived = true;
        return this.close();
      case 'syn_stream':
        // the streaming protocols never open server streams: refuse
        await this.codec.decode(f.block);
        void this.write(spdy.encode.rstStream(f.streamId, spdy.RstStatus.Cancel));
        return;
      case 'settings':
      case 'window_update':
      case 'unknown':
        return; // no SPDY flow control toward spdystream (see above)
    }
  }
}
