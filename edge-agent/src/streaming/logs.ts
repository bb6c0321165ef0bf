/**
 * Container logs at the edge: reads the CRI log file containerd writes (path from ContainerStatus.log_path) and
 * renders it the kubelet's way (cri-log.ts). Follow polls the file: new bytes are read as they come; a file renamed
 * away (rotation: a new file at the path) is read to its end and the new one from its start; a file that shrank
 * (truncation) is read again from its start; following ends once the container is no longer running and the file is
 * read to its end, or when the session ends. A file missing at the request is waited for a moment (a rotation
 * between its rename and containerd's reopen); only the current file is read, as the kubelet does.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Channel, cri, type edge } from '@edgefarm/proto';
import { type RuntimeServiceClient } from '@edgefarm/cri';
import { LineSplitter, LogRenderer, parseCriLogLine, tailStart, type RenderOptions } from './cri-log.js';
import { badRequest, notFound } from './errors.js';
import type { PodLocator, PodName } from './locator.js';
import { forward, type PreparedSession } from './session.js';

export interface LogReadOptions extends RenderOptions {
  follow: boolean;
  tailLines?: number;
}

export interface LogTiming {
  /** How often a followed file is checked for new bytes (default 100 ms). */
  pollMs?: number;
  /** How often a followed container's state is checked while the file is idle (default 1000 ms). */
  stateCheckMs?: number;
  /** How long after its start a container with an empty log is waited for before a read (default 1000 ms). */
  firstOutputMs?: number;
}

/**
 * A container that started a moment ago has often not written its first line yet: the site reports it running as
 * soon as the runtime does (a kubelet, through its relist, a second later), so a read right after "running" would
 * find an empty file. A read of a running container whose file is empty waits for its first bytes until
 * `firstOutputMs` after its start, then reads whatever there is.
 */
export async function firstOutput(path: string, startedAtNs: bigint, graceMs: number): Promise<void> {
  const until = Number(startedAtNs / 1_000_000n) + graceMs;
  while (Date.now() < until) {
    const size = await stat(path).then(
      (s) => s.size,
      () => 0,
    );
    if (size > 0) return;
    await sleep(Math.min(20, Math.max(1, until - Date.now())));
  }
}

const READ_BYTES = 64 * 1024;
const OUTPUT_BYTES = 32 * 1024;
const CONTAINER_RUNNING = cri.ContainerState.CONTAINER_RUNNING;

async function tailOffset(fh: FileHandle, size: number, lines: number): Promise<number> {
  for (let want = READ_BYTES; ; want *= 4) {
    const base = Math.max(0, size - want);
    const buf = Buffer.allocUnsafe(size - base);
    const { bytesRead } = await fh.read(buf, 0, buf.length, base);
    const at = tailStart(buf.subarray(0, bytesRead), base, lines);
    if (at !== undefined) return at;
  }
}

