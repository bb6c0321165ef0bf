/**
 * Registry credentials from a pod's imagePullSecrets, as the kubelet's credentialprovider reads them:
 *
 * - A Secret's `.dockerconfigjson` (`{"auths": {KEY: ENTRY}}`) or else its `.dockercfg` (`{KEY: ENTRY}`); the edge
 *   object carries no Secret type, so the key decides. ENTRY has `username`/`password`, or `auth` =
 *   base64("user:pass"), which wins when present.
 * - KEY is a registry location: an optional http(s):// scheme, host[:port], optional path (`/v1/`, `/v2/` prefixes
 *   mean the host itself). The host may hold globs per dot-separated part (`*.example.com`).
 * - Lookup of an image: its repository (tag and digest dropped, Docker Hub names normalized to
 *   docker.io/library/x) matches a key when the host has as many parts, each part matches the glob, the port is the
 *   same and the repository path starts with the key's path. Keys are tried most specific first (reverse sorted); when
 *   none match and the image is on Docker Hub, `index.docker.io` credentials apply.
 *
 * - Bounds (a pull secret is the pod author's input, and the agent matches it on its one event loop): at most
 *   {@link MAX_DOCKER_CONFIG_KEYS} keys of at most {@link MAX_REGISTRY_KEY_LENGTH} characters, else the whole config
 *   is refused; a host longer than {@link MAX_REGISTRY_HOST_LENGTH} (in a key or an image) matches nothing. Globs are
 *   matched as Go's path.Match does, without backtracking ({@link globMatch}).
 *
 * Everything here is pure; a secret that cannot be parsed yields a {@link DockerConfigError} with a message naming it
 * and a bounded `reason` (the metric's label).
 */

export interface RegistryAuth {
  username: string;
  password: string;
}

/** Why a docker config was refused: the `reason` label of edgefarm_agent_pull_secrets_rejected_total. */
export const DOCKER_CONFIG_REJECTIONS = [
  'invalid-json',
  'not-an-object',
  'invalid-entry',
  'invalid-auth',
  'too-many-keys',
  'key-too-long',
] as const;
export type DockerConfigRejection = (typeof DOCKER_CONFIG_REJECTIONS)[number];

export class DockerConfigError extends Error {
  override name = 'DockerConfigError';
  constructor(
    message: string,
    readonly reason: DockerConfigRejection,
  ) {
    super(message);
  }
}
export function isDockerConfigError(err: unknown): err is DockerConfigError {
  return err instanceof DockerConfigError;
}

export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKER_CFG_KEY = '.dockercfg';

/** Most registry keys one docker config may hold (real ones hold a handful). */
export const MAX_DOCKER_CONFIG_KEYS = 256;
/** Longest registry key (a location: scheme, host of at most 253 characters, port, path). */
export const MAX_REGISTRY_KEY_LENGTH = 1024;
/** Longest host (DNS allows 253); a longer one in an image or a key matches nothing. Bounds the glob matching. */
export const MAX_REGISTRY_HOST_LENGTH = 255;

/** KEY -> credentials of a docker config, in file order. */
export type DockerConfig = Map<string, RegistryAuth>;

/** A key as error messages name it: quoted, cut to 64 characters (a key may be hostile and huge). */
function named(key: string): string {
  return key.length > 64 ? `"${key.slice(0, 64)}..."` : `"${key}"`;
}

function decodeAuthField(key: string, auth: string): RegistryAuth {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth.trim()) || i < 0) {
    throw new DockerConfigError(
      `entry ${named(key)}: unable to parse auth field, must be formatted as base64(username:password)`,
      'invalid-auth',
    );
  }
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

function entryOf(key: string, v: unknown): RegistryAuth {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new DockerConfigError(`entry ${named(key)} is not an object`, 'invalid-entry');
  const e = v as Record<string, unknown>;
  const str = (f: string): string => {
    const x = Object.hasOwn(e, f) ? e[f] : undefined;
    if (x === undefined || x === null) return '';
    if (typeof x !== 'string') throw new DockerConfigError(`entry ${named(key)}: ${f} is not a string`, 'invalid-entry');
    return x;
  };
  const auth = str('auth');
  if (auth) return decodeAuthField(key, auth);
  return { username: str('username'), password: str('password') };
}

