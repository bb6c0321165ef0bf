/**
 * Mounter: the few mount operations volumes need (tmpfs for memory-backed emptyDirs and for volumes holding
 * secrets; bind mounts of opened subPaths, see subpath.ts), behind an interface so unit tests run without root. {@link SystemMounter} runs mount(8)/umount(8) and
 * reads /proc/self/mountinfo; the agent runs as root in the host's mount namespace (only its network namespace is
 * the site's), so containerd sees what it mounts.
 */
import { execFile } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TmpfsOptions {
  /** size= in bytes (0 or absent: the kernel's default, half the RAM; only pages in use count). */
  sizeBytes?: number;
}

export interface Mounter {
  /** Mount points at `dir` or below it, deepest first. */
  mountsUnder(dir: string): Promise<string[]>;
  /** Mounts a fresh tmpfs (nosuid, nodev) on `dir`, which exists. */
  mountTmpfs(dir: string, options?: TmpfsOptions): Promise<void>;
  /** Unmounts `dir` (lazily when it is busy). */
  unmount(dir: string): Promise<void>;
  /**
   * Bind-mounts `source` (a `/proc/<pid>/fd/<fd>` of an open descriptor) onto `target`, which exists and is of the
   * same kind. The source is not canonicalized: the kernel follows the descriptor, never a path resolved again.
   */
  bindMount(source: string, target: string): Promise<void>;
}

export class MountError extends Error {
  override name = 'MountError';
}

/** Mount points listed in a mountinfo text (field 5, octal escapes decoded). */
export function parseMountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
}

export function pointsUnder(points: string[], dir: string): string[] {
  const d = path.resolve(dir);
  return [...new Set(points.filter((p) => p === d || p.startsWith(`${d}/`)))].sort((a, b) => b.length - a.length);
}

export class SystemMounter implements Mounter {
  constructor(private readonly mountinfo = '/proc/self/mountinfo') {}

  async mountsUnder(dir: string): Promise<string[]> {
    return pointsUnder(parseMountPoints(await readFile(this.mountinfo, 'utf8')), dir);
  }

  async mountTmpfs(dir: string, options: TmpfsOptions = {}): Promise<void> {
    const opts = ['nosuid', 'nodev', ...(options.sizeBytes ? [`size=${Math.trunc(options.sizeBytes)}`] : [])].join(',');
    try {
      await exec('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir]);
    } catch (err) {
      throw new MountError(
        `mount -t tmpfs -o ${opts} tmpfs ${dir}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`,
        { cause: err },
      );
    }
  }

  async bindMount(source: string, target: string): Promise<void> {
    try {
      await exec('mount', ['--no-canonicalize', '--bind', source, target]);
    } catch (err) {
      throw new MountError(`mount --bind ${source} ${target}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`, {
        cause: err,
      });
    }
  }

  async unmount(dir: string): Promise<void> {
    try {
      await exec('umount', [dir]);
    } catch {
      try {
        await exec('umount', ['-l', dir]);
      } catch (err) {
        throw new MountError(`umount ${dir}: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`, { cause: err });
      }
    }
  }
}

/**
 * An in-memory Mounter for unit tests: records mounts, mounts nothing; inject a failure with failNext. A bind mount
 * records what its source resolved to when it was made (`binds`: target -> that path).
 */
export class FakeMounter implements Mounter {
  readonly mounted = new Map<string, TmpfsOptions>();
  readonly binds = new Map<string, string>();
  readonly calls: string[] = [];
  private failures: Error[] = [];

  failNext(err: Error = new MountError('injected mount failure')): void {
    this.failures.push(err);
  }

  async mountsUnder(dir: string): Promise<string[]> {
    return pointsUnder([...this.mounted.keys(), ...this.binds.keys()], dir);
  }

  async bindMount(source: string, target: string): Promise<void> {
    this.calls.push(`bind ${target}`);
    const err = this.failures.shift();
    if (err) throw err;
    this.binds.set(path.resolve(target), await realpath(source));
  }

  async mountTmpfs(dir: string, options: TmpfsOptions = {}): Promise<void> {
    this.calls.push(`mount ${dir}${options.sizeBytes ? ` size=${options.sizeBytes}` : ''}`);
    const err = this.failures.shift();
    if (err) throw err;
    this.mounted.set(path.resolve(dir), options);
  }

  async unmount(dir: string): Promise<void> {
    this.calls.push(`umount ${dir}`);
    this.mounted.delete(path.resolve(dir));
    this.binds.delete(path.resolve(dir));
  }
}
