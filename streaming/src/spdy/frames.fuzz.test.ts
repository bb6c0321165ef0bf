// SPDY/3.1 framing (frames.ts) and header blocks (headers.ts) from a hostile peer: only SpdyProtocolError, bounded
// buffering and output, and round trips of what a valid peer encodes.
import { fc, fuzzAsyncProperty, fuzzDecoder, mutatedBytes } from '@edgefarm/testing/fuzz';
import { FrameReader, SpdyProtocolError, encode, type Frame } from './frames.js';
import { HeaderCodec, parseHeaders, serializeHeaders, type SpdyHeaders } from './headers.js';

const id = fc.integer({ min: 0, max: 0x7fff_ffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const bytes = fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b));
const validFrame: fc.Arbitrary<Buffer> = fc.oneof(
  fc.tuple(id, bytes, fc.boolean()).map(([s, d, fin]) => encode.data(s, d, fin)),
  fc.tuple(id, bytes, fc.boolean(), id, fc.integer({ min: 0, max: 7 })).map(([s, b, fin, a, p]) => encode.synStream(s, b, fin, a, p)),
  fc.tuple(id, bytes, fc.boolean()).map(([s, b, fin]) => encode.synReply(s, b, fin)),
  fc.tuple(id, bytes, fc.boolean()).map(([s, b, fin]) => encode.headers(s, b, fin)),
  fc.tuple(id, u32).map(([s, st]) => encode.rstStream(s, st)),
  fc.array(fc.record({ id: fc.integer({ min: 0, max: 0xff_ffff }), value: u32 }), { maxLength: 6 }).map((e) => encode.settings(e)),
  u32.map((p) => encode.ping(p)),
  fc.tuple(id, u32).map(([s, st]) => encode.goAway(s, st)),
  fc.tuple(id, fc.integer({ min: 1, max: 0x7fff_ffff })).map(([s, d]) => encode.windowUpdate(s, d)),
);
const LIMITS = { maxControlFrame: 4096, maxDataFrame: 8192 };

/** Every frame the reader yields from `chunks`, pushed in order. */
function readAll(chunks: Buffer[]): { frames: Frame[]; maxBuffered: number } {
  const r = new FrameReader(LIMITS);
  const frames: Frame[] = [];
  let maxBuffered = 0;
  for (const c of chunks) {
    r.push(c);
    maxBuffered = Math.max(maxBuffered, r.buffered);
    for (let f = r.next(); f; f = r.next()) frames.push(f);
  }
  return { frames, maxBuffered };
}

describe('SPDY framing under fuzzing', () => {
  it('FrameReader: only SpdyProtocolError, whatever the bytes and however they are cut', () => {
    fuzzDecoder('spdy FrameReader', {
      inputs: fc.tuple(
        fc.array(mutatedBytes(validFrame.map((b) => Uint8Array.from(b))), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 64 }),
      ),
      decode: ([frames, cut]) => {
        const all = Buffer.concat(frames.map((f) => Buffer.from(f)));
        const chunks: Buffer[] = [];
        for (let off = 0; off < all.length; off += cut) chunks.push(all.subarray(off, off + cut));
        return readAll(chunks);
      },
      errors: [SpdyProtocolError],
      // Never holds more than one frame's worth (a frame above the limit is refused from its header).
      check: (_in, out) => (out as { maxBuffered: number }).maxBuffered <= 8 + LIMITS.maxDataFrame + 64,
    });
  });

  it('FrameReader: frames a valid peer encodes come back as encoded', () => {
    fuzzDecoder('spdy FrameReader round trip', {
      inputs: fc.array(validFrame, { minLength: 1, maxLength: 6 }),
      decode: (frames) => readAll(frames).frames,
      errors: [SpdyProtocolError],
      check: (frames, out) => {
        const got = out as Frame[];
        if (got.length !== frames.length) return false;
        return got.every((f, i) => {
          const b = frames[i]!;
          if (f.type === 'data') return encode.data(f.streamId, f.data, f.fin).equals(b);
          if (f.type === 'ping') return encode.ping(f.id).equals(b);
          if (f.type === 'rst_stream') return encode.rstStream(f.streamId, f.status).equals(b);
          if (f.type === 'window_update') return encode.windowUpdate(f.streamId, f.delta).equals(b);
          if (f.type === 'goaway') return encode.goAway(f.lastGoodStreamId, f.status).equals(b);
          if (f.type === 'settings') return encode.settings(f.entries).equals(b);
          if (f.type === 'syn_reply') return encode.synReply(f.streamId, f.block, f.fin).equals(b);
          if (f.type === 'headers') return encode.headers(f.streamId, f.block, f.fin).equals(b);
          if (f.type === 'syn_stream') return encode.synStream(f.streamId, f.block, f.fin, f.associatedId, f.priority).equals(b);
          return false;
        });
      },
    });
  });

  const headerMaps: fc.Arbitrary<SpdyHeaders> = fc
    .uniqueArray(
      fc.tuple(
        fc.stringMatching(/^[a-z0-9-]{1,12}$/),
        fc.array(
          fc.string({ maxLength: 16 }).filter((s) => !s.includes('\0')),
          { minLength: 1, maxLength: 3 },
        ),
      ),
      {
        maxLength: 6,
        selector: ([k]) => k,
      },
    )
    .map((entries) => new Map(entries));

  it('parseHeaders: only SpdyProtocolError; serialized headers round-trip', () => {
    fuzzDecoder('spdy parseHeaders', {
      inputs: fc.oneof(
        mutatedBytes(headerMaps.map((h) => Uint8Array.from(serializeHeaders(h)))),
        headerMaps.map((h) => ({ valid: h })),
      ),
      decode: (input) => ('valid' in input ? parseHeaders(serializeHeaders(input.valid)) : parseHeaders(Buffer.from(input))),
      errors: [SpdyProtocolError],
      check: (input, out) => !('valid' in input) || JSON.stringify([...(out as SpdyHeaders)]) === JSON.stringify([...input.valid]),
    });
  });

  it('HeaderCodec.decode (zlib with the SPDY dictionary): only SpdyProtocolError, output bounded, valid blocks round-trip', async () => {
    await fuzzAsyncProperty(
      'spdy HeaderCodec.decode',
      [headerMaps, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.boolean()],
      async (h, flips, bomb) => {
        const peer = new HeaderCodec();
        const us = new HeaderCodec(1024);
        try {
          const block = bomb ? await peer.encode(new Map([['x', ['a'.repeat(64 * 1024)]]])) : Buffer.from(await peer.encode(h));
          for (const [at, v] of flips) if (block.length > 0) block[at % block.length] = v;
          try {
            const got = await us.decode(block);
            if (bomb) return false; // 64 KiB cannot fit in 1 KiB
            if (flips.length === 0) return JSON.stringify([...got]) === JSON.stringify([...h]);
            return [...got.values()].reduce((n, v) => n + v.join('\0').length, 0) <= 1024;
          } catch (err) {
            if (!(err instanceof SpdyProtocolError)) throw err;
            return bomb || flips.length > 0 || serializeHeaders(h).length > 1024;
          }
        } finally {
          peer.close();
          us.close();
        }
      },
    );
  }, 600_000);
});