/** The rendered log of one container's file; `running` says whether the container still runs (for follow). */
export async function* readContainerLog(
  path: string,
  options: LogReadOptions,
  running: () => Promise<boolean>,
  signal: AbortSignal,
  timing: LogTiming = {},
): AsyncGenerator<Uint8Array> {
  const pollMs = timing.pollMs ?? 100;
  const stateCheckMs = timing.stateCheckMs ?? 1000;
  let fh = await open(path, 'r');
  try {
    let st = await fh.stat();
    let ino = st.ino;
    let pos = options.tailLines !== undefined ? await tailOffset(fh, st.size, options.tailLines) : 0;
    const lines = new LineSplitter();
    const renderer = new LogRenderer(options);
    let out: Uint8Array[] = [];
    let outBytes = 0;
    const emit = (line: Uint8Array) => {
      const e = parseCriLogLine(line);
      if (!e) return;
      for (const part of renderer.render(e)) {
        out.push(part);
        outBytes += part.length;
      }
    };
    const take = (): Buffer => {
      const b = Buffer.concat(out);
      out = [];
      outBytes = 0;
      return b;
    };
    let lastStateCheck = Date.now();
    let lastPass = false;
    let draining = false;
    // Without follow the log is the file as it was at the request: lines the container appends meanwhile would make
    // `tailLines: 3` answer 4 (seen in CI with a container writing a line every few ms).
    const end = options.follow ? Number.POSITIVE_INFINITY : st.size;
    while (!signal.aborted) {
      const buf = Buffer.allocUnsafe(READ_BYTES);
      const want = Math.min(READ_BYTES, end - pos);
      const { bytesRead } = want > 0 ? await fh.read(buf, 0, want, pos) : { bytesRead: 0 };
      if (bytesRead > 0) {
        pos += bytesRead;
        for (const line of lines.push(buf.subarray(0, bytesRead))) emit(line);
        if (renderer.full) break;
        if (outBytes >= OUTPUT_BYTES) yield take();
        continue;
      }
      if (outBytes > 0) yield take();
      if (!options.follow || lastPass) break;
      const now = await stat(path).catch(() => undefined);
      if (now && now.ino !== ino) {
        // Rotated (logs/rotation.ts: renamed, then containerd reopened the path). containerd wrote to the old file
        // until the reopen, possibly after the read above found its end: read it to its end once more, then continue
        // with the new one from its start.
        if (!draining) {
          draining = true;
          continue;
        }
        draining = false;
        for (const line of lines.flush()) emit(line);
        await fh.close();
        fh = await open(path, 'r');
        st = await fh.stat();
        ino = st.ino;
        pos = 0;
        continue;
      }
      if (now && now.size < pos) {
        lines.reset();
        pos = 0; // truncated
        continue;
      }
      if (Date.now() - lastStateCheck >= stateCheckMs) {
        lastStateCheck = Date.now();
        if (!(await running().catch(() => false))) {
          lastPass = true; // read what was written before it stopped, then end
          continue;
        }
      }
      try {
        await sleep(pollMs, undefined, { signal });
      } catch {
        break;
      }
    }
    if (!signal.aborted && !renderer.full) for (const line of lines.flush()) emit(line);
    if (outBytes > 0) yield take();
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function renderOptions(req: edge.LogsRequest): LogReadOptions {
  let sinceMs: number | undefined;
  if (req.sinceTime) {
    sinceMs = Date.parse(req.sinceTime);
    if (!Number.isFinite(sinceMs)) throw badRequest(`sinceTime "${req.sinceTime}" is not an RFC 3339 time`);
  } else if (req.sinceSeconds >= 0n) {
    if (req.sinceSeconds < 1n) throw badRequest('sinceSeconds must be greater than 0');
    sinceMs = Date.now() - Number(req.sinceSeconds) * 1000;
  }
  if (req.limitBytes === 0n || req.limitBytes < -1n) throw badRequest('limitBytes must be greater than 0');
  if (req.tailLines < -1n) throw badRequest('tailLines must be greater than or equal to 0');
  return {
    follow: req.follow,
    timestamps: req.timestamps,
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(req.limitBytes > 0n ? { limitBytes: Number(req.limitBytes) } : {}),
    ...(req.tailLines >= 0n ? { tailLines: Number(req.tailLines) } : {}),
  };
}

/** A rotation renames the file and then has containerd reopen it: a request in between waits for the new file. */
async function logFileExists(path: string): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    if (
      await stat(path).then(
        () => true,
        () => false,
      )
    )
      return true;
    if (attempt >= 10) return false;
    await sleep(20);
  }
}

/** Finds the container instance and its log file; the session streams it. */
export async function prepareLogs(
  runtime: RuntimeServiceClient,
  locator: PodLocator,
  p: PodName,
  container: string,
  req: edge.LogsRequest,
  timing: LogTiming = {},
): Promise<PreparedSession> {
  const options = renderOptions(req);
  const list = await locator.containers(p, container);
  if (list.length === 0) {
    await locator.sandbox(p);
    throw notFound(`container "${container}" in pod "${p.pod}" is not available`);
  }
  const target = req.previous ? list[1] : list[0];
  if (!target) throw notFound(`previous terminated container "${container}" in pod "${p.pod}" not found`);
  const status = (await runtime.containerStatus({ containerId: target.id })).status;
  const path = status?.logPath;
  if (!path) throw notFound(`container "${container}" in pod "${p.pod}" has no log file`);
  if (!(await logFileExists(path))) throw notFound(`log file of container "${container}" in pod "${p.pod}" not found`);
  const running = async () => (await runtime.containerStatus({ containerId: target.id })).status?.state === CONTAINER_RUNNING;
  if (status.state === CONTAINER_RUNNING && !req.previous) await firstOutput(path, status.startedAt, timing.firstOutputMs ?? 1000);
  return {
    inputs: [],
    abandon: () => undefined,
    run: async (link) => {
      const ac = new AbortController();
      void link.done.then(() => ac.abort());
      await forward(
        readContainerLog(path, { ...options, follow: options.follow && !req.previous }, running, ac.signal, timing),
        link,
        Channel.stdout,
      );
      return { exitCode: 0 };
    },
  };
}
