/**
 * The kubelet API's paths and queries (pkg/kubelet/server/server.go), parsed into plain records; invalid input is
 * a {@link BadRequestError} (answered 400). Pure: no I/O.
 *
 * Every request's target is parsed once, by {@link parseKubeletPath}, and that one {@link KubeletPath} is what the
 * server routes on and what authorization reads (auth.ts requestAttributes): a path that could mean two things
 * (dot segments, encoded separators, empty segments) is refused with a {@link BadPathError}, never normalized, so no
 * path can be authorized as one endpoint and served as another.
 */
import type { LogOptions, StreamOptions } from './edge-streams.js';

export class BadRequestError extends Error {
  override name = 'BadRequestError';
}
export function isBadRequestError(err: unknown): err is BadRequestError {
  return err instanceof BadRequestError;
}
/** A request target that is not one unambiguous absolute path (answered 400, counted as `bad_path`). */
export class BadPathError extends BadRequestError {
  override name = 'BadPathError';
}

/** Longest request target accepted (Node's header limit is 16 KiB; no kubelet path comes near). */
export const MAX_TARGET_LENGTH = 8192;

/** A request target, parsed once: what the server routes on and what authorization reads. */
export interface KubeletPath {
  /** The decoded segments after the leading slash: `/exec/ns/pod/c` → exec, ns, pod, c; `/` → one empty segment. */
  readonly segments: readonly string[];
  /** The canonical path, made from the segments (each percent-encoded as needed): what routing sees. */
  readonly pathname: string;
  /** The raw query (after `?`, without it; '' when none). */
  readonly search: string;
  readonly query: URLSearchParams;
}

/**
 * Parses a request target (origin form, as in the request line). Refuses, with a {@link BadPathError}: anything but
 * an absolute path (absolute URIs, `//authority`, `*`), a fragment, control bytes, backslashes, the dot segments `.`
 * and `..` in any spelling (`%2e`, `%2E%2e`), segments that decode to a separator (`%2f`, `%5c`) or a control byte,
 * malformed percent escapes, and empty segments (`//`) anywhere but at the end (a trailing slash, as `/logs/`).
 */
export function parseKubeletPath(target: string): KubeletPath {
  if (target.length > MAX_TARGET_LENGTH) throw new BadPathError(`request target longer than ${MAX_TARGET_LENGTH} bytes`);
  if (!target.startsWith('/') || target.startsWith('//')) throw new BadPathError('the request target must be an absolute path');
  if (hasByte(target, (c) => c <= 0x20 || c === 0x7f || c === 0x5c || c === 0x23))
    throw new BadPathError('the request target has a backslash, a control byte, a space or a fragment');
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const search = q < 0 ? '' : target.slice(q + 1);
  const raw = rawPath.slice(1).split('/');
  const segments = raw.map((r, i) => {
    if (r === '' && i < raw.length - 1) throw new BadPathError('empty path segment');
    let seg: string;
    try {
      seg = decodeURIComponent(r);
    } catch {
      throw new BadPathError('malformed percent escape in the path');
    }
    if (seg === '.' || seg === '..') throw new BadPathError('dot segments (. and ..) are not allowed in the path');
    if (hasByte(seg, (c) => c < 0x20 || c === 0x7f || c === 0x2f || c === 0x5c))
      throw new BadPathError('a path segment encodes a separator or a control byte');
    return seg;
  });
  const pathname = `/${segments.map(encodeURIComponent).join('/')}`;
  return { segments, pathname, search, query: new URLSearchParams(search) };
}

/** Whether any UTF-16 unit of `s` is one `bad` picks (control bytes, separators; no regex with control characters). */
function hasByte(s: string, bad: (code: number) => boolean): boolean {
  for (let i = 0; i < s.length; i++) if (bad(s.charCodeAt(i))) return true;
  return false;
}

/** Whether the path is `prefix` or below it (kubelet auth.go isSubpath), on whole segments. */
export function isSubpath(path: KubeletPath, prefix: string): boolean {
  const want = prefix.split('/').slice(1);
  return want.every((w, i) => path.segments[i] === w);
}

export type PodRoute =
  | { kind: 'containerLogs'; namespace: string; pod: string; container: string }
  | { kind: 'exec' | 'attach'; namespace: string; pod: string; uid?: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string; uid?: string };

/**
 * exec/attach/portForward/containerLogs paths; undefined for any other path. Throws on a malformed one. A string is
 * parsed with {@link parseKubeletPath} first.
 */
export function parsePodRoute(path: KubeletPath | string): PodRoute | undefined {
  const p = typeof path === 'string' ? parseKubeletPath(path) : path;
  const kind = p.segments[0];
  const seg = p.segments.slice(1);
  if (seg.some((s) => s === '')) throw new BadRequestError(`empty segment in ${p.pathname}`);
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

/** More ports in one WebSocket port-forward than {@link MAX_PORTS} (answered 400, counted as `too_many_ports`). */
export class TooManyPortsError extends BadRequestError {
  override name = 'TooManyPortsError';
}

/**
 * Ports in one WebSocket port-forward, at most: each is a connection to the edge for the life of the WebSocket and
 * a channel pair (channel numbers are one byte: 2i+1 ≤ 255 allows 128). kubectl forwards a handful.
 */
export const MAX_PORTS = 32;

/**
 * The ports of a WebSocket port-forward, as the kubelet reads them (portforward.NewV4Options): every `port`
 * parameter, each a comma-separated list; at least one; each 1..65535; at most `max` in all. Repeats are kept (a
 * channel pair each).
 */
export function parsePorts(q: URLSearchParams, max = MAX_PORTS): number[] {
  const raw = q.getAll('port');
  if (raw.length === 0) throw new BadRequestError('query parameter "port" is required');
  const count = raw.reduce((n, list) => n + list.split(',').length, 0);
  if (count > max) throw new TooManyPortsError(`${count} ports in one port-forward; at most ${max}`);
  return raw.flatMap((list) => {
    if (list === '') throw new BadRequestError('query parameter "port" cannot be empty');
    return list.split(',').map((one) => {
      const port = one === '' ? `empty port in "${list}"` : parsePort(one);
      if (typeof port === 'string') throw new BadRequestError(port);
      return port;
    });
  });
}
