/**
 * Fuzz: hostile subPath strings against the safe resolver, over a real volume that holds symlinks leaving it
 * (absolute, relative, dangling) and staying inside. Invariants: only SubPathError is thrown, and whatever is opened
 * lies inside the volume; nothing is ever created outside it.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fc, fuzzAsyncProperty, hostileString } from '@edgefarm/testing/fuzz';
import { SubPathError, openSubPath, within } from './subpath.js';

let tmp: string;
let vol: string;
let outside: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-subpath-fuzz-'));
  vol = path.join(tmp, 'vol');
  outside = path.join(tmp, 'outside');
  await mkdir(path.join(vol, 'dir', 'sub'), { recursive: true });
  await chmod(vol, 0o777);
  await mkdir(outside);
  await writeFile(path.join(vol, 'file'), 'x');
  await symlink(outside, path.join(vol, 'abs'));
  await symlink('../outside', path.join(vol, 'rel'));
  await symlink('dir/sub', path.join(vol, 'in'));
  await symlink('/nonexistent-ef', path.join(vol, 'dangling'));
  await symlink(path.join(outside, 'made'), path.join(vol, 'dangling-out'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const pieces = ['abs', 'rel', 'in', 'dangling', 'dangling-out', 'dir', 'sub', 'file', 'new', '.', '..', '', '/'];
const subPaths = fc.oneof(
  hostileString(),
  fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 6 }).map((a) => a.join('/')),
  fc.tuple(fc.array(fc.constantFrom(...pieces), { maxLength: 4 }), hostileString()).map(([a, s]) => [...a, s].join('/')),
);

it('subPath: hostile strings never escape the volume and throw only SubPathError', async () => {
  const r = await fuzzAsyncProperty('volumes/subpath', [subPaths], async (subPath) => {
    let opened;
    try {
      opened = await openSubPath(vol, subPath, { create: true });
    } catch (err) {
      if (!(err instanceof SubPathError)) throw new Error(`not the module's own error: ${String(err)}`, { cause: err });
      return true;
    }
    try {
      const at = readlinkSync(`/proc/self/fd/${opened.fd}`);
      if (!within(vol, at)) throw new Error(`opened ${at}, outside the volume`);
    } finally {
      opened.close();
    }
    if (readdirSync(outside).length > 0) throw new Error('something was created outside the volume');
    return true;
  });
  process.stdout.write(`${JSON.stringify(r)}\n`);
}, 600_000);
