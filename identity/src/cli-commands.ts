/** The commands of identity's CLI (cli.ts); see there. */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createUser } from '@nats-io/nkeys';
import { isIdentityInputError, isIdentityStoreError } from './errors.js';
import { createFleet } from './fleet.js';
import { renderHubConfig } from './hub-config.js';
import { seedText } from './keys.js';
import { fleetPaths, readFleetFile, readPreload, readSeedFile, writeFileAtomic, writeFleet } from './store.js';
import { formatCreds, mintHollowUser, mintNodeUser } from './users.js';

type Values = Record<string, string | string[] | undefined>;

function monitorScope(x: string | undefined): boolean {
  if (x === undefined || x === 'loopback') return false;
  if (x === 'pod') return true;
  throw new UsageError('--monitor-scope takes loopback or pod');
}

class UsageError extends Error {
  override name = 'UsageError';
}

function need(v: Values, name: string): string {
  const x = v[name];
  if (typeof x !== 'string' || x === '') throw new UsageError(`--${name} is required`);
  return x;
}
function maybe(v: Values, name: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : undefined;
}
function int(v: Values, name: string, dflt: number, min: number, max: number): number {
  const x = maybe(v, name);
  if (x === undefined) return dflt;
  const n = Number(x);
  if (!/^\d+$/.test(x) || n < min || n > max) throw new UsageError(`--${name} takes an integer from ${min} to ${max}`);
  return n;
}

const str = { type: 'string' } as const;
const commands: Record<string, { options: Record<string, { type: 'string'; multiple?: boolean }>; run(v: Values): Promise<string> }> = {
  init: {
    options: { dir: str, 'desired-consumers': str },
    async run(v) {
      const dir = need(v, 'dir');
      const limit = maybe(v, 'desired-consumers') === undefined ? undefined : int(v, 'desired-consumers', 0, 1, 10_000_000);
      const fleet = await createFleet(limit === undefined ? {} : { desiredConsumerLimit: limit });
      const wrote = await writeFleet(dir, fleet);
      const { keys } = await readFleetFile(dir);
      return [
        `${wrote ? 'created' : 'reusing'} the fleet identity in ${dir}`,
        `operator ${keys.operator}`,
        ...Object.entries(keys.accounts).map(([r, k]) => `account ${r} ${k}`),
      ].join('\n');
    },
  },
  'hub-config': {
    options: {
      dir: str,
      name: str,
      listen: str,
      monitor: str,
      // loopback (default) or pod: the server runs in a pod and the kubelet probes its monitoring port
      'monitor-scope': str,
      leaf: str,
      cluster: str,
      route: { type: 'string', multiple: true },
      cert: str,
      key: str,
      ca: str,
      store: str,
      'resolver-dir': str,
      out: str,
    },
    async run(v) {
      const dir = need(v, 'dir');
      const { keys, preload } = await readPreload(dir);
      const cluster = maybe(v, 'cluster');
      const conf = renderHubConfig({
        serverName: need(v, 'name'),
        listen: need(v, 'listen'),
        monitor: need(v, 'monitor'),
        monitorInPod: monitorScope(maybe(v, 'monitor-scope')),
        leaf: { listen: need(v, 'leaf') },
        ...(cluster ? { cluster: { listen: cluster, routes: (v.route as string[] | undefined) ?? [] } } : {}),
        tls: { certFile: need(v, 'cert'), keyFile: need(v, 'key'), caFile: need(v, 'ca') },
        storeDir: need(v, 'store'),
        operatorJwtFile: path.resolve(fleetPaths(dir).operatorJwt),
        systemAccount: keys.system,
        resolverDir: need(v, 'resolver-dir'),
        preload,
      });
      const out = maybe(v, 'out');
      if (!out) return conf.trimEnd();
      await writeFileAtomic(out, conf, 0o644);
      return `wrote ${out}`;
    },
  },
  'provider-creds': {
    options: { dir: str },
    async run(v) {
      const p = fleetPaths(path.resolve(need(v, 'dir')));
      await readSeedFile(p.providerDesiredCreds);
      await readSeedFile(p.providerCloudCreds);
      return `EF_NATS_DESIRED_CREDS=${p.providerDesiredCreds}\nEF_NATS_CLOUD_CREDS=${p.providerCloudCreds}`;
    },
  },
  'node-creds': {
    options: { dir: str, node: str, out: str, days: str },
    async run(v) {
      const dir = need(v, 'dir');
      const out = need(v, 'out');
      const days = int(v, 'days', 30, 1, 366);
      const { keys } = await readFleetFile(dir);
      const nkp = createUser();
      const jwt = await mintNodeUser({
        signerSeed: await readSeedFile(fleetPaths(dir).nodeSignerSeed),
        accountPublicKey: keys.accounts.sites,
        nodePublicKey: nkp.getPublicKey(),
        name: need(v, 'node'),
        expiresAt: new Date(Date.now() + days * 86_400_000),
      });
      await mkdir(out, { recursive: true, mode: 0o700 });
      await writeFileAtomic(path.join(out, 'node.nk'), `${seedText(nkp)}\n`, 0o600);
      await writeFileAtomic(path.join(out, 'node.creds'), formatCreds(jwt, seedText(nkp)), 0o600);
      return nkp.getPublicKey();
    },
  },
  'hollow-creds': {
    options: { dir: str, out: str },
    async run(v) {
      const dir = need(v, 'dir');
      const u = await mintHollowUser({ sitesAccountSeed: await readSeedFile(fleetPaths(dir).accountSeed('sites')) });
      const out = need(v, 'out');
      await writeFileAtomic(out, formatCreds(u.jwt, u.seed), 0o600);
      return `wrote ${out} (bench only: every node's subjects)`;
    },
  },
};

/** Runs one command; what it prints goes to `out` and `err`. Resolves with the exit code. */
export async function runCli(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [name = '', ...args] = argv;
  const command = commands[name];
  if (!command) {
    err(`usage: cli.js ${Object.keys(commands).join('|')} [options] (see identity/README.md)\n`);
    return 2;
  }
  try {
    const { values } = parseArgs({ args, options: command.options, strict: true, allowPositionals: false });
    out(`${await command.run(values)}\n`);
    return 0;
  } catch (e) {
    // node's own errors (parseArgs) may come from another realm: no instanceof
    const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
    const usage = e instanceof UsageError || isIdentityInputError(e) || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'));
    if (!usage && !isIdentityStoreError(e)) throw e;
    err(`cli.js ${name}: ${(e as Error).message}\n`);
    return usage ? 2 : 1;
  }
}
