// Pull secrets are the pod author's input, matched on the agent's one event loop: the glob against a reference (a
// naive backtracking matcher of Go's path.Match grammar, fine on small inputs) and within the hang bound on big ones;
// docker configs in both formats only ever refused with DockerConfigError; the keyring never throws on any key/image.
import { fc, fuzzDecoder, fuzzProperty, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import { DockerConfigError, DockerKeyring, dockerConfigFromSecret, globMatch, parseDockerConfig } from './credentials.js';

type Token = { t: 'star' } | { t: 'any' } | { t: 'lit'; c: string } | { t: 'class'; negated: boolean; ranges: [number, number][] };

/** Go's path.Match grammar as a token list; undefined for a malformed pattern (ErrBadPattern). */
function parse(pattern: string): Token[] | undefined {
  const p = Array.from(pattern);
  const out: Token[] = [];
  let i = 0;
  const esc = (): string | undefined => {
    if (i >= p.length || p[i] === '-' || p[i] === ']') return undefined;
    if (p[i] === '\\') i++;
    if (i >= p.length) return undefined;
    const c = p[i++]!;
    return i >= p.length ? undefined : c; // Go: a class character must be followed by something
  };
  while (i < p.length) {
    const c = p[i]!;
    if (c === '*') {
      out.push({ t: 'star' });
      i++;
    } else if (c === '?') {
      out.push({ t: 'any' });
      i++;
    } else if (c === '\\') {
      if (i + 1 >= p.length) return undefined;
      out.push({ t: 'lit', c: p[i + 1]! });
      i += 2;
    } else if (c === '[') {
      i++;
      const negated = p[i] === '^';
      if (negated) i++;
      const ranges: [number, number][] = [];
      for (;;) {
        if (p[i] === ']' && ranges.length > 0) {
          i++;
          break;
        }
        const lo = esc();
        if (lo === undefined) return undefined;
        let hi = lo;
        if (p[i] === '-') {
          i++;
          const h = esc();
          if (h === undefined) return undefined;
          hi = h;
        }
        ranges.push([lo.codePointAt(0)!, hi.codePointAt(0)!]);
      }
      out.push({ t: 'class', negated, ranges });
    } else {
      out.push({ t: 'lit', c });
      i++;
    }
  }
  return out;
}

function reference(pattern: string, name: string): boolean {
  const tokens = parse(pattern);
  if (!tokens) return false;
  const s = Array.from(name);
  const at = (ti: number, si: number): boolean => {
    if (ti === tokens.length) return si === s.length;
    const tok = tokens[ti]!;
    if (tok.t === 'star') {
      for (let j = si; ; j++) {
        if (at(ti + 1, j)) return true;
        if (j >= s.length || s[j] === '/') return false;
      }
    }
    if (si >= s.length) return false;
    const ch = s[si]!;
    if (tok.t === 'any') return ch !== '/' && at(ti + 1, si + 1);
    if (tok.t === 'lit') return ch === tok.c && at(ti + 1, si + 1);
    const r = ch.codePointAt(0)!;
    const inClass = tok.ranges.some(([lo, hi]) => lo <= r && r <= hi);
    return inClass !== tok.negated && at(ti + 1, si + 1);
  };
  return at(0, 0);
}

const patternPieces = fc.constantFrom('*', '?', '[', ']', '^', '-', '\\', 'a', 'b', 'c', '/', '[a-c]', '[^a]', '**', 'é');
// Names without '/': a host part never holds one (the location is cut at the first '/'). With one, Go's first-fit
// commit differs from a backtracking matcher ("*[^a]*" on "*/": a class may match the '/' a star may not) and the
// port follows Go, as the kubelet does.
const namePieces = fc.constantFrom('a', 'b', 'c', '-', '^', ']', '[', '\\', '*', 'é', 'x', ':');
const smallPattern = fc.array(patternPieces, { maxLength: 10 }).map((a) => a.join(''));
const smallName = fc.array(namePieces, { maxLength: 10 }).map((a) => a.join(''));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64 = (s: string): string => Buffer.from(s).toString('base64');

const entry = fc.oneof(
  fc.record({
    auth: fc.oneof(
      fc.string(),
      fc.tuple(fc.string(), fc.string()).map(([u, p]) => b64(`${u}:${p}`)),
    ),
  }),
  fc.record({ username: fc.string(), password: fc.string() }, { requiredKeys: [] }),
  fc.anything(),
);
const auths = fc.dictionary(
  fc.oneof(hostileString(), fc.constantFrom('r.io', '*.r.io', 'https://index.docker.io/v1/', '__proto__')),
  entry,
  {
    maxKeys: 8,
  },
);
const configText = fc.oneof(
  auths.map((a) => JSON.stringify({ auths: a })),
  auths.map((a) => JSON.stringify(a)),
  fc.json(),
  hostileString(),
);
const configBytes = mutatedBytes(configText.map(enc));

describe('globMatch (fuzz)', () => {
  it('equals a backtracking reference of Go path.Match on small inputs', () => {
    fuzzProperty(
      'glob equals reference',
      [smallPattern, smallName],
      (pattern, name) => globMatch(pattern, name) === reference(pattern, name),
    );
  });

  it('stays within the hang bound on many stars and long names', () => {
    const many = fc.tuple(
      fc.array(fc.constantFrom('*', '*a', '?', '[a-b]', 'a', 'b'), { maxLength: 400 }),
      fc.integer({ min: 0, max: 1024 }),
      fc.constantFrom('a', 'ab', 'b'),
    );
    fuzzDecoder('glob on big inputs', {
      inputs: many,
      decode: ([parts, n, unit]) => globMatch(parts.join(''), unit.repeat(n)),
    });
  });
});

describe('docker configs (fuzz)', () => {
  it('parse .dockerconfigjson and .dockercfg, refusing only with DockerConfigError', () => {
    fuzzDecoder('docker config parse', {
      inputs: fc.tuple(configBytes, fc.constantFrom('json' as const, 'cfg' as const)),
      decode: ([bytes, format]) => parseDockerConfig(bytes, format),
      errors: [DockerConfigError],
      check: (_in, out) => {
        for (const [, a] of out as Map<string, { username: unknown; password: unknown }>) {
          if (typeof a.username !== 'string' || typeof a.password !== 'string') return false;
        }
      },
    });
  });

  it('secrets with either key or both, then a keyring lookup of hostile images, never crash', () => {
    fuzzDecoder('pull secret to lookup', {
      inputs: fc.tuple(
        fc.option(configBytes),
        fc.option(configBytes),
        fc.oneof(hostileString(), fc.constantFrom('busybox', 'r.io/a:1', 'x.r.io/b@sha256:00')),
      ),
      decode: ([json, cfg, image]) => {
        const data: Record<string, Uint8Array> = {};
        if (json) data['.dockerconfigjson'] = json;
        if (cfg) data['.dockercfg'] = cfg;
        const config = dockerConfigFromSecret(data);
        const k = new DockerKeyring();
        if (config) k.add(config);
        return k.lookup(image);
      },
      errors: [DockerConfigError],
    });
  });
});
