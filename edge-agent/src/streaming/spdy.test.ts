import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { spdy } from '@edgefarm/streaming';
import { SpdyConnection, isSpdyError } from './spdy.js';

type Decoded = spdy.Frame & { headers?: spdy.SpdyHeaders };

/** A scripted streaming server: answers the upgrade, then hands every frame (header blocks decoded) to the test. */
async function fakeServer() {
  const frames: Decoded[] = [];
  let waiter: (() => void) | undefined;
  let sock!: Socket;
  const codec = new spdy.HeaderCodec();
  const server = http.createServer();
  const upgraded = new Promise<void>((resolve) =>
    server.on('upgrade', (req, socket: Socket) => {
      sock = socket;
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${String(req.headers['x-stream-protocol-version'])}\r\n\r\n`,
      );
      const reader = new spdy.FrameReader();
      let chain = Promise.resolve();
      socket.on('data', (c: Buffer) => {
        reader.push(c);
        for (let f = reader.next(); f; f = reader.next()) {
          const frame: Decoded = f;
          chain = chain.then(async () => {
            if ('block' in frame) frame.headers = await codec.decode(frame.block);
            frames.push(frame);
            waiter?.();
          });
        }
      });
      socket.on('error', () => undefined);
      resolve();
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/exec/x`;
  return {
    url,
    upgraded,
    send: (b: Buffer) => sock.write(b),
    reply: async (id: number, fin = false) => sock.write(spdy.encode.synReply(id, await codec.encode(new Map()), fin)),
    /** The next frame the client sent that `accept` takes. */
    async next(accept: (f: Decoded) => boolean): Promise<Decoded> {
      for (;;) {
        const i = frames.findIndex(accept);
        if (i >= 0) return frames.splice(i, 1)[0]!;
        await new Promise<void>((r) => (waiter = r));
      }
    },
    frames,
    close: async () => {
      codec.close();
      sock?.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

describe('agent SpdyConnection (client)', () => {
  it('opens odd streams, hands them out after SYN_REPLY, carries data and FIN both ways, echoes server pings, ends at GOAWAY', async () => {
    const srv = await fakeServer();
    const conn = await SpdyConnection.connect(srv.url, 'v4.channel.k8s.io');
    try {
      await srv.upgraded;
      let opened = false;
      const pending = conn.openStream({ streamtype: 'stdin' }).then((s) => ((opened = true), s));
      const syn = await srv.next((f) => f.type === 'syn_stream');
      expect(syn).toMatchObject({ type: 'syn_stream', streamId: 1 });
      expect(syn.headers).toEqual(new Map([['streamtype', ['stdin']]]));
      await new Promise((r) => setTimeout(r, 50));
      expect(opened).toBe(false); // no SYN_REPLY yet: nothing may be written on it
      await srv.reply(1);
      const s = await pending;
      await s.write(Buffer.from('hi'));
      await s.end();
      expect(await srv.next((f) => f.type === 'data')).toEqual({ type: 'data', streamId: 1, fin: false, data: Buffer.from('hi') });
      expect(await srv.next((f) => f.type === 'data')).toEqual({ type: 'data', streamId: 1, fin: true, data: Buffer.alloc(0) });

      const p2 = conn.openStream({ streamtype: 'stdout' });
      expect(await srv.next((f) => f.type === 'syn_stream')).toMatchObject({ streamId: 3 });
      await srv.reply(3);
      const out = await p2;
      srv.send(spdy.encode.data(3, Buffer.from('out'), true));
      const got: Uint8Array[] = [];
      for await (const c of out.data) got.push(c);
      expect(Buffer.concat(got).toString()).toBe('out');
      expect(out.finReceived).toBe(true);

      srv.send(spdy.encode.ping(1)); // odd: an answer to a ping of ours, not echoed
      srv.send(spdy.encode.ping(2));
      expect(await srv.next((f) => f.type === 'ping')).toEqual({ type: 'ping', id: 2 });
      expect(srv.frames.some((f) => f.type === 'ping')).toBe(false);

      srv.send(spdy.encode.goAway(3, spdy.GoAwayStatus.Ok));
      await conn.closed;
      expect(conn.goAwayReceived).toBe(true);
    } finally {
      conn.close();
      await srv.close();
    }
  });

  it('fails openStream when the server resets the stream, or the connection closes, before replying', async () => {
    const srv = await fakeServer();
    const conn = await SpdyConnection.connect(srv.url, 'portforward.k8s.io');
    try {
      await srv.upgraded;
      const refused = conn.openStream({ streamtype: 'error' });
      await srv.next((f) => f.type === 'syn_stream');
      srv.send(spdy.encode.rstStream(1, spdy.RstStatus.RefusedStream));
      await expect(refused).rejects.toThrow(/reset by the server \(status 3\)/);
      const dropped = conn.openStream({ streamtype: 'data' });
      await srv.next((f) => f.type === 'syn_stream');
      srv.send(Buffer.from([0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 2])); // a SPDY/2 PING: a protocol error
      const err = await dropped.catch((e: unknown) => e);
      expect(isSpdyError(err)).toBe(true);
      await conn.closed;
    } finally {
      conn.close();
      await srv.close();
    }
  });
});
