import { describe, expect, it } from '@jest/globals';
import { Channel, decodeFrame, encodeFrame, isFrameError, type Frame } from '@edgefarm/proto';
import { StreamLink, type LinkOptions } from './link.js';

/** Two links wired back to back; frames are delivered asynchronously, as over NATS. */
function pair(window: number, over: Partial<LinkOptions> = {}) {
  let b!: StreamLink;
  const deliver = (to: () => StreamLink) => (f: Uint8Array) => void Promise.resolve().then(() => to().receive(f));
  const a: StreamLink = new StreamLink({
    send: deliver(() => b),
    recvWindow: window,
    sendWindow: window,
    inputs: [Channel.stdout],
    peer: 'b',
    ...over,
  });
  b = new StreamLink({ send: deliver(() => a), recvWindow: window, sendWindow: window, inputs: [Channel.stdin], peer: 'a', ...over });
  return { a, b };
}

describe('frames', () => {
  it.each<Frame>([
    { kind: 'data', channel: Channel.stderr, data: Uint8Array.of(1, 2, 3) },
    { kind: 'eof', channel: Channel.stdin },
    { kind: 'credit', bytes: 123456 },
    { kind: 'resize', width: 80, height: 24 },
    { kind: 'ping' },
    { kind: 'end', exitCode: 42, error: 'boom' },
    { kind: 'end', exitCode: 0 },
  ])('round-trips %o', (f) => {
    expect(decodeFrame(encodeFrame(f))).toEqual(f);
  });

  it.each([[[]], [[9]], [[1, 7]], [[3, 0, 0]], [[2]], [[5, 1]], [[6, 0xff, 0xff]]])('rejects %o', (bytes) => {
    let err: unknown;
    try {
      decodeFrame(Uint8Array.from(bytes));
    } catch (e) {
      err = e;
    }
    expect(isFrameError(err)).toBe(true);
  });
});

describe('StreamLink', () => {
  it('moves data in order and never buffers more than the window while the consumer is slow', async () => {
    const { a, b } = pair(4096, { maxChunk: 512 });
    const total = 200_000;
    const writer = (async () => {
      for (let off = 0; off < total; off += 1000) await b.write(Channel.stdout, new Uint8Array(1000).fill((off / 1000) % 256));
      b.eof(Channel.stdout);
    })();
    let got = 0;
    let ok = true;
    for await (const chunk of a.input(Channel.stdout)) {
      for (const byte of chunk) ok &&= byte === Math.floor(got++ / 1000) % 256;
      await new Promise((r) => setImmediate(r));
    }
    await writer;
    expect(ok).toBe(true);
    expect(got).toBe(total);
    expect(a.stats.maxBufferedBytes).toBeLessThanOrEqual(4096);
    b.end({ exitCode: 3 });
    expect(await a.done).toEqual({ exitCode: 3 });
  });

  it('stops the sender when the consumer stops reading', async () => {
    const { a, b } = pair(2048);
    let sent = 0;
    void (async () => {
      for (;;) {
        await b.write(Channel.stdout, new Uint8Array(256));
        sent += 256;
        if (b.ended) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toBeLessThanOrEqual(2048 + 256);
    expect(a.stats.bufferedBytes).toBeLessThanOrEqual(2048);
    a.end({ exitCode: 0 });
    await b.done;
  });

  it('ends with an error when the peer goes silent, and pings while idle', async () => {
    const sent: Frame[] = [];
    const link = new StreamLink({
      send: (f) => sent.push(decodeFrame(f)),
      recvWindow: 10,
      sendWindow: 10,
      inputs: [],
      peer: 'edge node x',
      keepaliveMs: 20,
      deadAfterMs: 100,
    }).start();
    const r = await link.done;
    expect(r.error).toMatch(/edge node x went silent/);
    expect(sent.some((f) => f.kind === 'ping')).toBe(true);
  });

  it('ends with a protocol error on a garbage frame or data beyond credit', async () => {
    const sent: Frame[] = [];
    const link = new StreamLink({
      send: (f) => sent.push(decodeFrame(f)),
      recvWindow: 4,
      sendWindow: 4,
      inputs: [Channel.stdout],
      peer: 'p',
    });
    link.receive(encodeFrame({ kind: 'data', channel: Channel.stdout, data: new Uint8Array(5) }));
    expect((await link.done).error).toMatch(/beyond its credit/);
    const other = new StreamLink({ send: () => undefined, recvWindow: 4, sendWindow: 4, inputs: [], peer: 'p' });
    other.receive(Uint8Array.of(77));
    expect((await other.done).error).toMatch(/protocol error from p: unknown frame kind 77/);
    expect(sent.at(-1)).toMatchObject({ kind: 'end' });
  });

  it('credits data a consumer abandoned, so other channels keep flowing', async () => {
    const { a, b } = pair(1024);
    const it = a.input(Channel.stdout)[Symbol.asyncIterator]();
    await b.write(Channel.stdout, new Uint8Array(100));
    await it.next();
    await it.return?.();
    for (let i = 0; i < 50; i++) await b.write(Channel.stdout, new Uint8Array(512));
    expect(a.stats.bufferedBytes).toBe(0);
    a.end({ exitCode: 0 });
  });
});
