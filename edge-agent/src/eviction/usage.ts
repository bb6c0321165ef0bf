/**
 * Disk usage of a directory tree, as `du -s -x -B1` counts it: the blocks allocated to every file, directory and
 * symlink (st_blocks * 512; a hard-linked file once), never following a symlink (lstat) and never crossing into another
 * file system mounted below it (a different st_dev is not entered). Bounded work: at most `maxEntries` entries are
 * looked at; past that the walk stops and says so (`complete: false`; the sum is then a lower bound, which is enough
 * to tell that a limit is exceeded). Entries that vanish while the walk runs (a container deleting files) are skipped.
 */
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';

export interface Usage {
  bytes: number;
  /** Entries looked at (the root included). */
  entries: number;
  /** False when the walk stopped at maxEntries or at `stopAbove` bytes: `bytes` is a lower bound. */
  complete: boolean;
}

export interface UsageOptions {
  /** Most entries looked at in one walk (default 100,000). */
  maxEntries?: number;
  /** Stop as soon as the sum exceeds this (a limit known to be exceeded needs no exact figure). */
  stopAbove?: number;
}

const gone = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** The usage of `root` (see the module comment); throws the file system's error only when `root` itself cannot be read. */
export async function diskUsage(root: string, options: UsageOptions = {}): Promise<Usage> {
  const maxEntries = options.maxEntries ?? 100_000;
  const stopAbove = options.stopAbove ?? Infinity;
  const top = await lstat(root);
  const dev = top.dev;
  const seen = new Set<string>();
  let bytes = top.blocks * 512;
  let entries = 1;
  if (!top.isDirectory()) return { bytes, entries, complete: true };
  const stack = [root];
  while (stack.length > 0) {
    const dir = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (gone(err)) continue;
      throw err;
    }
    for (const name of names) {
      if (entries >= maxEntries || bytes > stopAbove) return { bytes, entries, complete: false };
      const p = path.join(dir, name);
      let st;
      try {
        st = await lstat(p);
      } catch (err) {
        if (gone(err)) continue;
        throw err;
      }
      entries++;
      if (st.dev !== dev) continue; // a mount point below: another file system, not this directory's usage
      if (st.nlink > 1 && !st.isDirectory()) {
        const id = `${st.ino}`;
        if (seen.has(id)) continue;
        seen.add(id);
      }
      bytes += st.blocks * 512;
      if (st.isDirectory()) stack.push(p);
    }
  }
  return { bytes, entries, complete: bytes <= stopAbove };
}
