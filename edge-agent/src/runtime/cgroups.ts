import { readdir, rmdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * The cgroup hierarchies under `root` (one directory per controller on cgroup v1) and `parent` made relative;
 * undefined when `parent` is empty or escapes with `..`, or `root` cannot be read.
 */
async function hierarchiesOf(root: string, parent: string): Promise<{ rel: string; hierarchies: string[] } | undefined> {
  const rel = parent.replace(/^\/+/, '');
  if (!rel || rel.split('/').includes('..')) return undefined;
  try {
    const entries = await readdir(root, { withFileTypes: true });
    return { rel, hierarchies: entries.filter((d) => d.isDirectory()).map((d) => path.join(root, d.name)) };
  } catch {
    return undefined;
  }
}

/**
 * Removes a pod's cgroupfs parent (e.g. /edgefarm/node1/pod<uid>) from every hierarchy under `root` (cgroup v1: one
 * per controller; v2: the unified one). runc removes each container's own cgroup but never the parents it created,
 * so without this every pod would leave empty directories behind. Best effort: busy or missing ones are skipped.
 */
export async function removePodCgroup(root: string, parent: string, log: Logger): Promise<void> {
  const found = await hierarchiesOf(root, parent);
  if (!found) return;
  const { rel, hierarchies } = found;
  for (const dir of [root, ...hierarchies]) {
    try {
      await rmdir(path.join(dir, rel));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EBUSY' && code !== 'ENOTEMPTY' && code !== 'ENOTDIR') {
        log.debug({ err, dir, parent }, 'could not remove pod cgroup');
      }
    }
  }
}

/** Removes a cgroupfs subtree (empty cgroups only, deepest first) from every hierarchy under `root`. Best effort. */
export async function removeCgroupTree(root: string, parent: string, log: Logger): Promise<void> {
  const found = await hierarchiesOf(root, parent);
  if (!found) return;
  const { rel, hierarchies } = found;
  const walk = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
    try {
      await rmdir(dir);
    } catch (err) {
      log.debug({ err, dir }, 'could not remove cgroup');
    }
  };
  for (const h of hierarchies) await walk(path.join(h, rel));
}
