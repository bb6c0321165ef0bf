import { lstat, mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AtomicWriter, isInvalidPathError, readProjected, timestampPrefix, validatePath, type Payload } from './atomic-writer.js';

const enc = new TextEncoder();
const payload = (files: Record<string, [string, number?]>): Payload =>
  new Map(Object.entries(files).map(([p, [data, mode]]) => [p, { data: enc.encode(data), mode: mode ?? 0o644 }]));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function entries(): Promise<string[]> {
  return (await readdir(dir)).sort();
}
async function tsDirs(): Promise<string[]> {
  return (await entries()).filter((e) => e.startsWith('..') && e !== '..data');
}
async function text(p: string): Promise<string> {
  return (await readProjected(dir, p)).data.toString('utf8');
}

describe('validatePath (the kubelet rules)', () => {
  it.each([
    ['a', true],
    ['a/b/c', true],
    ['..a/b', false],
    ['a/..b', true],
    ['..', false],
    ['a/../b', false],
    ['/etc/passwd', false],
    ['', false],
    ['x'.repeat(256), false],
    [`${'x/'.repeat(2100)}x`, false],
  ])('%s: %s', (p, ok) => {
    if (ok) expect(() => validatePath(p)).not.toThrow();
    else expect(() => validatePath(p)).toThrow(/invalid path/);
  });
});

describe('AtomicWriter', () => {
  it('names timestamped directories like the kubelet', () => {
    expect(timestampPrefix(new Date(Date.UTC(2026, 0, 2, 15, 4, 5, 123)))).toBe('..2026_01_02_15_04_05.');
  });

  it('writes files into a timestamped directory behind ..data, with user-visible links and modes', async () => {
    const w = new AtomicWriter(dir);
    expect(await w.write(payload({ greeting: ['hello'], 'conf/app.yaml': ['a: 1', 0o600], 'conf/deep/x': ['x', 0o400] }))).toBe(true);
    expect(await entries()).toEqual([...(await tsDirs()), '..data', 'conf', 'greeting'].sort());
    expect(await tsDirs()).toHaveLength(1);
    expect(await readlink(path.join(dir, '..data'))).toBe((await tsDirs())[0]);
    expect(await readlink(path.join(dir, 'greeting'))).toBe('..data/greeting');
    expect(await readlink(path.join(dir, 'conf'))).toBe('..data/conf');
    expect(await text('greeting')).toBe('hello');
    expect(await readProjected(dir, 'conf/app.yaml')).toMatchObject({ mode: 0o600 });
    expect(await readProjected(dir, 'conf/deep/x')).toMatchObject({ mode: 0o400 });
    expect(await readProjected(dir, 'greeting')).toMatchObject({ mode: 0o644 });
    expect((await lstat(path.join(dir, (await tsDirs())[0]!))).mode & 0o777).toBe(0o755);
  });

  it('does nothing when content and modes are unchanged', async () => {
    const w = new AtomicWriter(dir);
    await w.write(payload({ a: ['1'], 'd/b': ['2'] }));
    const before = await tsDirs();
    expect(await w.write(payload({ a: ['1'], 'd/b': ['2'] }))).toBe(false);
    expect(await tsDirs()).toEqual(before);
  });

  it.each([
    ['content', { a: ['2'], 'd/b': ['2'] }],
    ['mode', { a: ['1', 0o600], 'd/b': ['2'] }],
    ['a new file', { a: ['1'], 'd/b': ['2'], c: ['3'] }],
    ['a removed file', { a: ['1'] }],
    ['a removed nested file', { a: ['1'], 'd/c': ['2'] }],
  ] as [string, Record<string, [string, number?]>][])(
    'rewrites on a change of %s: new timestamped dir, old one gone',
    async (_what, next) => {
      const w = new AtomicWriter(dir);
      await w.write(payload({ a: ['1'], 'd/b': ['2'] }));
      const [before] = await tsDirs();
      expect(await w.write(payload(next))).toBe(true);
      const after = await tsDirs();
      expect(after).toHaveLength(1);
      expect(after[0]).not.toBe(before);
      for (const [p, [data, mode]] of Object.entries(next)) {
        expect(await text(p)).toBe(data);
        expect((await readProjected(dir, p)).mode).toBe(mode ?? 0o644);
      }
    },
  );

  it('removes the user-visible links of files no longer projected', async () => {
    const w = new AtomicWriter(dir);
    await w.write(payload({ a: ['1'], b: ['2'], 'd/x': ['3'] }));
    await w.write(payload({ a: ['1'] }));
    expect((await entries()).filter((e) => !e.startsWith('..'))).toEqual(['a']);
  });

  it('keeps the old version readable through an open path until the swap (rename of ..data)', async () => {
    const w = new AtomicWriter(dir);
    await w.write(payload({ a: ['old'] }));
    await w.write(payload({ a: ['new'] }));
    expect(await text('a')).toBe('new');
    expect(await readdir(dir)).not.toContain('..data_tmp');
  });

  it('cleans up what an interrupted write left (stale ..data_tmp and timestamped dirs)', async () => {
    const w = new AtomicWriter(dir);
    await w.write(payload({ a: ['1'] }));
    await mkdir(path.join(dir, '..2020_01_01_00_00_00.123456'));
    await writeFile(path.join(dir, '..2020_01_01_00_00_00.123456', 'a'), 'garbage');
    await w.write(payload({ a: ['2'] }));
    expect(await tsDirs()).toHaveLength(1);
    expect(await text('a')).toBe('2');
  });

  it('rejects an invalid payload without touching the directory', async () => {
    const w = new AtomicWriter(dir);
    await w.write(payload({ a: ['1'] }));
    const before = await entries();
    for (const bad of ['../escape', '/abs', '..data', 'x/../../y']) {
      const err = await w.write(payload({ [bad]: ['x'] })).catch((e: unknown) => e);
      expect(isInvalidPathError(err)).toBe(true);
    }
    expect(await entries()).toEqual(before);
  });

  it('writes an empty payload (an optional, missing object) and then fills it', async () => {
    const w = new AtomicWriter(dir);
    expect(await w.write(new Map())).toBe(true);
    expect(await w.write(new Map())).toBe(false);
    expect(await w.write(payload({ k: ['v'] }))).toBe(true);
    expect(await text('k')).toBe('v');
  });
});
