/**
 * A scripted SPDY/3.1 client for tests: sends frames it is told to (header blocks compressed with its own zlib
 * context, as a real peer's) and reads the server's frames one by one, header blocks decoded.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { spdy } from '@edgefarm/streaming';

export type DecodedFrame = spdy.Frame & { headers?: spdy.SpdyHeaders };

export class SpdyTestPeer {
  private readonly reader = new spdy.FrameReader({ maxDataFrame: 16 << 20 });
  private readonly codec = new spdy.HeaderCodec();
  private readonly queue: DecodedFrame[] = [];
  private waiter?: () => void;
  private decoding: Promise<void> = Promise.resolve();
  closed = false;

  constructor(readonly socket: Duplex) {
    socket.on('data', (c: Buffer) => {
      this.reader.push(c);
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        const frame = f;
        this.decoding = this.decoding.then(async () => {
          const d: DecodedFrame = frame;
          if ('block' in frame) d.headers = await this.codec.decode(frame.block);
          this.queue.push(d);
          this.wake();
        });
      }
    });
    socket.on('close', () => {
      void this.decoding.then(() => {
        this.closed = true;
        this.wake();
      });
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  send(frame: Buffer): void {
    this.socket.write(frame);
  }

  async synStream(id: number, headers: Record<string, string>, fin = false): Promise<void> {
    this.send(spdy.encode.synStream(id, await this.codec.encode(spdy.headersOf(headers)), fin));
  }

  /** The next frame the server sent that `accept` takes (others are skipped); throws after `timeoutMs`. */
  async next(accept: (f: DecodedFrame) => boolean = () => true, timeoutMs = 5_000): Promise<DecodedFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = this.queue.shift();
      if (f) {
        if (accept(f)) return f;
        continue;
      }
      if (this.closed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no such frame in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Every DATA byte of a stream until its FIN. */
  async readStream(id: number, timeoutMs = 5_000): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const f = await this.next((x) => x.type === 'data' && x.streamId === id, timeoutMs);
      if (f.type !== 'data') continue;
      parts.push(f.data);
      if (f.fin) return Buffer.concat(parts);
    }
  }

  close(): void {
    this.codec.close();
    this.socket.destroy();
  }
}

/** A connected loopback socket pair: `server` is handed to the code under test, `client` to the peer. */
export async function socketPair(): Promise<{ server: net.Socket; client: net.Socket; close(): void }> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  srv.close();
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
}
