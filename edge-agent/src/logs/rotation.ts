/**
 * Container log rotation, the kubelet's way (pkg/kubelet/logs/container_log_manager.go): every interval (10 s) each
 * running container's CRI log file (ContainerStatus.log_path) is checked; one at or above the maximum size is
 * rotated: rotated files of it beyond maxFiles - 2 are deleted (oldest first), the older rotated files are gzipped,
 * the current file is renamed to `<log>.<UTC time>` and CRI ReopenContainerLog makes containerd write a fresh file at
 * the path (when the reopen fails, the rename is undone). So a container's log directory holds at most maxFiles files
 * (the current one and maxFiles - 1 rotated), each at most maxSize plus what the container writes in one interval.
 * A log file missing at its path (a rename whose reopen failed before a restart) is reopened.
 *
 * {@link planRotation} is the pure decision; {@link ContainerLogRotator} lists, plans and acts, between start() and
 * stop(), or when runOnce() is called. Errors of one container are logged and counted and never stop the others.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { cri } from '@edgefarm/proto';
import type { RuntimeServiceClient } from '@edgefarm/cri';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { errorMessage, type Clock } from '../util/time.js';
import { Labels, MANAGED } from '../runtime/labels.js';

export interface LogRotationPolicy {
  /** A log file at or above this size is rotated (the kubelet's containerLogMaxSize, 10Mi). */
  maxSizeBytes: number;
  /** Files kept per container log, the current one included (containerLogMaxFiles, 5; at least 2). */
  maxFiles: number;
}

export const DEFAULT_LOG_ROTATION: LogRotationPolicy = { maxSizeBytes: 10 * 1024 * 1024, maxFiles: 5 };
export const DEFAULT_LOG_MONITOR_INTERVAL_MS = 10_000;

export const COMPRESS_SUFFIX = '.gz';
const TMP_SUFFIX = '.tmp';

/** Raised for a policy the rotator cannot work with. */
export class LogRotationError extends Error {
  override name = 'LogRotationError';
}

export function logRotationPolicyProblem(p: LogRotationPolicy): string {
  if (!Number.isSafeInteger(p.maxSizeBytes) || p.maxSizeBytes < 1) return `container log max size ${p.maxSizeBytes} is not a positive size`;
  if (!Number.isSafeInteger(p.maxFiles) || p.maxFiles < 2) return `container log max files ${p.maxFiles} must be at least 2`;
  return '';
}

