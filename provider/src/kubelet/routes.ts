/**
 * The kubelet API's paths and queries (pkg/kubelet/server/server.go), parsed into plain records; invalid input is
 * a {@link BadRequestError} (answered 400). Pure: no I/O.
 */
import type { LogOptions, StreamOptions } from './edge-streams.js';

export class BadRequestError extends Error {
  override name = 'BadRequestError';
}
export function isBadRequestError(err: unknown): err is BadRequestError {
  return err instanceof BadRequestError;
}

export type PodRoute =
  | { kind: 'containerLogs'; namespace: string; pod: string; container: string }
  | { kind: 'exec' | 'attach'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string; uid?: string };

/** exec/attach/portForward/containerLogs paths; undefined for any other path. Throws on a malformed one. */
export function parsePodRoute(pathname: string): PodRoute | undefined {
  const parts = pathname.split('/').slice(1);
  const kind = parts[0];
  const seg = parts.slice(1).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      throw new BadRequestError(`malformed path segment "${p}"`);
    }
  });
  if (seg.some((s) => s === '')) throw new BadRequestError(`empty segment in ${pathname}`);
  const [namespace, pod] = seg;
  switch (kind) {
    case 'containerLogs':
      if (seg.length !== 3) throw new BadRequestError('expected /containerLogs/{namespace}/{pod}/{container}');
      return { kind, namespace: namespace!, pod: pod!, container: seg[2]! };
    case 'exec':
    case 'attach':
      if (seg.length === 3) return { kind, namespace: namespace!, pod: pod!, container: seg[2]! };
      if (seg.length === 4) return { kind, namespace: namespace!, pod: pod!, uid: seg[2]!, container: seg[3]! };
      throw new BadRequestError(`expected /${kind}/{namespace}/{pod}[/{uid}]/{container}`);
    case 'portForward':
      if (seg.length === 2) return { kind, namespace: namespace!, pod: pod! };
      if (seg.length === 3) return { kind, namespace: namespace!, pod: pod!, uid: seg[2]! };
      throw new BadRequestError('expected /portForward/{namespace}/{pod}[/{uid}]');
    default:
      return undefined;
  }
}

function bool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  if (v === '') return true;
  if (['true', '1'].includes(v.toLowerCase())) return true;
  if (['false', '0'].includes(v.toLowerCase())) return false;
  throw new BadRequestError(`${name}=${v} is not a boolean`);
}

function int(q: URLSearchParams, name: string, min: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^-?\d+$/.test(v) || Number(v) < min || !Number.isSafeInteger(Number(v)))
    throw new BadRequestError(`${name}=${v} must be an integer >= ${min}`);
  return Number(v);
}

/** PodLogOptions from the /containerLogs query, validated as the apiserver validates them. */
export function parseLogOptions(q: URLSearchParams): LogOptions {
  const opts: LogOptions = { follow: bool(q, 'follow'), previous: bool(q, 'previous'), timestamps: bool(q, 'timestamps') };
  const tail = int(q, 'tailLines', 0);
  if (tail !== undefined) opts.tailLines = tail;
  const since = int(q, 'sinceSeconds', 1);
  if (since !== undefined) opts.sinceSeconds = since;
  const limit = int(q, 'limitBytes', 1);
  if (limit !== undefined) opts.limitBytes = limit;
  const sinceTime = q.get('sinceTime');
  if (sinceTime !== null) {
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(sinceTime) || Number.isNaN(Date.parse(sinceTime))) {
      throw new BadRequestError(`sinceTime=${sinceTime} is not an RFC 3339 time`);
    }
    opts.sinceTime = sinceTime;
  }
  if (opts.sinceSeconds !== undefined && opts.sinceTime !== undefined)
    throw new BadRequestError('at most one of sinceTime or sinceSeconds may be specified');
  return opts;
}

/**
 * Which streams an exec or attach has, from the query as the apiserver writes it toward a kubelet (kubelet
 * NewOptions): input, output, error and tty, each on when "1"; at least one of the three streams; no stderr with a
 * tty (it is merged into the terminal).
 */
export function parseStreamOptions(q: URLSearchParams): StreamOptions {
  const on = (name: string) => q.get(name) === '1';
  const tty = on('tty');
  const opts: StreamOptions = { stdin: on('input'), stdout: on('output'), stderr: on('error') && !tty, tty };
  if (!opts.stdin && !opts.stdout && !on('error')) throw new BadRequestError('you must specify at least 1 of stdin, stdout, stderr');
  return opts;
}

/** The command of an exec: every `command` parameter, in order; at least one. */
export function parseCommand(q: URLSearchParams): string[] {
  const command = q.getAll('command');
  if (command.length === 0 || command[0] === '') throw new BadRequestError('you must specify a command (the command query parameter)');
  return command;
}

/** A port as the SPDY port-forward `port` header gives it: 1..65535, or an error message. */
export function parsePort(raw: string | undefined): number | string {
  if (raw === undefined || raw === '') return 'port header is missing';
  if (!/^\d{1,5}$/.test(raw)) return `unable to parse '${raw}' as a port`;
  const port = Number(raw);
  if (port < 1 || port > 65535) return `port ${raw} is out of range (1-65535)`;
  return port;
}

/**
 * The ports of a WebSocket port-forward, as the kubelet reads them (portforward.NewV4Options): every `port`
 * parameter, each a comma-separated list; at least one; each 1..65535. Repeats are kept (a channel pair each).
 */
export function parsePorts(q: URLSearchParams): number[] {
  const raw = q.getAll('port');
  if (raw.length === 0) throw new BadRequestError('query parameter "port" is required');
  return raw.flatMap((list) => {
    if (list === '') throw new BadRequestError('query parameter "port" cannot be empty');
    return list.split(',').map((one) => {
      const port = one === '' ? `empty port in "${list}"` : parsePort(one);
      if (typeof port === 'string') throw new BadRequestError(port);
      return port;
    });
  });
}