/** Parses `.dockerconfigjson` (format 'json': `{"auths": {...}}`) or `.dockercfg` (format 'cfg': `{...}`). */
export function parseDockerConfig(data: Uint8Array | string, format: 'json' | 'cfg'): DockerConfig {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DockerConfigError(`not valid JSON: ${(err as Error).message}`, 'invalid-json');
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DockerConfigError('not a JSON object', 'not-an-object');
  let auths: unknown = doc;
  if (format === 'json') {
    auths = Object.hasOwn(doc, 'auths') ? ((doc as Record<string, unknown>).auths ?? {}) : {};
    if (typeof auths !== 'object' || auths === null || Array.isArray(auths))
      throw new DockerConfigError('"auths" is not an object', 'not-an-object');
  }
  const entries = Object.entries(auths as Record<string, unknown>);
  if (entries.length > MAX_DOCKER_CONFIG_KEYS) {
    throw new DockerConfigError(`${entries.length} registry keys, more than ${MAX_DOCKER_CONFIG_KEYS}`, 'too-many-keys');
  }
  const out: DockerConfig = new Map();
  for (const [key, v] of entries) {
    if (key.length > MAX_REGISTRY_KEY_LENGTH) {
      throw new DockerConfigError(
        `registry key ${named(key)} is ${key.length} characters, longer than ${MAX_REGISTRY_KEY_LENGTH}`,
        'key-too-long',
      );
    }
    out.set(key, entryOf(key, v));
  }
  return out;
}

/** Parses a delivered Secret's data (`.dockerconfigjson` first, else `.dockercfg`); undefined when it has neither. */
export function dockerConfigFromSecret(data: Record<string, Uint8Array>): DockerConfig | undefined {
  const json = data[DOCKER_CONFIG_JSON_KEY];
  if (json && json.length > 0) return parseDockerConfig(json, 'json');
  const cfg = data[DOCKER_CFG_KEY];
  if (cfg && cfg.length > 0) return parseDockerConfig(cfg, 'cfg');
  return undefined;
}

interface Location {
  hostParts: string[];
  port: string;
  path: string;
}

/** Parses `[scheme://]host[:port][/path]` as Go's url.Parse of "https://" + it would, for matching. */
function parseLocation(s: string): Location | undefined {
  const withScheme = /^https?:\/\//.test(s) ? s : `https://${s}`;
  const m = /^https?:\/\/([^/?#]*)([^?#]*)/.exec(withScheme);
  if (!m) return undefined;
  const hostPort = m[1]!;
  if (!hostPort) return undefined;
  const colon = hostPort.lastIndexOf(':');
  const host = colon >= 0 && !hostPort.endsWith(']') ? hostPort.slice(0, colon) : hostPort;
  const port = colon >= 0 && !hostPort.endsWith(']') ? hostPort.slice(colon + 1) : '';
  if (host.length > MAX_REGISTRY_HOST_LENGTH) return undefined;
  return { hostParts: host.split('.'), port, path: m[2]! };
}

/**
 * Go's path.Match (what the kubelet's URLsMatch calls per host part), ported as Go writes it: the pattern is cut into
 * chunks at stars, each chunk is matched at the first place it fits (only the last must end the name), so a match is
 * O(len(pattern) * len(name)) with no backtracking, whatever the stars. `*` and `?` never match '/', `[...]` is a class
 * (`^` negates, `a-z` ranges, `\\` escapes). A malformed pattern (Go's ErrBadPattern) matches nothing, as in the
 * kubelet, which treats the error as no match. Works on code points, as Go on runes.
 */
export function globMatch(pattern: string, name: string): boolean {
  const p = Array.from(pattern);
  const s = Array.from(name);
  if (!validGlob(p)) return false;
  let pi = 0;
  let si = 0;
  pattern: while (pi < p.length) {
    let star = false;
    while (pi < p.length && p[pi] === '*') {
      pi++;
      star = true;
    }
    const chunkEnd = scanChunk(p, pi);
    if (star && chunkEnd === pi) return !s.slice(si).includes('/');
    const last = chunkEnd === p.length;
    let rest = matchChunk(p, pi, chunkEnd, s, si);
    if (rest !== undefined && (rest === s.length || !last)) {
      si = rest;
      pi = chunkEnd;
      continue;
    }
    if (star) {
      for (let i = si; i < s.length && s[i] !== '/'; i++) {
        rest = matchChunk(p, pi, chunkEnd, s, i + 1);
        if (rest === undefined || (last && rest < s.length)) continue;
        si = rest;
        pi = chunkEnd;
        continue pattern;
      }
    }
    return false;
  }
  return si === s.length;
}

/** Go's scanChunk: the end of the chunk starting at `from` (the next star outside a class). */
function scanChunk(p: string[], from: number): number {
  let inRange = false;
  let i = from;
  for (; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') {
      if (i + 1 < p.length) i++;
    } else if (c === '[') inRange = true;
    else if (c === ']') inRange = false;
    else if (c === '*' && !inRange) break;
  }
  return i;
}

/** Go's getEsc: one class character at `i` (escapes resolved); undefined when malformed. */
function classChar(p: string[], i: number, end: number): { ch: string; next: number } | undefined {
  if (i >= end || p[i] === '-' || p[i] === ']') return undefined;
  if (p[i] === '\\') {
    i++;
    if (i >= end) return undefined;
  }
  const next = i + 1;
  if (next >= end) return undefined;
  return { ch: p[i]!, next };
}

/**
 * Go's matchChunk: matches the chunk p[from, end) at the start of s[si...]; the index in s after it, or undefined
 * when it does not match. The pattern was validated, so no error can arise here.
 */
function matchChunk(p: string[], from: number, end: number, s: string[], si: number): number | undefined {
  let i = from;
  while (i < end) {
    if (si >= s.length) return undefined;
    const c = p[i]!;
    if (c === '[') {
      const r = s[si++]!.codePointAt(0)!;
      i++;
      let negated = false;
      if (i < end && p[i] === '^') {
        negated = true;
        i++;
      }
      let match = false;
      for (let n = 0; ; n++) {
        if (i < end && p[i] === ']' && n > 0) {
          i++;
          break;
        }
        const lo = classChar(p, i, end);
        if (!lo) return undefined; // cannot happen on a validated pattern
        let hi = lo;
        i = lo.next;
        if (p[i] === '-') {
          const h = classChar(p, i + 1, end);
          if (!h) return undefined;
          hi = h;
          i = h.next;
        }
        if (lo.ch.codePointAt(0)! <= r && r <= hi.ch.codePointAt(0)!) match = true;
      }
      if (match === negated) return undefined;
    } else if (c === '?') {
      if (s[si] === '/') return undefined;
      si++;
      i++;
    } else {
      const lit = c === '\\' ? p[++i]! : c;
      if (s[si] !== lit) return undefined;
      si++;
      i++;
    }
  }
  return si;
}

/** Whether Go's path.Match would accept the pattern (no ErrBadPattern): classes closed, escapes complete. */
function validGlob(p: string[]): boolean {
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === '*' || c === '?') {
      i++;
    } else if (c === '\\') {
      if (i + 1 >= p.length) return false;
      i += 2;
    } else if (c === '[') {
      i++;
      if (i < p.length && p[i] === '^') i++;
      for (let n = 0; ; n++) {
        if (i < p.length && p[i] === ']' && n > 0) {
          i++;
          break;
        }
        const lo = classChar(p, i, p.length);
        if (!lo) return false;
        i = lo.next;
        if (p[i] === '-') {
          const hi = classChar(p, i + 1, p.length);
          if (!hi) return false;
          i = hi.next;
        }
      }
    } else {
      i++;
    }
  }
  return true;
}