/** `<log>.<time>` of a rotation at `nowMs`: UTC, fixed width (so names sort by time), millisecond resolution. */
export function rotatedName(logPath: string, nowMs: number): string {
  const iso = new Date(nowMs).toISOString(); // 2026-12-07T05:01:02.345Z
  const stamp = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}-${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 23)}`;
  return `${logPath}.${stamp}`;
}

export interface RotationPlan {
  /** Files to delete: temporaries, uncompressed files whose compressed copy exists, the oldest beyond maxFiles - 2. */
  remove: string[];
  /** Rotated files to gzip (each becomes `<file>.gz`). */
  compress: string[];
}

/**
 * What to do with the rotated files of one log (`siblings`: every file named `<log>.*`, full paths) before its
 * current file is rotated: the kubelet's cleanupUnusedLogs, removeExcessLogs and compression, in that order.
 */
export function planRotation(siblings: readonly string[], policy: LogRotationPolicy): RotationPlan {
  const remove: string[] = [];
  const set = new Set(siblings);
  let kept: string[] = [];
  for (const f of siblings) {
    if (f.endsWith(TMP_SUFFIX)) remove.push(f);
    else if (!f.endsWith(COMPRESS_SUFFIX) && set.has(f + COMPRESS_SUFFIX)) remove.push(f);
    else kept.push(f);
  }
  kept.sort((a, b) => stem(a).localeCompare(stem(b)) || a.localeCompare(b));
  const maxRotated = Math.max(0, policy.maxFiles - 2); // one for the current file, one for the file rotated now
  if (kept.length > maxRotated) {
    remove.push(...kept.slice(0, kept.length - maxRotated));
    kept = kept.slice(kept.length - maxRotated);
  }
  return { remove, compress: kept.filter((f) => !f.endsWith(COMPRESS_SUFFIX)) };
}

function stem(f: string): string {
  return f.endsWith(COMPRESS_SUFFIX) ? f.slice(0, -COMPRESS_SUFFIX.length) : f;
}

export type RotationRuntime = Pick<RuntimeServiceClient, 'listContainers' | 'containerStatus' | 'reopenContainerLog'>;

export interface LogRotatorDeps {
  runtime: RotationRuntime;
  clock: Clock;
  log: Logger;
  /** Where the rotator's counter is registered (the agent's registry); unset: not exported. */
  registry?: Registry;
}

export interface LogRotatorOptions extends Partial<LogRotationPolicy> {
  intervalMs?: number;
}

export interface RotationRun {
  checked: number;
  rotated: number;
  removed: number;
  failed: number;
}

export const ROTATION_RESULTS = ['rotated', 'reopened', 'error'] as const;

export class ContainerLogRotator {
  readonly policy: LogRotationPolicy;
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = true;
  private closing = false;
  private readonly rotations: Counter<'result'>;

  constructor(
    private readonly deps: LogRotatorDeps,
    options: LogRotatorOptions = {},
  ) {
    this.policy = {
      maxSizeBytes: options.maxSizeBytes ?? DEFAULT_LOG_ROTATION.maxSizeBytes,
      maxFiles: options.maxFiles ?? DEFAULT_LOG_ROTATION.maxFiles,
    };
    const problem = logRotationPolicyProblem(this.policy);
    if (problem) throw new LogRotationError(problem);
    this.intervalMs = options.intervalMs ?? DEFAULT_LOG_MONITOR_INTERVAL_MS;
    this.rotations = new Counter({
      name: 'edgefarm_agent_container_log_rotations_total',
      help: 'Container log rotations by result: rotated (renamed, containerd reopened it), reopened (a missing log file recreated), error.',
      labelNames: ['result'],
      registers: deps.registry ? [deps.registry] : [],
    });
    for (const r of ROTATION_RESULTS) this.rotations.inc({ result: r }, 0);
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.closing = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce()
        .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'container log rotation failed'))
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  /** One pass over the running managed containers. */
  async runOnce(): Promise<RotationRun> {
    const { runtime } = this.deps;
    const res = await runtime.listContainers({
      filter: { state: { state: cri.ContainerState.CONTAINER_RUNNING }, labelSelector: { [Labels.managed]: MANAGED } },
    });
    const run: RotationRun = { checked: 0, rotated: 0, removed: 0, failed: 0 };
    for (const c of res.containers) {
      if (this.closing) break;
      try {
        await this.checkContainer(c.id, run);
      } catch (err) {
        run.failed++;
        this.rotations.inc({ result: 'error' });
        this.deps.log.warn({ container: c.id, err: errorMessage(err) }, 'container log not rotated');
      }
    }
    return run;
  }

  private async checkContainer(id: string, run: RotationRun): Promise<void> {
    const { runtime } = this.deps;
    const status = (await runtime.containerStatus({ containerId: id })).status;
    const logPath = status?.logPath;
    if (!logPath || status.state !== cri.ContainerState.CONTAINER_RUNNING) return;
    run.checked++;
    const st = await stat(logPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (!st) {
      // renamed without a reopen (the agent stopped in between): containerd still writes to the renamed file
      await runtime.reopenContainerLog({ containerId: id });
      this.rotations.inc({ result: 'reopened' });
      return;
    }
    if (st.size < this.policy.maxSizeBytes) return;
    const plan = planRotation(await this.siblings(logPath), this.policy);
    for (const f of plan.remove) {
      await rm(f, { force: true });
      run.removed++;
    }
    for (const f of plan.compress) await compress(f);
    const rotated = rotatedName(logPath, this.deps.clock.now());
    if (
      await stat(rotated).then(
        () => true,
        () => false,
      )
    )
      return; // rotated in this very millisecond already
    await rename(logPath, rotated);
    try {
      await runtime.reopenContainerLog({ containerId: id });
    } catch (err) {
      await rename(rotated, logPath).catch((e: unknown) =>
        this.deps.log.warn({ container: id, err: errorMessage(e) }, 'rotated log not renamed back'),
      );
      throw err;
    }
    run.rotated++;
    this.rotations.inc({ result: 'rotated' });
  }

  private async siblings(logPath: string): Promise<string[]> {
    const dir = path.dirname(logPath);
    const prefix = `${path.basename(logPath)}.`;
    const names = await readdir(dir);
    return names.filter((n) => n.startsWith(prefix)).map((n) => path.join(dir, n));
  }
}

/** Gzips `file` into `<file>.gz` (through `<file>.gz.tmp`, renamed when complete) and removes `file`. */
async function compress(file: string): Promise<void> {
  const tmp = file + COMPRESS_SUFFIX + TMP_SUFFIX;
  try {
    await pipeline(createReadStream(file), createGzip(), createWriteStream(tmp, { mode: 0o640 }));
    await rename(tmp, file + COMPRESS_SUFFIX);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await rm(file, { force: true });
}
