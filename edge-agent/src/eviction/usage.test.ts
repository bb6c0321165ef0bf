import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { diskUsage } from './usage.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-usage-'));
  await mkdir(path.join(tmp, 'vol', 'a', 'b'), { recursive: true });
  await mkdir(path.join(tmp, 'big'));
});
afterEach(() => rm(tmp, { recursive: true, force: true }));

const MiB = 1024 * 1024;

describe('diskUsage', () => {
  it('counts allocated blocks of files and directories, a hard link once', async () => {
    const vol = path.join(tmp, 'vol');
    const empty = await diskUsage(vol);
    await writeFile(path.join(vol, 'a', 'b', 'f'), Buffer.alloc(2 * MiB, 1));
    await link(path.join(vol, 'a', 'b', 'f'), path.join(vol, 'a', 'hard'));
    const u = await diskUsage(vol);
    expect(u.complete).toBe(true);
    expect(u.entries).toBe(5); // vol, a, a/b, a/b/f, a/hard
    expect(u.bytes - empty.bytes).toBeGreaterThanOrEqual(2 * MiB);
    expect(u.bytes - empty.bytes).toBeLessThan(3 * MiB);
  });

  it('never follows a symlink (a link to a big directory costs only itself)', async () => {
    await writeFile(path.join(tmp, 'big', 'f'), Buffer.alloc(4 * MiB, 1));
    await symlink(path.join(tmp, 'big'), path.join(tmp, 'vol', 'link'));
    await symlink(path.join(tmp, 'big', 'f'), path.join(tmp, 'vol', 'flink'));
    expect((await diskUsage(path.join(tmp, 'vol'))).bytes).toBeLessThan(MiB);
  });

  it('bounded: stops at maxEntries, or once past stopAbove, with a lower bound', async () => {
    const vol = path.join(tmp, 'vol');
    for (let i = 0; i < 50; i++) await writeFile(path.join(vol, `f${i}`), Buffer.alloc(8192, 1));
    const capped = await diskUsage(vol, { maxEntries: 10 });
    expect(capped).toMatchObject({ entries: 10, complete: false });
    const full = await diskUsage(vol);
    expect(full.entries).toBe(53);
    const early = await diskUsage(vol, { stopAbove: 64 * 1024 });
    expect(early.complete).toBe(false);
    expect(early.bytes).toBeGreaterThan(64 * 1024);
    expect(early.entries).toBeLessThan(full.entries);
  });

  it('a missing root throws; a plain file is its own usage', async () => {
    await expect(diskUsage(path.join(tmp, 'nope'))).rejects.toThrow(/ENOENT/);
    await writeFile(path.join(tmp, 'file'), Buffer.alloc(8192, 1));
    expect(await diskUsage(path.join(tmp, 'file'))).toMatchObject({ entries: 1, complete: true });
  });
});
