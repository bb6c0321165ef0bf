import { describe, expect, it } from '@jest/globals';
import { LineSplitter, LogRenderer, MAX_LINE_BYTES, parseCriLogLine, tailStart, type CriLogEntry } from './cri-log.js';

const b = (s: string) => Buffer.from(s, 'utf8');
const str = (parts: Uint8Array[]) => Buffer.concat(parts).toString('utf8');
const entry = (line: string) => parseCriLogLine(b(line))!;

describe('parseCriLogLine', () => {
  it('parses full and partial lines of both streams', () => {
    expect(entry('2026-11-23T10:00:00.123456789Z stdout F hello world')).toMatchObject({
      time: '2026-11-23T10:00:00.123456789Z',
      stream: 'stdout',
      partial: false,
    });
    expect(Buffer.from(entry('2026-11-23T10:00:00Z stderr P  two  spaces').content).toString()).toBe(' two  spaces');
    expect(entry('2026-11-23T10:00:00Z stderr P x').partial).toBe(true);
    expect(entry('2026-11-23T10:00:00+01:00 stdout F x').timeMs).toBe(Date.UTC(2026, 10, 23, 9));
    expect(entry('2026-11-23T10:00:00Z stdout F').content.length).toBe(0);
    expect(entry('2026-11-23T10:00:00Z stdout F:extra x').partial).toBe(false);
  });

  it.each([
    [''],
    ['garbage'],
    ['not-a-time stdout F x'],
    ['2026-11-23T10:00:00Z stdin F x'],
    ['2026-11-23T10:00:00Z stdout X x'],
    ['2026-11-23T10:00:00Z stdout'],
    ['12345 stdout F x'],
  ])('rejects %j', (line) => {
    expect(parseCriLogLine(b(line))).toBeUndefined();
  });
});

describe('LogRenderer', () => {
  const lines = [
    '2026-11-23T10:00:00.1Z stdout P part one, ',
    '2026-11-23T10:00:00.2Z stdout F part two',
    '2026-11-23T10:00:01Z stderr F next',
  ].map(entry);
  const render = (r: LogRenderer, es: CriLogEntry[]) => str(es.flatMap((e) => r.render(e)));

  it('joins partial lines, with one timestamp per line', () => {
    expect(render(new LogRenderer({ timestamps: false }), lines)).toBe('part one, part two\nnext\n');
    expect(render(new LogRenderer({ timestamps: true }), lines)).toBe(
      '2026-11-23T10:00:00.1Z part one, part two\n2026-11-23T10:00:01Z next\n',
    );
  });

  it('skips entries before since and stops at limitBytes', () => {
    expect(render(new LogRenderer({ timestamps: false, sinceMs: Date.UTC(2026, 10, 23, 10, 0, 1) }), lines)).toBe('next\n');
    const r = new LogRenderer({ timestamps: false, limitBytes: 12 });
    expect(render(r, lines)).toBe('part one, pa');
    expect(r.full).toBe(true);
  });
});

describe('LineSplitter', () => {
  it('keeps a line without its newline until it is complete, and drops garbage beyond the longest line', () => {
    const s = new LineSplitter();
    expect(s.push(b('a\nb')).map((l) => Buffer.from(l).toString())).toEqual(['a']);
    expect(s.pending).toBe(1);
    expect(s.push(b('c\n\nd')).map((l) => Buffer.from(l).toString())).toEqual(['bc', '']);
    expect(s.flush().map((l) => Buffer.from(l).toString())).toEqual(['d']);
    s.push(new Uint8Array(MAX_LINE_BYTES + 1));
    expect(s.pending).toBe(0);
  });
});

describe('tailStart', () => {
  const file = b('l1\nl2\nl3\n');
  it('finds where the last n lines begin', () => {
    expect(tailStart(file, 0, 1)).toBe(6);
    expect(tailStart(file, 0, 2)).toBe(3);
    expect(tailStart(file, 0, 5)).toBe(0);
    expect(tailStart(file, 0, 0)).toBe(9);
    expect(tailStart(b('l1\nl2'), 0, 1)).toBe(3);
  });
  it('asks for more when the window holds fewer lines and is not the file start', () => {
    expect(tailStart(b('l2\nl3\n'), 100, 5)).toBeUndefined();
    expect(tailStart(b('l2\nl3\n'), 100, 1)).toBe(103);
  });
});
