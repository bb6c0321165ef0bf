/**
 * A minimal SPDY/3.1 client: what the Kubernetes streaming protocols (remotecommand v4, portforward.k8s.io) need from
 * it toward containerd's CRI streaming server (k8s.io/kubelet/pkg/cri/streaming, moby/spdystream on the server):
 * HTTP/1.1 Upgrade, client-initiated streams (SYN_STREAM with a zlib-compressed name/value block, SYN_REPLY), data
 * in both directions, half-close with FIN, RST_STREAM, PING echo and GOAWAY. spdystream does no SPDY flow control
 * (it ignores WINDOW_UPDATE), so neither do we: backpressure is TCP's, because the reader below stops reading the
 * socket while a stream's consumer lags ({@link SpdyStream.data} holds at most `highWater` bytes).
 *
 * Why SPDY and not WebSocket: containerd 1.6's streaming server speaks WebSocket only in the v4 channel protocols,
 * which cannot half-close stdin (v5.channel.k8s.io added that in Kubernetes 1.29), so `cat`, `tar` (kubectl cp) and
 * every other stdin reader would never see EOF. SPDY half-closes a stream with FIN.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import zlib from 'node:zlib';
import { ChunkQueue } from '@edgefarm/proto';
import { SPDY3_DICTIONARY } from '@edgefarm/proto';

const VERSION = 3;
const TYPE = { synStream: 1, synReply: 2, rstStream: 3, settings: 4, ping: 6, goAway: 7, headers: 8, windowUpdate: 9 } as const;
const FLAG_FIN = 0x01;
/** RST_STREAM status CANCEL. */
const RST_CANCEL = 5;
const MAX_FRAME = 0xffffff;

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
    return this.conn.writeData(this.id, data, 0);
  }

  /** Half-closes our side (FIN): the server reads EOF. */
  async end(): Promise<void> {
    if (this.closedLocal) return;
    this.closedLocal = true;
    await this.conn.writeData(this.id, new Uint8Array(0), FLAG_FIN);
  }

  /** @internal */
  onReply(): void {
    this.replied?.();
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
  private readonly deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });
  private compressed: Buffer[] = [];
  private headerChain: Promise<unknown> = Promise.resolve();
  readonly closed: Promise<void>;
  private resumeReader: (() => void) | undefined;
  /** The server said GOAWAY (an orderly end), as opposed to the socket closing or resetting. */
  goAwayReceived = false;

  private constructor(
    private readonly socket: Socket,
    head: Buffer,
    private readonly highWater: number,
  ) {
    this.deflate.on('data', (c: Buffer) => this.compressed.push(c));
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
        res.on('end', () => reject(new SpdyError(`streaming server answered ${res.statusCode}: ${Buffer.concat(body).toString('utf8').trim()}`)));
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
    const block = await this.compress(headers);
    const body = Buffer.alloc(10 + block.length);
    body.writeUInt32BE(id, 0);
    body.writeUInt32BE(0, 4); // associated stream
    body.writeUInt8(0, 8); // priority 0
    body.writeUInt8(0, 9); // slot
    block.copy(body, 10);
    this.writeControl(TYPE.synStream, 0, body);
    await Promise.race([stream.reply, this.closed.then(() => Promise.reject(new SpdyError('connection closed before the stream was accepted')))]);
    return stream;
  }

  close(): void {
    this.socket.destroy();
    this.deflate.close();
    for (const s of this.streams.values()) s.data.end();
    this.resumeReader?.();
  }

  /** @internal */
  writeData(id: number, data: Uint8Array, flags: number): Promise<void> {
    if (this.socket.destroyed) return Promise.resolve();
    const writes: Promise<void>[] = [];
    let off = 0;
    do {
      const n = Math.min(MAX_FRAME, data.length - off);
      const header = Buffer.alloc(8);
      header.writeUInt32BE(id & 0x7fffffff, 0);
      header.writeUInt32BE(((off + n === data.length ? flags : 0) << 24) | n, 4);
      writes.push(this.write(Buffer.concat([header, data.subarray(off, off + n)])));
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

  private writeControl(type: number, flags: number, body: Buffer): void {
    const header = Buffer.alloc(8);
    header.writeUInt16BE(0x8000 | VERSION, 0);
    header.writeUInt16BE(type, 2);
    header.writeUInt32BE((flags << 24) | body.length, 4);
    void this.write(Buffer.concat([header, body]));
  }

  /** One name/value block through the connection's shared zlib context (SYNC_FLUSH per block). */
  private compress(headers: Record<string, string>): Promise<Buffer> {
    const entries = Object.entries(headers);
    const parts: Buffer[] = [u32(entries.length)];
    for (const [k, v] of entries) {
      const name = Buffer.from(k.toLowerCase(), 'utf8');
      const value = Buffer.from(v, 'utf8');
      parts.push(u32(name.length), name, u32(value.length), value);
    }
    const next = this.headerChain.then(
      () =>
        new Promise<Buffer>((resolve) => {
          this.deflate.write(Buffer.concat(parts));
          this.deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            const out = Buffer.concat(this.compressed);
            this.compressed = [];
            resolve(out);
          });
        }),
    );
    this.headerChain = next;
    return next;
  }

  private async read(head: Buffer): Promise<void> {
    let buf = head;
    const socket = this.socket;
    try {
      for await (const chunk of socket) {
        buf = buf.length ? Buffer.concat([buf, chunk as Buffer]) : (chunk as Buffer);
        while (buf.length >= 8) {
          const len = buf.readUInt32BE(4) & 0xffffff;
          if (buf.length < 8 + len) break;
          const frame = buf.subarray(0, 8 + len);
          buf = buf.subarray(8 + len);
          await this.handle(frame);
        }
      }
    } catch {
      // socket error or reset: the connection is over
    }
  }

  private async handle(frame: Buffer): Promise<void> {
    const flags = frame[4]!;
    const body = frame.subarray(8);
    if ((frame[0]! & 0x80) === 0) {
      const stream = this.streams.get(frame.readUInt32BE(0) & 0x7fffffff);
      if (!stream) return;
      if (body.length > 0) {
        stream.data.push(Buffer.from(body));
        if (stream.data.bytes > this.highWater) {
          // stop reading the socket until the consumer caught up (TCP backpressure toward the server)
          await new Promise<void>((resolve) => {
            this.resumeReader = resolve;
            void stream.data.below(this.highWater / 2).then(resolve);
          });
          this.resumeReader = undefined;
        }
      }
      if (flags & FLAG_FIN) {
        stream.finReceived = true;
        stream.data.end();
      }
      return;
    }
    const type = frame.readUInt16BE(2);
    const streamId = body.length >= 4 ? body.readUInt32BE(0) & 0x7fffffff : 0;
    switch (type) {
      case TYPE.synReply: {
        const s = this.streams.get(streamId);
        s?.onReply();
        if (s && flags & FLAG_FIN) {
          s.finReceived = true;
          s.data.end();
        }
        return;
      }
      case TYPE.rstStream: {
        const status = body.length >= 8 ? body.readUInt32BE(4) : 0;
        this.streams.get(streamId)?.onReset(new SpdyError(`stream ${streamId} reset by the server (status ${status})`));
        return;
      }
      case TYPE.ping:
        return this.writeControl(TYPE.ping, 0, Buffer.from(body));
      case TYPE.goAway:
        this.goAwayReceived = true;
        return this.close();
      case TYPE.synStream: {
        // the streaming protocols never open server streams: refuse
        const rst = Buffer.alloc(8);
        rst.writeUInt32BE(streamId, 0);
        rst.writeUInt32BE(RST_CANCEL, 4);
        return this.writeControl(TYPE.rstStream, 0, rst);
      }
      default:
        return; // SETTINGS, HEADERS, WINDOW_UPDATE: nothing to do
    }
  }
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}
