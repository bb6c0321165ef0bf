/**
 * A fleet identity on disk, written once per instance (`identity init`) and read by whoever needs a part of it:
 *
 *   <dir>/                       0700
 *     fleet.json                 public keys and options; written last (its presence means the directory is whole)
 *     operator.jwt               the operator JWT (the hub's `operator`)
 *     accounts/<NAME>.jwt        SYS, EF_DESIRED, EF_CLOUD, EF_SITES as made at init (the hub's resolver_preload)
 *     keys/<name>.nk             0600 seeds: operator, operator-signer, SYS, EF_DESIRED, EF_CLOUD, EF_SITES,
 *                                node-signer
 *     users/<name>.creds         0600: provider-desired, provider-cloud, claims-pusher
 *
 * Reading refuses a seed file that group or others may read, a seed that does not match fleet.json, a half-written
 * directory.
 */
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { ACCOUNT_NAMES, ACCOUNT_ROLES, type AccountKeys, type AccountRole } from './accounts.js';
import { IdentityStoreError } from './errors.js';
import { fleetKeys, type Fleet, type FleetKeys, type FleetSeeds } from './fleet.js';

const FLEET_FILE = 'fleet.json';
const VERSION = 1;

/** Paths of a fleet directory's files. */
export function fleetPaths(dir: string) {
  const key = (name: string) => path.join(dir, 'keys', `${name}.nk`);
  return {
    fleet: path.join(dir, FLEET_FILE),
    operatorJwt: path.join(dir, 'operator.jwt'),
    accountJwt: (role: AccountRole) => path.join(dir, 'accounts', `${ACCOUNT_NAMES[role]}.jwt`),
    operatorSeed: key('operator'),
    operatorSignerSeed: key('operator-signer'),
    accountSeed: (role: AccountRole) => key(ACCOUNT_NAMES[role]),
    nodeSignerSeed: key('node-signer'),
    providerDesiredCreds: path.join(dir, 'users', 'provider-desired.creds'),
    providerCloudCreds: path.join(dir, 'users', 'provider-cloud.creds'),
    claimsPusherCreds: path.join(dir, 'users', 'claims-pusher.creds'),
  };
}

/** What fleet.json holds: nothing secret. */
export interface FleetFile {
  version: number;
  keys: FleetKeys;
  desiredConsumerLimit?: number;
  createdAt: string;
}

/** Writes `data` with `mode` to a temporary file, fsyncs it, renames it into place. */
export async function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/**
 * Writes a fleet into `dir` (created 0700). Refuses a directory that already holds fleet files (a fleet is made
 * once: use {@link readFleet}); returns false without writing when `dir` holds a whole fleet already.
 */
export async function writeFleet(dir: string, fleet: Fleet): Promise<boolean> {
  const p = fleetPaths(dir);
  if (await exists(p.fleet)) return false;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const present = (await readdir(dir)).filter((e) => ['operator.jwt', 'accounts', 'keys', 'users'].includes(e));
  if (present.length)
    throw new IdentityStoreError(dir, `holds ${present.join(', ')} but no ${FLEET_FILE}: a half-written fleet; remove it`);
  for (const sub of ['accounts', 'keys', 'users']) await mkdir(path.join(dir, sub), { mode: 0o700 });
  const secret = (file: string, text: string) => writeFileAtomic(file, `${text}\n`, 0o600);
  await secret(p.operatorSeed, fleet.seeds.operator);
  await secret(p.operatorSignerSeed, fleet.seeds.operatorSigner);
  for (const r of ACCOUNT_ROLES) await secret(p.accountSeed(r), fleet.seeds.accounts[r]);
  await secret(p.nodeSignerSeed, fleet.seeds.nodeSigner);
  await writeFileAtomic(p.providerDesiredCreds, fleet.creds.providerDesired, 0o600);
  await writeFileAtomic(p.providerCloudCreds, fleet.creds.providerCloud, 0o600);
  await writeFileAtomic(p.claimsPusherCreds, fleet.creds.claimsPusher, 0o600);
  await writeFileAtomic(p.operatorJwt, `${fleet.jwts.operator}\n`, 0o644);
  for (const r of ACCOUNT_ROLES) await writeFileAtomic(p.accountJwt(r), `${fleet.jwts.accounts[r]}\n`, 0o644);
  const file: FleetFile = {
    version: VERSION,
    keys: fleet.keys,
    ...(fleet.desiredConsumerLimit === undefined ? {} : { desiredConsumerLimit: fleet.desiredConsumerLimit }),
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(p.fleet, `${JSON.stringify(file, null, 2)}\n`, 0o644);
  return true;
}

/** fleet.json of `dir` (public keys only). */
export async function readFleetFile(dir: string): Promise<FleetFile> {
  const file = fleetPaths(dir).fleet;
  let parsed: FleetFile;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as FleetFile;
  } catch (err) {
    throw new IdentityStoreError(file, 'not readable as a fleet file (run `identity init` first)', { cause: err });
  }
  if (parsed?.version !== VERSION || typeof parsed.keys?.accounts !== 'object') {
    throw new IdentityStoreError(file, `not a version ${VERSION} fleet file`);
  }
  return parsed;
}

/** A seed file (0600 or stricter), trimmed. */
export async function readSeedFile(file: string): Promise<string> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    throw new IdentityStoreError(file, 'missing', { cause: err });
  }
  if ((st.mode & 0o077) !== 0) throw new IdentityStoreError(file, `mode ${(st.mode & 0o777).toString(8)}: group or others may read a seed`);
  return (await readFile(file, 'utf8')).trim();
}

/** The account JWTs as made at init, by public key (a hub's resolver_preload). */
export async function readPreload(dir: string): Promise<{ keys: AccountKeys; preload: Record<string, string> }> {
  const { keys } = await readFleetFile(dir);
  const preload: Record<string, string> = {};
  for (const r of ACCOUNT_ROLES) preload[keys.accounts[r]] = (await readFile(fleetPaths(dir).accountJwt(r), 'utf8')).trim();
  return { keys: keys.accounts, preload };
}

/** Every seed of a fleet directory, each checked against fleet.json. */
export async function readFleetSeeds(dir: string): Promise<FleetSeeds> {
  const p = fleetPaths(dir);
  const { keys } = await readFleetFile(dir);
  const accounts = {} as Record<AccountRole, string>;
  for (const r of ACCOUNT_ROLES) accounts[r] = await readSeedFile(p.accountSeed(r));
  const seeds: FleetSeeds = {
    operator: await readSeedFile(p.operatorSeed),
    operatorSigner: await readSeedFile(p.operatorSignerSeed),
    accounts,
    nodeSigner: await readSeedFile(p.nodeSignerSeed),
  };
  const have = fleetKeys(seeds);
  const same =
    have.operator === keys.operator &&
    have.operatorSigner === keys.operatorSigner &&
    have.nodeSigner === keys.nodeSigner &&
    ACCOUNT_ROLES.every((r) => have.accounts[r] === keys.accounts[r]);
  if (!same) throw new IdentityStoreError(dir, 'the seeds do not match fleet.json');
  return seeds;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
