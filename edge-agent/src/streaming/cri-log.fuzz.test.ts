import { fc, fuzzDecoder, fuzzProperty, mutatedBytes } from '@edgefarm/testing/fuzz';
import { LineSplitter, LogRenderer, MAX_LINE_BYTES, parseCriLogLine, tailStart } from './cri-log.js';

const enc = (s: string) => Buffer.from(s, 'utf8');
/** A CRI log line as containerd writes it (without its newline). */
const validLine = fc
  .tuple(
    fc.date({ min: new Date(0), max: new Date(4102444800000), noInvalidDate: true }),
    fc.constantFrom('stdout', 'stderr'),
    fc.constantFrom('F', 'P', 'F:x'),
    fc.uint8Array({ maxLength: 64 }).map((b) => b.map((x) => (x === 0x0a ? 0x20 : x))),
  )
  .map(([d, s, t, c]) => Uint8Array.from([...enc(`${d.toISOString().replace('Z', '123456Z')} ${s} ${t} `), ...c]));

describe('the CRI log decoder (fuzzed)', () => {
  it('parseCriLogLine: never throws, never hangs; what it accepts renders within its limit', () => {
    fuzzDecoder('edge-agent CRI log line', {
      inputs: fc.tuple(mutatedBytes(validLine), fc.boolean(), fc.option(fc.integer({ min: 1, max: 100 }))),
      decode: ([line, timestamps, limitBytes]) => {
        const e = parseCriLogLine(line);
        if (!e) return undefined;
        const r = new LogRenderer({ timestamps, ...(limitBytes !== null ? { limitBytes } : {}) });
        const out = r.render(e).reduce((n, p) => n + p.length, 0);
        return { e, out, limitBytes };
      },
      check: (_in, o) => {
        if (o === undefined) return true;
        const { e, out, limitBytes } = o as { e: { stream: string; timeMs: number }; out: number; limitBytes: number | null };
        return (e.stream === 'stdout' || e.stream === 'stderr') && Number.isFinite(e.timeMs) && (limitBytes === null || out <= limitBytes);
      },
    });
  });

  it('LineSplitter: the lines it hands out, rejoined, are the input up to its last newline, however it is chunked', () => {
    fuzzProperty(
      'edge-agent CRI log line splitter',
      [
        fc.array(
          fc.uint8Array({ maxLength: 80 }).map((b) => b.map((x) => (x % 7 === 0 ? 0x0a : x))),
          { maxLength: 20 },
        ),
      ],
      (chunks) => {
        const s = new LineSplitter();
        const lines: Uint8Array[] = [];
        for (const c of chunks) lines.push(...s.push(c));
        const all = Buffer.concat(chunks);
        const last = all.lastIndexOf(0x0a);
        const joined = Buffer.concat(lines.flatMap((l) => [l, Uint8Array.of(0x0a)]));
        return s.pending <= MAX_LINE_BYTES && joined.equals(all.subarray(0, last + 1)) && s.pending === all.length - last - 1;
      },
    );
  });

  it('tailStart: an offset inside the tail, at a line start', () => {
    fuzzProperty(
      'edge-agent CRI log tail start',
      [fc.uint8Array({ maxLength: 200 }), fc.nat(1000), fc.integer({ min: -2, max: 50 })],
      (tail, base, n) => {
        const at = tailStart(tail, base, n);
        if (at === undefined) return base > 0;
        return at >= base && at <= base + tail.length && (at === base || tail[at - base - 1] === 0x0a || at === base + tail.length);
      },
    );
  });
});
