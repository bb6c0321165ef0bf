import { existsSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SubPathError, openSubPath, subPathComponents } from './subpath.js';

let tmp: string;
let vol: string;
let outside: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-subpath-'));
  vol = path.join(tmp, 'vol');
  outside = path.join(tmp, 'outside');
  await mkdir(vol);
  await chmod(vol, 0o777); // an emptyDir's mode
  await mkdir(outside);
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

/** What the descriptor names now (the kernel's view of the open file). */
async function openedPath(subPath: string, opts: Parameters<typeof openSubPath>[2] = { create: true }): Promise<string> {
  const o = await openSubPath(vol, subPath, opts);
  try {
    return readlinkSync(`/proc/self/fd/${o.fd}`);
  } finally {
    o.close();
  }
}
const reasonOf = (err: unknown): string | undefined => (err instanceof SubPathError ? err.reason : undefined);

describe('safe subPath', () => {
  it('lexical: relative, no .., no NUL; empty and . components dropped', () => {
    expect(subPathComponents('a//./b/')).toEqual(['a', 'b']);
    for (const bad of ['/etc', '../x', 'a/../../b', 'a\0b'])
      expect(reasonOf((() => { try { subPathComponents(bad); } catch (e) { return e; } })())).toBe('invalid'); // prettier-ignore
  });

  it('creates missing directories with the volume mode and opens them', async () => {
    expect(await openedPath('a/b/c')).toBe(path.join(vol, 'a/b/c'));
    for (const d of ['a', 'a/b', 'a/b/c']) expect((await stat(path.join(vol, d))).mode & 0o777).toBe(0o777);
  });

  it('opens an existing file as the last component; a file in the middle is refused', async () => {
    await writeFile(path.join(vol, 'f'), 'x');
    expect(await openedPath('f')).toBe(path.join(vol, 'f'));
    expect(reasonOf(await openedPath('f/g').catch((e: unknown) => e))).toBe('not-directory');
  });

  it('a symlink leaving the volume is refused before anything is created', async () => {
    await symlink(outside, path.join(vol, 'evil'));
    expect(reasonOf(await openedPath('evil/x/y').catch((e: unknown) => e))).toBe('outside');
    expect(existsSync(path.join(outside, 'x'))).toBe(false);
    await symlink('../outside', path.join(vol, 'rel'));
    expect(reasonOf(await openedPath('rel').catch((e: unknown) => e))).toBe('outside');
  });

  it('a dangling symlink is never created through', async () => {
    await symlink(path.join(outside, 'made'), path.join(vol, 'dangling'));
    expect(reasonOf(await openedPath('dangling/x').catch((e: unknown) => e))).toBe('symlink');
    expect(existsSync(path.join(outside, 'made'))).toBe(false);
  });

  it('the race: a component swapped for a symlink after the resolution is refused, nothing created outside', async () => {
    await mkdir(path.join(vol, 'a'));
    const swap = async (): Promise<void> => {
      await rename(path.join(vol, 'a'), path.join(vol, 'moved'));
      await symlink(outside, path.join(vol, 'a'));
    };
    const err = await openedPath('a/new', { create: true, afterResolve: swap }).catch((e: unknown) => e);
    expect(reasonOf(err)).toBe('symlink');
    expect((err as Error).message).toBe('unexpected symlink found "a" in the volume');
    expect(existsSync(path.join(outside, 'new'))).toBe(false);
  });

  it('the race on a missing component: a symlink planted where mkdir was to create is refused', async () => {
    const plant = (): Promise<void> => symlink(outside, path.join(vol, 'late'));
    const err = await openedPath('late/x', { create: true, afterResolve: plant }).catch((e: unknown) => e);
    expect(reasonOf(err)).toBe('symlink');
    expect(existsSync(path.join(outside, 'x'))).toBe(false);
  });

  it('without create, a missing path is an error', async () => {
    expect(reasonOf(await openedPath('nope', { create: false }).catch((e: unknown) => e))).toBe('io');
  });
});
