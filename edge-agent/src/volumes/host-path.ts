/**
 * hostPath volumes: the kubelet's type check (pkg/volume/hostpath checkType), with its messages. DirectoryOrCreate
 * creates the directory (0755, parents too); FileOrCreate creates an empty file (0644; its directory must exist,
 * as in Kubernetes). Directory, File, Socket, CharDevice and BlockDevice must exist and be of that kind. An empty
 * type checks nothing (the runtime creates a missing directory when it mounts it).
 */
import { mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Stats } from 'node:fs';
import type { edge } from '@edgefarm/proto';
import { VolumeError } from './projection.js';

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

async function statOrNull(p: string): Promise<Stats | null> {
  try {
    return await stat(p);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

const KINDS: Record<string, { ok: (s: Stats) => boolean; what: string }> = {
  Directory: { ok: (s) => s.isDirectory(), what: 'a directory' },
  DirectoryOrCreate: { ok: (s) => s.isDirectory(), what: 'a directory' },
  File: { ok: (s) => s.isFile(), what: 'a file' },
  FileOrCreate: { ok: (s) => s.isFile(), what: 'a file' },
  Socket: { ok: (s) => s.isSocket(), what: 'a socket file' },
  CharDevice: { ok: (s) => s.isCharacterDevice(), what: 'a character device' },
  BlockDevice: { ok: (s) => s.isBlockDevice(), what: 'a block device' },
};

/** Checks (and for the *OrCreate types, creates) a hostPath; throws a {@link VolumeError} with the kubelet's message. */
export async function checkHostPath(volume: edge.HostPathVolume): Promise<void> {
  const p = volume.path;
  if (!path.isAbsolute(p)) throw new VolumeError(`hostPath ${JSON.stringify(p)} is not an absolute path`);
  if (volume.type === '') return;
  const kind = KINDS[volume.type];
  if (!kind) throw new VolumeError(`${volume.type} is an invalid volume type`);
  let st = await statOrNull(p);
  if (!st && volume.type === 'DirectoryOrCreate') {
    await mkdir(p, { recursive: true, mode: 0o755 });
    st = await statOrNull(p);
  } else if (!st && volume.type === 'FileOrCreate') {
    try {
      await (await open(p, 'a', 0o644)).close();
    } catch (err) {
      throw new VolumeError(`hostPath type check failed: ${(err as Error).message}`, { cause: err });
    }
    st = await statOrNull(p);
  }
  if (!st || !kind.ok(st)) throw new VolumeError(`hostPath type check failed: ${p} is not ${kind.what}`);
}
