/**
 * Safe subPath: opens `<volume>/<subPath>` without ever following a symlink a container could plant or swap in, the
 * way the kubelet's pkg/volume/util/subpath/subpath_linux.go does (CVE-2017-1002101, CVE-2021-25741):
 *
 * 1. The subPath is checked lexically (relative, no `..` component, no NUL byte).
 * 2. The longest existing prefix of `<volume>/<subPath>` is resolved once (realpath; as the kubelet's
 *    filepath.EvalSymlinks), and must lie inside the volume's own real path: a symlink inside the volume that points
 *    inside it is allowed, one leaving it is refused.
 * 3. That resolved path is then walked again component by component from an open descriptor of the volume, each
 *    component opened with O_PATH|O_NOFOLLOW relative to its parent's descriptor (Node.js has no openat, so through
 *    `/proc/self/fd/<parent>/<component>`, which the kernel resolves from that open directory): a symlink met in this
 *    walk is refused ("unexpected symlink", as the kubelet's doSafeOpen), so one swapped in after step 2 is never
 *    followed. Missing components are created with mkdir (which never follows a final symlink) inside the open parent,
 *    then opened the same way; only directories created here get the volume's mode (as doSafeMakeDir).
 * 4. The caller bind-mounts `/proc/<pid>/fd/<fd>` of the final descriptor (mount(8) told not to canonicalize) onto a
 *    path of its own and hands that to the runtime: what the container gets is the directory or file opened, whatever
 *    the volume's path names by then.
 *
 * Every refusal is a {@link SubPathError} with a bounded `reason` (for the rejected metric) and a message without the
 * host's paths beyond the subPath itself.
 */
import { closeSync, constants, fstat, open, type Stats } from 'node:fs';
import { chmod, mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/** Raw descriptors (a FileHandle would be closed by the garbage collector under us). */
const openFd = promisify(open);
const fstatFd = promisify(fstat);

/** O_PATH on Linux x86_64 and arm64 (node's fs.constants leaves it out). */
const O_PATH = 0o10000000;
const { O_NOFOLLOW, O_DIRECTORY } = constants;
const O_CLOEXEC = 0o2000000;

export type SubPathRejectReason = 'invalid' | 'outside' | 'symlink' | 'not-directory' | 'io';
export const SUBPATH_REJECT_REASONS: readonly SubPathRejectReason[] = ['invalid', 'outside', 'symlink', 'not-directory', 'io'];

export class SubPathError extends Error {
  override name = 'SubPathError';
  constructor(
    message: string,
    readonly reason: SubPathRejectReason,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The components of a subPath ('' and '.' dropped), or a {@link SubPathError} ('invalid'). */
export function subPathComponents(subPath: string): string[] {
  if (subPath.includes('\0')) throw new SubPathError(`subPath ${JSON.stringify(subPath)} must not contain a NUL byte`, 'invalid');
  const parts = subPath.split('/');
  if (path.posix.isAbsolute(subPath) || parts.includes('..'))
    throw new SubPathError(`subPath ${JSON.stringify(subPath)} must be a relative path without '..'`, 'invalid');
  return parts.filter((p) => p !== '' && p !== '.');
}

/** True when `p` is `base` or below it (both absolute and normalized). */
export function within(base: string, p: string): boolean {
  return p === base || p.startsWith(base === '/' ? '/' : `${base}/`);
}

/** An open O_PATH descriptor of the subPath's directory or file; close it once it is mounted. */
export interface OpenedSubPath {
  fd: number;
  isDirectory: boolean;
  close(): void;
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException)?.code;

function io(what: string, err: unknown): SubPathError {
  return new SubPathError(`${what}: ${code(err) ?? (err as Error)?.message ?? String(err)}`, 'io', { cause: err });
}

/** realpath of the longest existing prefix of `comps` under `base`, and the components after it. */
async function existingPrefix(base: string, comps: string[]): Promise<{ resolved: string; rest: string[] }> {
  for (let k = comps.length; k > 0; k--) {
    try {
      return { resolved: await realpath(path.join(base, ...comps.slice(0, k))), rest: comps.slice(k) };
    } catch (err) {
      if (code(err) !== 'ENOENT' && code(err) !== 'ENOTDIR' && code(err) !== 'ELOOP') throw io('cannot resolve the subPath', err);
    }
  }
  return { resolved: base, rest: comps };
}

function openNoFollow(p: string): Promise<number> {
  return openFd(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
}

function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * Opens `<base>/<subPath>` safely (see the module comment), creating missing directories when `create` is set with
 * the volume's mode. `base` is trusted (the agent's own volume directory, or a hostPath the pod's author named).
 */
export async function openSubPath(
  base: string,
  subPath: string,
  opts: {
    create: boolean;
    /** Test seam: runs between the resolution (step 2) and the walk (step 3). */ afterResolve?: () => Promise<void>;
  },
): Promise<OpenedSubPath> {
  const comps = subPathComponents(subPath);
  let realBase: string;
  try {
    realBase = await realpath(base);
  } catch (err) {
    throw io('cannot resolve the volume', err);
  }
  const { resolved, rest } = await existingPrefix(realBase, comps);
  if (!within(realBase, resolved)) throw new SubPathError(`subPath ${JSON.stringify(subPath)} resolves outside the volume`, 'outside');
  await opts.afterResolve?.();
  const walk = [
    ...path
      .relative(realBase, resolved)
      .split('/')
      .filter((c) => c !== ''),
    ...rest,
  ];
  let mode: number;
  let fd: number;
  try {
    fd = await openFd(realBase, O_PATH | O_CLOEXEC | O_DIRECTORY);
    mode = (await stat(realBase)).mode & 0o7777;
  } catch (err) {
    throw io('cannot open the volume', err);
  }
  let isDirectory = true;
  try {
    for (const [i, comp] of walk.entries()) {
      const here = `/proc/self/fd/${fd}/${comp}`;
      const shown = JSON.stringify(walk.slice(0, i + 1).join('/'));
      let child: number;
      let created = false;
      try {
        child = await openNoFollow(here);
      } catch (err) {
        if (code(err) !== 'ENOENT' || !opts.create) throw io(`cannot open ${shown} in the volume`, err);
        try {
          await mkdir(here, { mode });
          created = true;
        } catch (e) {
          if (code(e) !== 'EEXIST') throw io(`cannot create ${shown} in the volume`, e);
        }
        try {
          child = await openNoFollow(here);
        } catch (e) {
          throw io(`cannot open ${shown} in the volume`, e);
        }
      }
      closeFd(fd);
      fd = child;
      let st: Stats;
      try {
        st = await fstatFd(fd);
      } catch (e) {
        throw io(`cannot stat ${shown} in the volume`, e);
      }
      if (st.isSymbolicLink()) throw new SubPathError(`unexpected symlink found ${shown} in the volume`, 'symlink');
      isDirectory = st.isDirectory();
      if (!isDirectory && i < walk.length - 1) throw new SubPathError(`${shown} in the volume is not a directory`, 'not-directory');
      if (created && isDirectory) {
        try {
          await chmod(`/proc/self/fd/${fd}`, mode); // the volume's mode, whatever the umask (doSafeMakeDir's Fchmod)
        } catch (e) {
          throw io(`cannot set the mode of ${shown}`, e);
        }
      }
    }
  } catch (err) {
    closeFd(fd);
    throw err instanceof SubPathError ? err : io('cannot open the subPath', err);
  }
  const opened = fd;
  return { fd: opened, isDirectory, close: () => closeFd(opened) };
}
