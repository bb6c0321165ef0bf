/** diskUsage does not cross into a file system mounted below the measured directory (a real tmpfs mount, as root). */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SystemMounter } from '../volumes/mounter.js';
import { diskUsage } from './usage.js';

const mounter = new SystemMounter();
let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-usage-'));
});
afterEach(async () => {
  for (const m of await mounter.mountsUnder(tmp)) await mounter.unmount(m);
  await rm(tmp, { recursive: true, force: true });
});

it('a mount below the directory is not counted', async () => {
  const inner = path.join(tmp, 'vol', 'mnt');
  await mkdir(inner, { recursive: true });
  await mounter.mountTmpfs(inner, { sizeBytes: 8 * 1024 * 1024 });
  await writeFile(path.join(inner, 'big'), Buffer.alloc(4 * 1024 * 1024, 1));
  expect((await diskUsage(inner)).bytes).toBeGreaterThanOrEqual(4 * 1024 * 1024); // it is there
  const u = await diskUsage(path.join(tmp, 'vol'));
  expect(u.bytes).toBeLessThan(1024 * 1024);
  expect(u.entries).toBe(2); // vol and the mount point, not what is inside it
});
