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
 * Everything here is pure; a secret that cannot be parsed yields a {@link DockerConfigError} with a message naming it.
 */

export interface RegistryAuth {
  username: string;
  password: string;
}

export class DockerConfigError extends Error {
  override name = 'DockerConfigError';
}
export function isDockerConfigError(err: unknown): err is DockerConfigError {
  return err instanceof DockerConfigError;
}

export const DOCKER_CONFIG_JSON_KEY = '.dockerconfigjson';
export const DOCKER_CFG_KEY = '.dockercfg';

/** KEY -> credentials of a docker config, in file order. */
export type DockerConfig = Map<string, RegistryAuth>;

function decodeAuthField(auth: string): RegistryAuth {
  const text = Buffer.from(auth, 'base64').toString('utf8');
  const i = text.indexOf(':');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth.trim()) || i < 0) {
    throw new DockerConfigError('unable to parse auth field, must be formatted as base64(username:password)');
  }
  return { username: text.slice(0, i), password: text.slice(i + 1) };
}

function entryOf(key: string, v: unknown): RegistryAuth {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DockerConfigError(`entry "${key}" is not an object`);
  const e = v as Record<string, unknown>;
  const str = (f: string): string => {
    const x = e[f];
    if (x === undefined || x === null) return '';
    if (typeof x !== 'string') throw new DockerConfigError(`entry "${key}": ${f} is not a string`);
    return x;
  };
  const auth = str('auth');
  if (auth) {
    try {
      return decodeAuthField(auth);
    } catch (err) {
      throw new DockerConfigError(`entry "${key}": ${(err as Error).message}`);
    }
  }
  return { username: str('username'), password: str('password') };
}

/** Parses `.dockerconfigjson` (format 'json': `{"auths": {...}}`) or `.dockercfg` (format 'cfg': `{...}`). */
export function parseDockerConfig(data: Uint8Array | string, format: 'json' | 'cfg'): DockerConfig {
  const text = typeof data === 'string' ? data : Buffer.from(data).toString('utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DockerConfigError(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new DockerConfigError('not a JSON object');
  let auths: unknown = doc;
  if (format === 'json') {
    auths = (doc as Record<string, unknown>).auths ?? {};
    if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) throw new DockerConfigError('"auths" is not an object');
  }
  const out: DockerConfig = new Map();
  for (const [key, v] of Object.entries(auths as Record<string, unknown>)) out.set(key, entryOf(key, v));
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
  return { hostParts: host.split('.'), port, path: m[2]! };
}

/** Go's filepath.Match for one host part: `*`, `?` and `[...]` (no separators in a host part). */
function globMatch(glob: string, s: string): boolean {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) return false; // ErrBadPattern: no match
      let cls = glob.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `\\^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`).test(s);
  } catch {
    return false;
  }
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
