// Fuzzing the `edgefarm` command line where it parses values: --ttl (parseTtl), -o/--output, --label, --timeout,
// --listen, --monitor, --hub and the token of `join`, the names of `status` and the values of `site config`, through
// run() as a user types them (doctor's values: doctor.test.ts). Invariants: parseTtl throws only CliError and its
// result is in range; a bad value ends with the usage exit code (or the token's), never with
// `failed` (an unexpected error), no hang; nothing reaches the network or the Kubernetes API with a bad value.
import os from 'node:os';
import path from 'node:path';
import { fc, fuzzAsyncProperty, fuzzDecoder, hostileString } from '@edgefarm/testing/fuzz';
import { MAX_TOKEN_TTL_SECONDS } from '@edgefarm/registrar';
import { CliError, EXIT } from './errors.js';
import { FakeCliKube } from './kube-fake.js';
import { parseTtl } from './output.js';
import { run } from './program.js';

const ttl = fc.oneof(
  hostileString('0123456789smhd '),
  fc
    .tuple(
      fc.oneof(fc.nat(), fc.constantFrom(0, 59, 60, 86_400, 86_401, 999_999, 1e21)),
      fc.constantFrom('s', 'm', 'h', 'd', '', 'ms', 'S'),
    )
    .map(([n, u]) => `${n}${u}`),
);
const value = fc.oneof(
  hostileString(),
  fc.constantFrom('', '-', '--', '-o', '--help', 'json', 'table', 'wide', 'yaml', 'off', '127.0.0.1:4222'),
);
const hub = fc
  .oneof(hostileString(), fc.constantFrom('http://r', 'https://', 'https://user:pw@r', 'ftp://r', 'r:8443'))
  .filter((h) => !/^\s*https:\/\/[a-z0-9]/i.test(h));

async function cli(args: string[]): Promise<number> {
  return run(args, {
    out: () => undefined,
    err: () => undefined,
    now: () => Date.parse('2026-01-10T12:00:00Z'),
    kube: () => new FakeCliKube(),
    readInput: () => Promise.reject(new Error('ENOENT')),
  });
}

describe('edgefarm command line values (fuzz)', () => {
  it('parseTtl: only CliError (usage), no hang, a result from 1 minute to the bound', () => {
    fuzzDecoder('cli.parseTtl', {
      inputs: ttl,
      decode: (t) => parseTtl(t, MAX_TOKEN_TTL_SECONDS),
      isExpected: (e) => e instanceof CliError && e.exitCode === EXIT.usage,
      check: (_in, out) => Number.isSafeInteger(out) && (out as number) >= 60 && (out as number) <= MAX_TOKEN_TTL_SECONDS,
    });
  });

  it('token create: a bad --ttl, --output or --label ends with the usage exit code', async () => {
    await fuzzAsyncProperty('cli.token-create values', [ttl, value, value], async (t, o, l) => {
      const code = await cli(['token', 'create', 'gw-1', '--ttl', t, '-o', o, '--label', l]);
      return code === EXIT.ok || code === EXIT.usage;
    });
  });

  it('join: a bad --timeout, --listen, --monitor, --hub, --output or token ends before any network call', async () => {
    const dir = path.join(os.tmpdir(), `ef-cli-fuzz-absent-${process.pid}`, 'edgefarm');
    await fuzzAsyncProperty(
      'cli.join values',
      [value, value, value, hub, value, fc.oneof(value, fc.constant(`ef1.abc123.${'a'.repeat(32)}.${'f'.repeat(64)}`))],
      async (timeout, listen, monitor, h, o, token) => {
        const code = await cli([
          'join',
          '--dir',
          dir,
          '--token',
          token,
          '--hub',
          h,
          '--timeout',
          timeout,
          '--listen',
          listen,
          '--monitor',
          monitor,
          '-o',
          o,
        ]);
        return code === EXIT.usage || code === EXIT.tokenRefused;
      },
    );
  });

  it('status: hostile node names and --output end with the usage exit code (or a clean not-found), never an unexpected error', async () => {
    await fuzzAsyncProperty('cli.status values', [fc.array(value, { maxLength: 3 }), value], async (names, o) => {
      const code = await cli(['status', ...names, '-o', o]);
      return code === EXIT.usage || code === EXIT.notFound || code === EXIT.ok;
    });
  });

  it('site config: hostile --hub-leaf-urls, --agent-key, --dir, --listen, --monitor, --store-dir end with the usage exit code', async () => {
    await fuzzAsyncProperty(
      'cli.site-config values',
      [fc.oneof(value, fc.constant('tls://h:7422')), value, value, value, value, value],
      async (urls, key, dir, listen, monitor, store) => {
        const code = await cli([
          'site',
          'config',
          'gw-1',
          '--hub-leaf-urls',
          urls,
          '--agent-key',
          key,
          '--dir',
          dir,
          '--listen',
          listen,
          '--monitor',
          monitor,
          '--store-dir',
          store,
        ]);
        return code === EXIT.usage;
      },
    );
  });
});