/** The kubelet's URLsMatch: host parts (with globs), port, path prefix. */
function locationMatches(glob: Location, target: Location): boolean {
  if (glob.hostParts.length !== target.hostParts.length) return false;
  if (glob.port !== target.port) return false;
  if (!glob.hostParts.every((g, i) => globMatch(g, target.hostParts[i]!))) return false;
  return target.path.startsWith(glob.path);
}

/**
 * The repository an image is pulled from, as the kubelet's parsers.ParseImageName names it: tag and digest dropped,
 * Docker Hub names completed (`busybox` -> `docker.io/library/busybox`, `me/app` -> `docker.io/me/app`).
 */
export function repositoryOf(image: string): string {
  let name = image.split('@')[0]!;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) name = name.slice(0, colon);
  const first = name.split('/')[0]!;
  const hasRegistry = name.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry) return name;
  return name.includes('/') ? `docker.io/${name}` : `docker.io/library/${name}`;
}

function isDefaultRegistryMatch(repo: string): boolean {
  const [first, rest] = [repo.split('/')[0]!, repo.includes('/')];
  if (!first) return false;
  if (!rest) return true;
  if (first === 'docker.io' || first === 'index.docker.io') return true;
  return !first.includes('.') && !first.includes(':');
}

const DEFAULT_REGISTRY_HOST = 'index.docker.io';

/** The kubelet's BasicDockerKeyring: credentials by normalized location key. */
export class DockerKeyring {
  private readonly creds = new Map<string, RegistryAuth[]>();
  private index: string[] = [];

  /** Adds a docker config; keys that cannot be parsed are skipped (returned, for a warning). */
  add(config: DockerConfig): string[] {
    const skipped: string[] = [];
    for (const [loc, auth] of config) {
      const parsed = parseLocation(loc);
      if (!parsed) {
        skipped.push(loc);
        continue;
      }
      let path = parsed.path;
      if (path.startsWith('/v2/') || path.startsWith('/v1/')) path = path.slice(3);
      const host = parsed.hostParts.join('.') + (parsed.port ? `:${parsed.port}` : '');
      const key = path.length > 0 && path !== '/' ? host + path : host;
      this.creds.set(key, [...(this.creds.get(key) ?? []), auth]);
    }
    this.index = [...this.creds.keys()].sort().reverse();
    return skipped;
  }

  /** Every credential whose key matches the image's repository, most specific key first. */
  lookup(image: string): RegistryAuth[] {
    const repo = repositoryOf(image);
    const target = parseLocation(repo);
    const out: RegistryAuth[] = [];
    if (target) {
      for (const k of this.index) {
        const glob = parseLocation(k);
        if (glob && locationMatches(glob, target)) out.push(...this.creds.get(k)!);
      }
    }
    if (out.length > 0) return out;
    if (isDefaultRegistryMatch(repo)) return [...(this.creds.get(DEFAULT_REGISTRY_HOST) ?? [])];
    return [];
  }
}
