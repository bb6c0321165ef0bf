/**
 * The CRI container log format containerd writes, and the kubelet's rendering of it for /containerLogs:
 *
 *   <RFC3339Nano time> <stdout|stderr> <P|F> <content>\n
 *
 * P marks a partial line (the runtime split a long line; the next entries continue it), F a full one. The kubelet
 * writes the content only (a full line gets its newline back), with `timestamps` the entry's time and a space before
 * each new line (partial continuations are joined, not prefixed again); entries before `since` are skipped;
 * `limitBytes` caps the output. Lines that do not parse are skipped, as the kubelet does (it logs them).
 */

export interface CriLogEntry {
  /** The time token as written (RFC 3339 with nanoseconds). */
  time: string;
  timeMs: number;
  stream: 'stdout' | 'stderr';
  partial: boolean;
  content: Uint8Array;
}

const SPACE = 0x20;

/** Parses one line (without its newline); undefined when it is not a CRI log line. */
export function parseCriLogLine(line: Uint8Array): CriLogEntry | undefined {
  const a = line.indexOf(SPACE);
  if (a <= 0) return undefined;
  const b = line.indexOf(SPACE, a + 1);
  if (b < 0) return undefined;
  const time = Buffer.from(line.subarray(0, a)).toString('latin1');
  const timeMs = Date.parse(time);
  if (!Number.isFinite(timeMs) || !/^\d{4}-\d\d-\d\dT/.test(time)) return undefined;
  const stream = Buffer.from(line.subarray(a + 1, b)).toString('latin1');
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  // the tag: P or F (a newer runtime may add ':'-separated fields after it); content follows one space
  const c = line.indexOf(SPACE, b + 1);
  const tag = Buffer.from(line.subarray(b + 1, c < 0 ? line.length : c))
    .toString('latin1')
    .split(':')[0];
  if (tag !== 'P' && tag !== 'F') return undefined;
  return { time, timeMs, stream, partial: tag === 'P', content: c < 0 ? new Uint8Array(0) : line.subarray(c + 1) };
}

export interface RenderOptions {
  timestamps: boolean;
  /** Skip entries older than this (ms since the epoch). */
  sinceMs?: number;
  /** Stop after this many bytes of output. */
  limitBytes?: number;
}

/** Renders entries the kubelet's way; stateful across calls (partial lines, the byte limit). */
export class LogRenderer {
  private atLineStart = true;
  private written = 0;

  constructor(private readonly options: RenderOptions) {}

  /** True once limitBytes is reached: nothing more will be rendered. */
  get full(): boolean {
    return this.options.limitBytes !== undefined && this.written >= this.options.limitBytes;
  }

  /** The output bytes of one entry (possibly empty). */
  render(e: CriLogEntry): Uint8Array[] {
    if (this.full) return [];
    if (this.options.sinceMs !== undefined && e.timeMs < this.options.sinceMs) return [];
    const out: Uint8Array[] = [];
    if (this.options.timestamps && this.atLineStart) out.push(Buffer.from(`${e.time} `, 'latin1'));
    out.push(e.content);
    if (!e.partial) out.push(NEWLINE);
    this.atLineStart = !e.partial;
    return this.cap(out);
  }

  private cap(parts: Uint8Array[]): Uint8Array[] {
    const limit = this.options.limitBytes;
    if (limit === undefined) return parts;
    const out: Uint8Array[] = [];
    for (const p of parts) {
      const room = limit - this.written;
      if (room <= 0) break;
      const piece = p.length > room ? p.subarray(0, room) : p;
      out.push(piece);
      this.written += piece.length;
    }
    return out;
  }
}

const NEWLINE = Uint8Array.of(0x0a);
/** Longest line kept while waiting for its newline. */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * Splits a byte stream into lines: push() chunks, take the complete lines; the bytes after the last newline wait
 * for more (a line being written), or come out with flush() at a true end.
 */
export class LineSplitter {
  private rest: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array): Uint8Array[] {
    const data = this.rest.length ? Buffer.concat([this.rest, chunk]) : chunk;
    const lines: Uint8Array[] = [];
    let start = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, start)) {
      lines.push(data.subarray(start, i));
      start = i + 1;
    }
    this.rest = data.slice(start);
    // a "line" longer than any runtime writes (containerd splits at 16 KiB) is garbage: drop it, do not grow
    if (this.rest.length > MAX_LINE_BYTES) this.rest = new Uint8Array(0);
    return lines;
  }

  /** Bytes waiting for their newline. */
  get pending(): number {
    return this.rest.length;
  }

  flush(): Uint8Array[] {
    const r = this.rest;
    this.rest = new Uint8Array(0);
    return r.length ? [r] : [];
  }

  reset(): void {
    this.rest = new Uint8Array(0);
  }
}

/** Offset where the last `n` lines of `tail` (the end of a file starting at `base`) begin, or undefined if earlier. */
export function tailStart(tail: Uint8Array, base: number, n: number): number | undefined {
  if (n <= 0) return base + tail.length;
  let end = tail.length;
  if (end > 0 && tail[end - 1] === 0x0a) end--;
  let count = 0;
  for (let i = end - 1; i >= 0; i--) {
    if (tail[i] === 0x0a && ++count === n) return base + i + 1;
  }
  return base === 0 ? 0 : undefined;
}
