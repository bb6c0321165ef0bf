import {
  BadPathError,
  BadRequestError,
  isSubpath,
  MAX_PORTS,
  parseCommand,
  parseKubeletPath,
  parseLogOptions,
  parsePodRoute,
  parsePort,
  parsePorts,
  parseStreamOptions,
  TooManyPortsError,
} from './routes.js';

const q = (s: string) => new URLSearchParams(s);

describe('kubelet API paths', () => {
  it.each([
    ['/containerLogs/ns/web/app', { kind: 'containerLogs', namespace: 'ns', pod: 'web', container: 'app' }],
    ['/exec/ns/web/app', { kind: 'exec', namespace: 'ns', pod: 'web', container: 'app' }],
    ['/exec/ns/web/uid-1/app', { kind: 'exec', namespace: 'ns', pod: 'web', uid: 'uid-1', container: 'app' }],
    ['/attach/ns/web/app', { kind: 'attach', namespace: 'ns', pod: 'web', container: 'app' }],
    ['/portForward/ns/web', { kind: 'portForward', namespace: 'ns', pod: 'web' }],
    ['/portForward/ns/web/uid-1', { kind: 'portForward', namespace: 'ns', pod: 'web', uid: 'uid-1' }],
    ['/pods', undefined],
  ])('%s', (path, route) => {
    expect(parsePodRoute(path)).toEqual(route);
  });

  it.each(['/exec/ns/web', '/exec/ns/web/a/b/c', '/containerLogs/ns/web', '/portForward/ns', '/exec/ns//app', '/exec/ns/%E0%A4%A/app'])(
    'rejects %s',
    (path) => {
      expect(() => parsePodRoute(path)).toThrow(BadRequestError);
    },
  );
});

describe('query parameters', () => {
  it('reads PodLogOptions', () => {
    expect(parseLogOptions(q('follow=true&tailLines=10&timestamps=1&limitBytes=100&sinceSeconds=5'))).toEqual({
      follow: true,
      previous: false,
      timestamps: true,
      tailLines: 10,
      limitBytes: 100,
      sinceSeconds: 5,
    });
    expect(parseLogOptions(q('sinceTime=2026-11-23T10:00:00Z&previous=true'))).toMatchObject({
      previous: true,
      sinceTime: '2026-11-23T10:00:00Z',
    });
  });

  it.each([
    'tailLines=-1',
    'tailLines=x',
    'sinceSeconds=0',
    'limitBytes=0',
    'follow=maybe',
    'sinceTime=yesterday',
    'sinceTime=2026-11-23T10:00:00Z&sinceSeconds=5',
  ])('rejects logs query %s', (s) => expect(() => parseLogOptions(q(s))).toThrow(BadRequestError));

  it('reads exec/attach stream options as the apiserver writes them', () => {
    expect(parseStreamOptions(q('input=1&output=1&error=1'))).toEqual({ stdin: true, stdout: true, stderr: true, tty: false });
    // No stderr with a tty (it is the terminal).
    expect(parseStreamOptions(q('input=1&output=1&error=1&tty=1'))).toEqual({ stdin: true, stdout: true, stderr: false, tty: true });
    expect(() => parseStreamOptions(q('tty=1'))).toThrow(/at least 1 of stdin, stdout, stderr/);
    expect(() => parseStreamOptions(q('stdin=true'))).toThrow(BadRequestError);
  });

  it('reads the command, refuses none', () => {
    expect(parseCommand(q('command=sh&command=-c&command=echo%20hi'))).toEqual(['sh', '-c', 'echo hi']);
    expect(() => parseCommand(q('output=1'))).toThrow(/specify a command/);
  });

  it.each([
    ['8080', 8080],
    ['65535', 65535],
    [undefined, 'port header is missing'],
    ['0', 'port 0 is out of range (1-65535)'],
    ['70000', 'port 70000 is out of range (1-65535)'],
    ['80a', "unable to parse '80a' as a port"],
  ])('port header %p', (raw, want) => {
    expect(parsePort(raw)).toBe(want);
  });

  it.each([
    ['port=80', [80]],
    ['port=80&port=8080', [80, 8080]],
    ['port=80,8080&port=81', [80, 8080, 81]],
  ])('port query %p', (query, want) => {
    expect(parsePorts(q(query))).toEqual(want);
  });

  it.each([
    ['', /query parameter "port" is required/],
    ['port=', /query parameter "port" cannot be empty/],
    ['port=80,', /empty port in "80,"/],
    ['port=0', /port 0 is out of range/],
    ['port=65536', /port 65536 is out of range/],
    ['port=http', /unable to parse 'http' as a port/],
  ])('bad port query %p', (query, message) => {
    expect(() => parsePorts(q(query))).toThrow(BadRequestError);
    expect(() => parsePorts(q(query))).toThrow(message);
  });
});

describe('parseKubeletPath (one parse for routing and authorization)', () => {
  it.each([
    ['/exec/ns/web/app?command=id&output=1', ['exec', 'ns', 'web', 'app'], '/exec/ns/web/app', 'command=id&output=1'],
    ['/', [''], '/', ''],
    ['/logs/', ['logs', ''], '/logs/', ''],
    ['/containerLogs/ns/a%2Eb/c', ['containerLogs', 'ns', 'a.b', 'c'], '/containerLogs/ns/a.b/c', ''],
    ['/pods?', ['pods'], '/pods', ''],
  ])('%s', (target, segments, pathname, search) => {
    expect(parseKubeletPath(target)).toMatchObject({ segments, pathname, search });
  });

  it.each([
    '/stats/../exec/ns/web/app',
    '/stats/%2e%2e/exec/ns/web/app',
    '/stats/%2E%2e/exec/ns/web/app',
    '/stats/.%2E/exec',
    '/./pods',
    '/pods/.',
    '/stats/..',
    '/stats%2f..%2fexec/ns/web/app',
    '/stats%2F..%2Fexec/ns/web/app',
    '/stats/..%5cexec/ns/web/app',
    '/stats\\..\\exec/ns/web/app',
    '/exec//ns/web/app',
    '//stats/../exec',
    'exec/ns/web/app',
    'http://kubelet/exec/ns/web/app',
    '*',
    '',
    '/exec/ns/web/app#frag',
    '/exec/ns/web/%00',
    '/exec/ns/web/a\u0000',
    '/exec/ns/%E0%A4%A/app',
    `/${'a'.repeat(9000)}`,
  ])('refuses %j', (target) => {
    expect(() => parseKubeletPath(target)).toThrow(BadPathError);
  });

  it('isSubpath works on whole segments', () => {
    expect(isSubpath(parseKubeletPath('/stats'), '/stats')).toBe(true);
    expect(isSubpath(parseKubeletPath('/stats/summary'), '/stats')).toBe(true);
    expect(isSubpath(parseKubeletPath('/statsz'), '/stats')).toBe(false);
  });

  it('bounds the ports of one WebSocket port-forward', () => {
    expect(parsePorts(q(Array.from({ length: MAX_PORTS }, (_, i) => `port=${i + 1}`).join('&')))).toHaveLength(MAX_PORTS);
    expect(() => parsePorts(q(`port=${Array.from({ length: MAX_PORTS + 1 }, (_, i) => i + 1).join(',')}`))).toThrow(TooManyPortsError);
    expect(() => parsePorts(q('port=1&port=2&port=3'), 2)).toThrow(/3 ports in one port-forward; at most 2/);
  });
});
