// WebSocket channel framing (websocket.ts) and the JSON stream decoder of resize messages (json-stream.ts).
import { pino } from 'pino';
import { fc, fuzzAsyncProperty, fuzzDecoder, mutatedBytes } from '@edgefarm/testing/fuzz';
import { jsonObjects } from './json-stream.js';
import { BASE64, BINARY, parseChannelMessage } from './websocket.js';

const log = pino({ level: 'silent' });

describe('WebSocket channel messages under fuzzing', () => {
  const encoded = (codec: 'binary' | 'base64') =>
    fc
      .tuple(fc.integer({ min: 0, max: codec === 'binary' ? 255 : 9 }), fc.uint8Array({ maxLength: 256 }))
      .map(([ch, data]) =>
        codec === 'binary'
          ? Uint8Array.from([ch, ...data])
          : Uint8Array.from(Buffer.from(String.fromCharCode(0x30 + ch) + Buffer.from(data).toString('base64'), 'latin1')),
      );

  it.each(['binary', 'base64'] as const)('%s: never throws; a channel is a byte; a valid message round-trips', (codec) => {
    fuzzDecoder(`websocket parseChannelMessage ${codec}`, {
      inputs: fc.oneof(
        mutatedBytes(encoded(codec)),
        encoded(codec).map((b) => ({ valid: b })),
      ),
      decode: (input) => {
        const raw = 'valid' in input ? input.valid : input;
        return parseChannelMessage(codec === 'binary' ? BINARY : BASE64, Buffer.from(raw));
      },
      check: (input, out) => {
        const raw = 'valid' in input ? input.valid : input;
        if (raw.length === 0) return out === undefined;
        const m = out as { channel: number; data: Buffer };
        if (!Number.isInteger(m.channel) || m.channel < -0x30 || m.channel > 255) return false;
        if (!('valid' in input)) return true;
        // Round trip of what the peer encoded.
        const again =
          codec === 'binary'
            ? Buffer.from([m.channel, ...m.data])
            : Buffer.from(String.fromCharCode(0x30 + m.channel) + m.data.toString('base64'), 'latin1');
        return again.equals(Buffer.from(raw));
      },
    });
  });
});

describe('resize JSON stream under fuzzing', () => {
  it('never throws, yields only parsed values, and round-trips objects written back to back in any chunking', async () => {
    const size = fc.record({ Width: fc.integer({ min: 0, max: 65535 }), Height: fc.integer({ min: 0, max: 65535 }) });
    await fuzzAsyncProperty(
      'kubelet jsonObjects',
      [
        fc.oneof(
          fc.array(size, { maxLength: 8 }).map((objs) => ({ objs, bytes: Buffer.from(objs.map((o) => JSON.stringify(o)).join('\n')) })),
          mutatedBytes(
            fc.array(size, { maxLength: 8 }).map((objs) => Uint8Array.from(Buffer.from(objs.map((o) => JSON.stringify(o)).join('')))),
          ).map((b) => ({ objs: undefined, bytes: Buffer.from(b) })),
          fc.string({ unit: 'binary', maxLength: 256 }).map((s) => ({ objs: undefined, bytes: Buffer.from(s) })),
        ),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 16 }),
      ],
      async ({ objs, bytes }, cuts) => {
        async function* chunks() {
          let off = 0;
          for (let i = 0; off < bytes.length; i++) {
            const n = cuts[i % cuts.length]!;
            yield Uint8Array.from(bytes.subarray(off, off + n));
            off += n;
          }
        }
        const got: unknown[] = [];
        for await (const v of jsonObjects(chunks(), log, 1024)) got.push(v);
        if (objs) return JSON.stringify(got) === JSON.stringify(objs);
        return got.every((v) => v !== undefined);
      },
    );
  });
});
