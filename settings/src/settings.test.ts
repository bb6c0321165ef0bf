import {
  ConfigError,
  ValueError,
  absolutePath,
  custom,
  defineSettings,
  flag,
  int,
  isConfigError,
  list,
  logLevel,
  number,
  oneOf,
  port,
  text,
} from './settings.js';

const section = { title: 'demo', source: 'demo.ts', intro: 'A demo.' };

const demo = defineSettings(
  section,
  {
    name: { env: 'EF_NAME', type: text('name'), required: true, doc: 'the name' },
    port: { env: 'EF_PORT', type: port(), default: '8080', doc: 'the port' },
    dir: {
      env: 'EF_DIR',
      type: absolutePath(),
      derive: (env) => `/var/lib/${env.EF_NAME?.trim() ?? ''}`,
      defaultText: '/var/lib/<name>',
      doc: 'the directory',
    },
    peer: { env: 'EF_PEER', type: text('host'), unset: 'no peer', doc: 'a peer' },
  },
  { retired: { EF_OLD: 'set EF_NAME' } },
);

function problems(f: () => unknown): readonly string[] {
  try {
    f();
  } catch (err) {
    if (isConfigError(err)) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('Settings.parse', () => {
  it('gives typed values with defaults, derived defaults and unset ones', () => {
    const v = demo.parse({ EF_NAME: 'x' });
    expect(v).toEqual({ name: 'x', port: 8080, dir: '/var/lib/x', peer: undefined });
    const port: number = v.port;
    const peer: string | undefined = v.peer;
    expect([port, peer]).toEqual([8080, undefined]);
  });

  it('trims values and treats empty ones as unset', () => {
    expect(demo.parse({ EF_NAME: ' x ', EF_PORT: '  ', EF_PEER: '' })).toEqual({
      name: 'x',
      port: 8080,
      dir: '/var/lib/x',
      peer: undefined,
    });
  });

  it('names every problem at once: missing, bad, retired', () => {
    expect(problems(() => demo.parse({ EF_PORT: '0', EF_OLD: '1', EF_DIR: 'rel' }))).toEqual([
      'EF_OLD is no longer read: set EF_NAME',
      'EF_NAME is required (the name)',
      'EF_PORT="0": expected TCP port',
      'EF_DIR="rel": expected an absolute path',
    ]);
  });

  it('says when a default computed from another setting is bad', () => {
    const s = defineSettings(section, {
      ip: {
        env: 'EF_IP',
        type: custom('IP', (t) => (/^\d+\.\d+\.\d+\.\d+$/.test(t) ? t : fail('not an IP'))),
        derive: (e) => e.POD_IP ?? '127.0.0.1',
        defaultText: '$POD_IP',
        doc: 'an address',
      },
    });
    expect(problems(() => s.parse({ POD_IP: 'host' }))).toEqual(['EF_IP (unset) default "host": not an IP']);
  });

  it('runs the cross-setting check only when every setting parsed, and adds its problems', () => {
    let calls = 0;
    const check = (v: { port: number }, problem: (m: string) => void) => {
      calls++;
      if (v.port === 1) problem('port 1 is reserved');
    };
    expect(() => demo.parse({ EF_PORT: 'x' }, check)).toThrow(ConfigError);
    expect(calls).toBe(0);
    expect(problems(() => demo.parse({ EF_NAME: 'x', EF_PORT: '1' }, check))).toEqual(['port 1 is reserved']);
  });

  it('throws ConfigError with name and message', () => {
    let err: unknown;
    try {
      demo.parse({});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).name).toBe('ConfigError');
    expect((err as Error).message).toBe('invalid configuration: EF_NAME is required (the name)');
  });

  it('lets errors other than ValueError through (a bug in a parser is not a bad value)', () => {
    const s = defineSettings(section, {
      x: { env: 'EF_X', type: custom('x', () => JSON.parse('{') as unknown), default: '1', doc: 'x' },
    });
    expect(() => s.parse({})).toThrow(SyntaxError);
  });

  it('refuses a declaration with a name twice, or declared and retired', () => {
    expect(() =>
      defineSettings(section, {
        a: { env: 'EF_A', type: text(), default: '', doc: 'a' },
        b: { env: 'EF_A', type: text(), default: '', doc: 'b' },
      }),
    ).toThrow(/EF_A is declared twice/);
    expect(() =>
      defineSettings(section, { a: { env: 'EF_A', type: text(), default: 'x', doc: 'a' } }, { retired: { EF_A: 'no' } }),
    ).toThrow(/both declared and retired/);
  });
});

describe('Settings.rows', () => {
  it('lists each setting with what it takes and its default', () => {
    expect(demo.rows()).toEqual([
      { name: 'EF_NAME', accepts: 'name', default: 'required', doc: 'the name' },
      { name: 'EF_PORT', accepts: 'TCP port', default: '8080', doc: 'the port' },
      { name: 'EF_DIR', accepts: 'absolute path', default: '/var/lib/<name>', doc: 'the directory' },
      { name: 'EF_PEER', accepts: 'host', default: 'unset: no peer', doc: 'a peer' },
    ]);
  });
});

describe('types', () => {
  const ok = <T>(t: { parse(s: string): T }, s: string) => t.parse(s);
  const bad = (t: { parse(s: string): unknown }, s: string) => expect(() => t.parse(s)).toThrow(ValueError);

  it('int', () => {
    expect(ok(int(0, 10), '7')).toBe(7);
    expect(ok(int(-5), '-3')).toBe(-3);
    for (const s of ['11', '-1', '1.5', '1e3', '0x10', 'x', '']) bad(int(0, 10), s);
    expect(int(1).accepts).toBe('integer >= 1');
    expect(int(1, 9).accepts).toBe('integer 1-9');
  });
  it('number', () => {
    expect(ok(number(0.1), '2.5')).toBe(2.5);
    expect(ok(number(0.1), '.5')).toBe(0.5);
    for (const s of ['0', '-1', 'x', '1e2', 'Infinity']) bad(number(0.1), s);
  });
  it('port', () => {
    expect(ok(port(), '65535')).toBe(65535);
    bad(port(), '0');
    bad(port(), '65536');
  });
  it('oneOf and logLevel', () => {
    expect(ok(oneOf(['a', 'b']), 'b')).toBe('b');
    bad(oneOf(['a', 'b']), 'c');
    expect(ok(logLevel(), 'debug')).toBe('debug');
    bad(logLevel(), 'verbose');
  });
  it('flag', () => {
    expect(ok(flag(), '1')).toBe(true);
    expect(ok(flag(), '0')).toBe(false);
    bad(flag(), 'yes');
  });
  it('absolutePath', () => {
    expect(ok(absolutePath(), '/a/./b/../c/')).toBe('/a/c');
    expect(ok(absolutePath(), '/')).toBe('/');
    bad(absolutePath(), 'a/b');
    bad(absolutePath({ belowRoot: true }), '/..');
  });
  it('list', () => {
    expect(ok(list(int(0)), '1, 2 ,3')).toEqual([1, 2, 3]);
    expect(() => list(int(0)).parse('1,x')).toThrow('item 2 "x": expected integer >= 0');
  });
});

function fail(message: string): never {
  throw new ValueError(message);
}
