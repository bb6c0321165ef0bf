import { pino } from 'pino';
import { spdy } from '@edgefarm/streaming';
import { SpdyConnection, type SpdyStream } from './connection.js';
import { SpdyTestPeer, socketPair } from './testing.js';

const log = pino({ level: 'silent' });

async function setup(opts: { windowSize?: number; maxStreams?: number; onStream?: (s: SpdyStream) => void } = {}) {
  const pair = await socketPair();
  const streams: SpdyStream[] = [];
  const conn = new SpdyConnection(pair.server, {
    log,
    windowSize: opts.windowSize,
    maxStreams: opts.maxStreams,
    onStream: (s) => {
      streams.push(s);
      (opts.onStream ?? ((x) => void x.reply()))(s);
    },
  });
  const peer = new SpdyTestPeer(pair.client);
  return {
    conn,
    peer,
    streams,
    close: async () => {
      conn.close();
      peer.close();
      await conn.done;
      pair.close();
    },
  };
}

describe('SpdyConnection', () => {
  it('announces its window, accepts a stream with SYN_REPLY and carries data both ways with FIN', async () => {
    const t = await setup({ windowSize: 128 * 1024 });
    try {
      expect(await t.peer.next()).toEqual({ type: 'settings', entries: [{ id: 7, value: 128 * 1024 }] });
      expect(await t.peer.next()).toEqual({ type: 'window_update', streamId: 0, delta: 128 * 1024 - 65_536 });
      await t.peer.synStream(1, { streamtype: 'stdin' });
      const reply = await t.peer.next((f) => f.type === 'syn_reply');
      expect(reply).toMatchObject({ type: 'syn_reply', streamId: 1 });
      const s = t.streams[0]!;
      expect(spdy.header(s.headers, 'streamType')).toBe('stdin');
      t.peer.send(spdy.encode.data(1, Buffer.from('abc'), true));
      const got: Uint8Array[] = [];
      for await (const c of s.data) got.push(c);
      expect(Buffer.concat(got).toString()).toBe('abc');
      await s.write(Buffer.from('xyz'));
      await s.end();
      expect((await t.peer.readStream(1)).toString()).toBe('xyz');
      await s.closed;
      expect(t.conn.openStreams).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('writes without waiting for window updates toward a peer that does no flow control (spdystream)', async () => {
    const t = await setup();
    try {
      await t.peer.synStream(1, { streamtype: 'stdout' });
      await t.peer.next((f) => f.type === 'syn_reply');
      const big = Buffer.alloc(300 * 1024, 7);
      await t.streams[0]!.write(big);
      await t.streams[0]!.end();
      expect((await t.peer.readStream(1)).length).toBe(big.length);
    } finally {
      await t.close();
    }
  });

  it('honours the windows of a peer that does flow control', async () => {
    const t = await setup();
    try {
      t.peer.send(spdy.encode.settings([{ id: 7, value: 1000 }]));
      await t.peer.synStream(1, { streamtype: 'stdout' });
      await t.peer.next((f) => f.type === 'syn_reply');
      const s = t.streams[0]!;
      let written = false;
      const w = s.write(Buffer.alloc(2500, 1)).then(() => (written = true));
      const first = await t.peer.next((f) => f.type === 'data');
      expect(first.type === 'data' && first.data.length).toBe(1000);
      await new Promise((r) => setTimeout(r, 100));
      expect(written).toBe(false); // stuck until the peer opens the window
      t.peer.send(spdy.encode.windowUpdate(1, 1000));
      const second = await t.peer.next((f) => f.type === 'data');
      expect(second.type === 'data' && second.data.length).toBe(1000);
      t.peer.send(spdy.encode.windowUpdate(1, 5000));
      await w;
      const third = await t.peer.next((f) => f.type === 'data');
      expect(third.type === 'data' && third.data.length).toBe(500);
    } finally {
      await t.close();
    }
  });

  it('reopens the peer window as the consumer reads (WINDOW_UPDATE per half window)', async () => {
    const t = await setup({ windowSize: 64 * 1024 });
    try {
      await t.peer.synStream(1, { streamtype: 'stdin' });
      await t.peer.next((f) => f.type === 'syn_reply');
      for (let i = 0; i < 4; i++) t.peer.send(spdy.encode.data(1, Buffer.alloc(16 * 1024), false));
      const it = t.streams[0]!.data[Symbol.asyncIterator]();
      for (let i = 0; i < 2; i++) await it.next();
      expect(await t.peer.next((f) => f.type === 'window_update' && f.streamId === 0)).toEqual({
        type: 'window_update',
        streamId: 0,
        delta: 32 * 1024,
      });
      expect(await t.peer.next((f) => f.type === 'window_update' && f.streamId === 1)).toEqual({
        type: 'window_update',
        streamId: 1,
        delta: 32 * 1024,
      });
      await it.return?.(undefined);
    } finally {
      await t.close();
    }
  });

  it('echoes pings, refuses streams beyond the limit, resets data on unknown streams', async () => {
    const t = await setup({ maxStreams: 1 });
    try {
      t.peer.send(spdy.encode.ping(3));
      expect(await t.peer.next((f) => f.type === 'ping')).toEqual({ type: 'ping', id: 3 });
      await t.peer.synStream(1, { streamtype: 'a' });
      await t.peer.synStream(3, { streamtype: 'b' });
      expect(await t.peer.next((f) => f.type === 'rst_stream')).toEqual({
        type: 'rst_stream',
        streamId: 3,
        status: spdy.RstStatus.RefusedStream,
      });
      t.peer.send(spdy.encode.data(9, Buffer.from('x'), false));
      expect(await t.peer.next((f) => f.type === 'rst_stream')).toEqual({
        type: 'rst_stream',
        streamId: 9,
        status: spdy.RstStatus.InvalidStream,
      });
      t.peer.send(spdy.encode.rstStream(1, spdy.RstStatus.Cancel));
      await t.streams[0]!.closed;
      await expect(t.streams[0]!.write(Buffer.from('late'))).rejects.toThrow(/closed/);
    } finally {
      await t.close();
    }
  });

  it.each([
    ['garbage', Buffer.from('GET / HTTP/1.1\r\n\r\n')],
    ['an even stream id', spdy.encode.synStream(2, Buffer.from([0x78]), false)],
    ['a header block that is not zlib', spdy.encode.synStream(1, Buffer.from('nope'), false)],
  ])('answers %s with GOAWAY PROTOCOL_ERROR and closes', async (_what, bytes) => {
    const t = await setup();
    try {
      if (bytes[0] === 0x80 && bytes.readUInt16BE(2) === 1 && bytes.readUInt32BE(8) === 2) await t.peer.synStream(2, { streamtype: 'x' });
      else t.peer.send(bytes);
      expect(await t.peer.next((f) => f.type === 'goaway')).toMatchObject({ type: 'goaway', status: spdy.GoAwayStatus.ProtocolError });
      await t.conn.done;
      expect(t.streams).toHaveLength(0);
    } finally {
      await t.close();
    }
  });

  it('ends every stream when the peer goes away', async () => {
    const t = await setup();
    await t.peer.synStream(1, { streamtype: 'stdin' });
    await t.peer.next((f) => f.type === 'syn_reply');
    t.peer.close();
    await t.conn.done;
    await t.streams[0]!.closed;
    for await (const _ of t.streams[0]!.data); // ends, nothing left behind
    expect(t.streams[0]!.isClosed).toBe(true);
    await t.close();
  });
});
