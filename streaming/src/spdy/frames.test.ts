import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { FrameReader, SpdyProtocolError, encode, type Frame } from './frames.js';
import { HeaderCodec, headersOf, parseHeaders, serializeHeaders } from './headers.js';
import { SPDY3_DICTIONARY } from './dictionary.js';

function parseAll(bytes: Buffer, byteByByte = false): Frame[] {
  const r = new FrameReader();
  const out: Frame[] = [];
  const chunks = byteByByte ? [...bytes].map((b) => Buffer.from([b])) : [bytes];
  for (const c of chunks) {
    r.push(c);
    for (let f = r.next(); f; f = r.next()) out.push(f);
  }
  return out;
}

describe('SPDY/3.1 frames', () => {
  const block = Buffer.from('compressed-block');
  const all = Buffer.concat([
    encode.data(5, Buffer.from('hello'), true),
    encode.synStream(7, block, false, 0, 3),
    encode.synReply(7, block, true),
    encode.headers(9, block, false),
    encode.rstStream(3, 5),
    encode.settings([
      { id: 7, value: 1000 },
      { id: 4, value: 100 },
    ]),
    encode.ping(11),
    encode.goAway(9, 1),
    encode.windowUpdate(0, 65_536),
  ]);
  const expected: Frame[] = [
    { type: 'data', streamId: 5, fin: true, data: Buffer.from('hello') },
    { type: 'syn_stream', streamId: 7, associatedId: 0, priority: 3, fin: false, unidirectional: false, block },
    { type: 'syn_reply', streamId: 7, fin: true, block },
    { type: 'headers', streamId: 9, fin: false, block },
    { type: 'rst_stream', streamId: 3, status: 5 },
    {
      type: 'settings',
      entries: [
        { id: 7, value: 1000 },
        { id: 4, value: 100 },
      ],
    },
    { type: 'ping', id: 11 },
    { type: 'goaway', lastGoodStreamId: 9, status: 1 },
    { type: 'window_update', streamId: 0, delta: 65_536 },
  ];

  it('round-trips every frame type', () => {
    expect(parseAll(all)).toEqual(expected);
  });

  it('reassembles frames that arrive a byte at a time', () => {
    expect(parseAll(all, true)).toEqual(expected);
  });

  it('skips control frames of unknown types', () => {
    const unknown = Buffer.from([0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb]);
    expect(parseAll(Buffer.concat([unknown, encode.ping(1)]))).toEqual([
      { type: 'unknown', frameType: 10 },
      { type: 'ping', id: 1 },
    ]);
  });

  it.each([
    ['another version', Buffer.from([0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]), /unsupported SPDY version 2/],
    ['a short RST_STREAM', Buffer.from([0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]), /RST_STREAM frame too short/],
    ['a WINDOW_UPDATE of 0', encode.windowUpdate(1, 0), /delta of 0/],
    ['a SETTINGS count that lies', Buffer.from([0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 9]), /says 9 entries/],
    ['an oversized control frame', Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0x10, 0x00, 0x01]), /exceeds the limit/],
    ['an oversized data frame', Buffer.from([0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff]), /exceeds the limit/],
  ])('rejects %s', (_what, bytes, message) => {
    expect(() => parseAll(bytes)).toThrow(SpdyProtocolError);
    expect(() => parseAll(bytes)).toThrow(message);
  });
});

describe('SPDY/3 header blocks', () => {
  it('is the SPDY/3 dictionary (1,423 bytes)', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(createHash('sha256').update(SPDY3_DICTIONARY).digest('hex')).toBe(
      '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02',
    );
  });

  it('serializes and parses name/value pairs, multiple values NUL-joined', () => {
    const h = new Map([
      ['streamtype', ['stdout']],
      ['x-multi', ['a', 'b']],
    ]);
    expect(parseHeaders(serializeHeaders(h))).toEqual(h);
  });

  it.each([
    [
      'an upper-case name',
      Buffer.from([0, 0, 0, 1, 0, 0, 0, 4, ...Buffer.from('Port'), 0, 0, 0, 2, ...Buffer.from('80')]),
      /invalid header name/,
    ],
    [
      'a duplicate name',
      Buffer.concat([
        serializeHeaders(
          new Map([
            ['a', ['1']],
            ['b', ['2']],
          ]),
        ).subarray(0, 4),
        serializeHeaders(new Map([['a', ['1']]])).subarray(4),
        serializeHeaders(new Map([['a', ['1']]])).subarray(4),
      ]),
      /duplicate header/,
    ],
    ['a truncated block', serializeHeaders(new Map([['port', ['8080']]])).subarray(0, 10), /truncated/],
  ])('rejects %s', (_what, raw, message) => {
    expect(() => parseHeaders(raw)).toThrow(message);
  });

  it('compresses with one context per direction, primed with the dictionary', async () => {
    const a = new HeaderCodec();
    const b = new HeaderCodec();
    try {
      const first = await a.encode(headersOf({ streamtype: 'error', port: '8080' }));
      // A plain zlib stream with the SPDY dictionary reads the first block; without the dictionary it cannot.
      expect(parseHeaders(zlib.inflateSync(first, { dictionary: SPDY3_DICTIONARY, finishFlush: zlib.constants.Z_SYNC_FLUSH }))).toEqual(
        headersOf({ streamtype: 'error', port: '8080' }),
      );
      expect(() => zlib.inflateSync(first, { finishFlush: zlib.constants.Z_SYNC_FLUSH })).toThrow();
      const second = await a.encode(headersOf({ streamtype: 'error', port: '8080' }));
      expect(second.length).toBeLessThan(first.length); // the shared context already holds these bytes
      expect(await b.decode(first)).toEqual(headersOf({ streamtype: 'error', port: '8080' }));
      expect(await b.decode(second)).toEqual(headersOf({ streamtype: 'error', port: '8080' }));
    } finally {
      a.close();
      b.close();
    }
  });

  it('refuses a block that inflates beyond the limit, and garbage', async () => {
    const small = new HeaderCodec(100);
    const enc = new HeaderCodec();
    try {
      await expect(small.decode(await enc.encode(headersOf({ big: 'x'.repeat(1000) })))).rejects.toThrow(/more than 100 bytes/);
    } finally {
      small.close();
      enc.close();
    }
    const c = new HeaderCodec();
    try {
      await expect(c.decode(Buffer.from('definitely not zlib'))).rejects.toThrow(SpdyProtocolError);
    } finally {
      c.close();
    }
  });
});
