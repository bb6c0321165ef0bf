import { fc, fuzzDecoder } from '@edgefarm/testing/fuzz';
import { DockerConfigError, DockerKeyring, dockerConfigFromSecret, parseDockerConfig, repositoryOf } from './credentials.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('repositoryOf', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox'],
    ['busybox:1.35', 'docker.io/library/busybox'],
    ['me/app:v1', 'docker.io/me/app'],
    ['docker.io/edgefarm/busybox:1.35', 'docker.io/edgefarm/busybox'],
    ['127.0.0.1:5000/test/bb:1', '127.0.0.1:5000/test/bb'],
    ['127.0.0.1:5000/test/bb', '127.0.0.1:5000/test/bb'],
    ['localhost/app:1', 'localhost/app'],
    ['quay.io/org/app@sha256:abcd', 'quay.io/org/app'],
    ['reg.example.com:443/a/b/c:tag@sha256:ff', 'reg.example.com:443/a/b/c'],
  ])('%s -> %s', (image, repo) => {
    expect(repositoryOf(image)).toBe(repo);
  });
});

describe('parseDockerConfig', () => {
  it('reads username/password and auth (auth wins)', () => {
    const cfg = parseDockerConfig(
      JSON.stringify({
        auths: { 'a.io': { username: 'u', password: 'p' }, 'b.io': { username: 'x', password: 'y', auth: b64('alice:pa:ss') } },
      }),
      'json',
    );
    expect(cfg.get('a.io')).toEqual({ username: 'u', password: 'p' });
    expect(cfg.get('b.io')).toEqual({ username: 'alice', password: 'pa:ss' });
  });

  it('reads the legacy .dockercfg shape', () => {
    expect(
      parseDockerConfig(JSON.stringify({ 'https://index.docker.io/v1/': { auth: b64('u:p'), email: 'e' } }), 'cfg').get(
        'https://index.docker.io/v1/',
      ),
    ).toEqual({
      username: 'u',
      password: 'p',
    });
  });

  it('treats a missing auths as empty', () => {
    expect(parseDockerConfig('{}', 'json').size).toBe(0);
  });

  it.each([
    ['not json', 'json', /not valid JSON/],
    ['[]', 'json', /not a JSON object/],
    ['{"auths": []}', 'json', /"auths" is not an object/],
    ['{"auths": {"r.io": "x"}}', 'json', /entry "r.io" is not an object/],
    ['{"auths": {"r.io": {"username": 5}}}', 'json', /entry "r.io": username is not a string/],
    [
      `{"auths": {"r.io": {"auth": "${b64('nocolon')}"}}}`,
      'json',
      /entry "r.io": unable to parse auth field, must be formatted as base64\(username:password\)/,
    ],
    ['{"auths": {"r.io": {"auth": "%%%"}}}', 'json', /unable to parse auth field/],
  ] as const)('rejects %s with a clear message', (text, format, message) => {
    expect(() => parseDockerConfig(text, format)).toThrow(DockerConfigError);
    expect(() => parseDockerConfig(text, format)).toThrow(message);
  });
});

describe('dockerConfigFromSecret', () => {
  it('prefers .dockerconfigjson, falls back to .dockercfg, ignores other secrets', () => {
    const json = enc(JSON.stringify({ auths: { 'a.io': { username: 'j', password: 'j' } } }));
    const cfg = enc(JSON.stringify({ 'a.io': { username: 'c', password: 'c' } }));
    expect(dockerConfigFromSecret({ '.dockerconfigjson': json, '.dockercfg': cfg })?.get('a.io')?.username).toBe('j');
    expect(dockerConfigFromSecret({ '.dockercfg': cfg })?.get('a.io')?.username).toBe('c');
    expect(dockerConfigFromSecret({ password: enc('x') })).toBeUndefined();
    expect(dockerConfigFromSecret({ '.dockerconfigjson': new Uint8Array() })).toBeUndefined();
  });
});

describe('DockerKeyring.lookup', () => {
  const keyring = (auths: Record<string, string>): DockerKeyring => {
    const k = new DockerKeyring();
    k.add(new Map(Object.entries(auths).map(([key, user]) => [key, { username: user, password: 'pw' }])));
    return k;
  };
  const users = (k: DockerKeyring, image: string): string[] => k.lookup(image).map((a) => a.username);

  it.each([
    // [keys -> user, image, expected users in order]
    [{ '127.0.0.1:5000': 'a' }, '127.0.0.1:5000/test/bb:1', ['a']],
    [{ 'http://127.0.0.1:5000': 'a' }, '127.0.0.1:5000/test/bb:1', ['a']],
    [{ 'https://127.0.0.1:5000/v2/': 'a' }, '127.0.0.1:5000/test/bb:1', ['a']],
    [{ '127.0.0.1:5000': 'a' }, '127.0.0.1:5001/test/bb:1', []],
    [{ '127.0.0.1': 'a' }, '127.0.0.1:5000/test/bb:1', []],
    [{ 'reg.io/team': 'team', 'reg.io': 'all' }, 'reg.io/team/app:1', ['team', 'all']],
    [{ 'reg.io/team': 'team', 'reg.io': 'all' }, 'reg.io/other/app:1', ['all']],
    [{ '*.reg.io': 'glob' }, 'eu.reg.io/app', ['glob']],
    [{ '*.reg.io': 'glob' }, 'reg.io/app', []],
    [{ '*.reg.io': 'glob' }, 'a.b.reg.io/app', []],
    [{ 'https://index.docker.io/v1/': 'hub' }, 'busybox', ['hub']],
    [{ 'https://index.docker.io/v1/': 'hub' }, 'me/app:1', ['hub']],
    [{ 'https://index.docker.io/v1/': 'hub' }, 'docker.io/edgefarm/busybox:1.35', ['hub']],
    [{ 'https://index.docker.io/v1/': 'hub' }, 'quay.io/me/app', []],
    [{ 'docker.io': 'hub2' }, 'busybox', ['hub2']],
  ])('%j for %s', (auths, image, expected) => {
    expect(users(keyring(auths), image)).toEqual(expected);
  });

  it('keeps every credential of a key, from several secrets, in order', () => {
    const k = new DockerKeyring();
    k.add(new Map([['r.io', { username: 'first', password: '1' }]]));
    k.add(new Map([['https://r.io', { username: 'second', password: '2' }]]));
    expect(k.lookup('r.io/app').map((a) => a.username)).toEqual(['first', 'second']);
  });

  it('reports keys that are not registry locations', () => {
    const k = new DockerKeyring();
    expect(k.add(new Map([['https://', { username: 'x', password: 'y' }]]))).toEqual(['https://']);
  });
});

describe('host globs', () => {
  // A pod's own pull secret with a 7-star key once blocked the agent's event loop for ~40 s per lookup (the glob was
  // compiled to a backtracking regex: O(n^7) on a 70-character host part). Matching is now Go's path.Match, O(n*m).
  it('match a many-star key against a long host part without backtracking (the hang bound)', () => {
    const k = new DockerKeyring();
    k.add(new Map([['*a*a*a*a*a*a*a*b.example.com', { username: 'u', password: 'p' }]]));
    fuzzDecoder('7-star glob against a long host', {
      inputs: fc.constantFrom(70, 255),
      decode: (n) => k.lookup(`${'a'.repeat(n)}.example.com/app:1`),
      check: (_n, out) => (out as unknown[]).length === 0,
      numRuns: 2,
    });
    expect(k.lookup(`${'a'.repeat(70)}b.example.com/app:1`).map((a) => a.username)).toEqual(['u']);
  });
});
