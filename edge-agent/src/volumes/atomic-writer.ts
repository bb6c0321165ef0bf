/**
 * AtomicWriter: projects a set of files into a directory the way the kubelet's AtomicWriter
 * (pkg/volume/util/atomic_writer.go) does, so a reader never sees a half-written update:
 *
 *   <dir>/..2026_01_02_15_04_05.123456789/   the real files (a new timestamped directory per update)
 *   <dir>/..data -> ..2026_01_02_15_04_05.123456789   swapped atomically (symlink ..data_tmp, then rename)
 *   <dir>/<top-level name> -> ..data/<top-level name>  what users see (nested paths go through their top directory)
 *
 * write() does nothing when every file already has its content and mode and no file is to be removed; otherwise it
 * writes the whole payload into a new timestamped directory, creates missing user-visible links, swaps ..data,
 * removes user-visible links of files no longer in the payload and then the previous timestamped directory (and
 * any left by an interrupted write). Paths are validated as the kubelet validates them. The caller serializes
 * writes to one directory. One difference: the kubelet compares content only; this also compares file modes.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rename, rm, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface FileProjection {
  data: Uint8Array;
  /** Permission bits (e.g. 0o644). */
  mode: number;
}

/** Relative path -> file. */
export type Payload = Map<string, FileProjection>;

const DATA_DIR = '..data';
const NEW_DATA_DIR = '..data_tmp';
const MAX_FILE_NAME = 255;
const MAX_PATH = 4096;

/** A payload path the writer refuses (absolute, with '..', too long...). */
export class InvalidPathError extends Error {
  override name = 'InvalidPathError';
}
export function isInvalidPathError(err: unknown): err is InvalidPathError {
  return err instanceof InvalidPathError;
}

/** The kubelet's validatePath: relative, no '..' element, not starting with '..', name and length limits. */
export function validatePath(p: string): void {
  if (p === '') throw new InvalidPathError(`invalid path: must not be empty: "${p}"`);
  if (path.posix.isAbsolute(p)) throw new InvalidPathError(`invalid path: must be relative path: ${p}`);
  if (p.length > MAX_PATH) throw new InvalidPathError(`invalid path: must be less than or equal to ${MAX_PATH} characters`);
  const items = p.split('/');
  for (const item of items) {
    if (item === '..') throw new InvalidPathError(`invalid path: must not contain '..': ${p}`);
    if (item.length > MAX_FILE_NAME)
      throw new InvalidPathError(`invalid path: filenames must be less than or equal to ${MAX_FILE_NAME} characters`);
  }
  if (items[0]!.startsWith('..') && items[0]!.length > 2) throw new InvalidPathError(`invalid path: must not start with '..': ${p}`);
}

function cleanPayload(payload: Payload): Payload {
  const clean: Payload = new Map();
  for (const [p, f] of payload) {
    validatePath(p);
    const c = path.posix.normalize(p).replace(/\/+$/, '');
    if (c === '.' || c === '') throw new InvalidPathError(`invalid path: must name a file: ${p}`);
    clean.set(c, f);
  }
  return clean;
}

const isNotFound = (err: unknown): boolean => (err as NodeJS.ErrnoException)?.code === 'ENOENT';

/** `..2006_01_02_15_04_05.` prefix of a timestamped directory (UTC), as the kubelet names them. */
export function timestampPrefix(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `..${d.getUTCFullYear()}_${p(d.getUTCMonth() + 1)}_${p(d.getUTCDate())}_${p(d.getUTCHours())}_${p(d.getUTCMinutes())}_${p(d.getUTCSeconds())}.`;
}

export class AtomicWriter {
  constructor(
    private readonly targetDir: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Projects the payload; resolves true when it wrote, false when the directory already held it. */
  async write(payload: Payload): Promise<boolean> {
    const files = cleanPayload(payload);
    const dataDirPath = path.join(this.targetDir, DATA_DIR);
    let oldTsDir = '';
    try {
      oldTsDir = await readlink(dataDirPath);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    const oldTsPath = oldTsDir ? path.join(this.targetDir, oldTsDir) : '';

    let toRemove = new Set<string>();
    if (oldTsPath) {
      toRemove = await this.pathsToRemove(files, oldTsPath);
      if (!(await this.shouldWrite(files, oldTsPath)) && toRemove.size === 0) return false;
    }

    const tsDir = await mkdtemp(path.join(this.targetDir, timestampPrefix(this.now())));
    try {
      await chmod(tsDir, 0o755);
      for (const [p, f] of files) {
        const full = path.join(tsDir, p);
        await mkdir(path.dirname(full), { recursive: true, mode: 0o755 });
        await writeFile(full, f.data, { mode: f.mode });
        await chmod(full, f.mode); // writeFile's mode is masked by the umask
      }
      await this.createUserVisibleLinks(files);
      const newDataDirPath = path.join(this.targetDir, NEW_DATA_DIR);
      await rm(newDataDirPath, { force: true });
      await symlink(path.basename(tsDir), newDataDirPath);
      await rename(newDataDirPath, dataDirPath);
    } catch (err) {
      await rm(tsDir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }

    for (const p of toRemove) {
      if (!p.includes('/'))
        await unlink(path.join(this.targetDir, p)).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    }
    // The previous timestamped directory, and any an interrupted write left behind.
    const current = path.basename(tsDir);
    for (const e of await readdir(this.targetDir, { withFileTypes: true })) {
      if (e.isDirectory() && e.name.startsWith('..') && e.name !== current)
        await rm(path.join(this.targetDir, e.name), { recursive: true, force: true });
    }
    return true;
  }

  /** Files whose content or mode differ from the payload, or that are missing. */
  private async shouldWrite(files: Payload, oldTsPath: string): Promise<boolean> {
    for (const [p, f] of files) {
      const full = path.join(oldTsPath, p);
      try {
        const st = await lstat(full);
        if (!st.isFile() || (st.mode & 0o7777) !== f.mode) return true;
        if (!Buffer.from(f.data).equals(await readFile(full))) return true;
      } catch (err) {
        if (isNotFound(err)) return true;
        throw err;
      }
    }
    return false;
  }

  /** Paths of the current version (files and directories) that are not in the payload, nor a parent of a payload file. */
  private async pathsToRemove(files: Payload, oldTsPath: string): Promise<Set<string>> {
    const old = new Set<string>();
    try {
      for (const e of await readdir(oldTsPath, { recursive: true })) old.add(String(e));
    } catch (err) {
      if (isNotFound(err)) return new Set();
      throw err;
    }
    const keep = new Set<string>();
    for (const p of files.keys()) {
      for (let sub = p; sub !== '.' && sub !== ''; sub = path.posix.dirname(sub)) keep.add(sub);
    }
    return new Set([...old].filter((p) => !keep.has(p)));
  }

  /** `<dir>/<first element>` -> `..data/<first element>` for every payload path that has no link yet. */
  private async createUserVisibleLinks(files: Payload): Promise<void> {
    for (const p of files.keys()) {
      const first = p.split('/')[0]!;
      const visible = path.join(this.targetDir, first);
      try {
        await lstat(visible);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await symlink(path.join(DATA_DIR, first), visible);
      }
    }
  }
}

/** Reads a projected directory back through its user-visible paths (for tests and diagnostics). */
export async function readProjected(dir: string, p: string): Promise<{ data: Buffer; mode: number }> {
  const full = path.join(dir, p);
  const [data, st] = await Promise.all([readFile(full), stat(full)]);
  return { data, mode: st.mode & 0o7777 };
}
