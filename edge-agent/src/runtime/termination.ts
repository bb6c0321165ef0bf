/**
 * Termination messages as the kubelet reads them (kuberuntime_container.go getTerminationMessage and
 * readLastStringFromContainerLogs): once a container has exited, the last 4096 bytes of the host file mounted at its
 * terminationMessagePath; with FallbackToLogsOnError, an empty (or missing) file and a non-zero exit, the last 80
 * lines of its CRI log, at most their last 2048 bytes. The result is appended to the runtime's own message
 * ("<runtime message>: <termination message>").
 */
import { open } from 'node:fs/promises';

export const MAX_TERMINATION_MESSAGE_BYTES = 4096;
export const MAX_LOG_LINES = 80;
export const MAX_LOG_BYTES = 2048;

export interface ExitedContainerInfo {
  exitCode: number;
  reason: string;
  /** The container's terminationMessagePath and policy (from its annotations). */
  path: string;
  policy: string;
  /** CRI status mounts (host path of the file mounted at `path`). */
  mounts: { containerPath: string; hostPath: string }[];
  /** Absolute path of the container's CRI log. */
  logPath: string;
}

/** The last `max` bytes of a file (ENOENT is rethrown). */
export async function readTail(file: string, max: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const len = Math.min(size, max);
    const buf = Buffer.alloc(len);
    const { bytesRead } = await fh.read(buf, 0, len, size - len);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/**
 * The messages of a CRI log (`<time> <stream> <F|P> <msg>` per line; P lines are partial and joined with the next),
 * last `lines` full lines, then the last `maxBytes` bytes of their text.
 */
export function tailCriLog(content: string, lines: number, maxBytes: number): string {
  const out: string[] = [];
  let partial = '';
  for (const raw of content.split('\n')) {
    if (!raw) continue;
    const m = /^\S+ (?:stdout|stderr) ([FP]) ?(.*)$/.exec(raw);
    if (!m) continue;
    if (m[1] === 'P') {
      partial += m[2];
      continue;
    }
    out.push(`${partial}${m[2]}\n`);
    partial = '';
  }
  if (partial) out.push(partial);
  const text = Buffer.from(out.slice(-lines).join(''), 'utf8');
  return text.subarray(Math.max(0, text.length - maxBytes)).toString('utf8');
}

/** How much of a log to read to find its last lines: lines are rarely longer than this on average. */
const LOG_READ_BYTES = 256 * 1024;

/** The termination message of an exited container ('' when there is none). Never throws. */
export async function readTerminationMessage(c: ExitedContainerInfo): Promise<string> {
  const fallback = c.policy === 'FallbackToLogsOnError' && c.exitCode !== 0 && c.reason !== 'ContainerCannotRun';
  let message = '';
  let checkLogs = fallback;
  const mount = c.path ? c.mounts.find((m) => m.containerPath === c.path) : undefined;
  if (mount) {
    try {
      const data = await readTail(mount.hostPath, MAX_TERMINATION_MESSAGE_BYTES);
      message = data.toString('utf8');
      checkLogs = fallback && data.length === 0;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        return `Error on reading termination log ${mount.hostPath}: ${(err as Error).message}`;
      }
    }
  }
  if (checkLogs && c.logPath) {
    try {
      message = tailCriLog((await readTail(c.logPath, LOG_READ_BYTES)).toString('utf8'), MAX_LOG_LINES, MAX_LOG_BYTES);
    } catch (err) {
      message = `Error on reading termination message from logs: ${(err as Error).message}`;
    }
  }
  return message;
}

/** The runtime's message enriched with the termination message, as the kubelet joins them. */
export function withTerminationMessage(runtimeMessage: string, termination: string): string {
  if (!termination) return runtimeMessage;
  return runtimeMessage ? `${runtimeMessage}: ${termination}` : termination;
}
