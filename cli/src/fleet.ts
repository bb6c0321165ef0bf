/**
 * `edgefarm fleet init` (the fleet's NATS identity and TLS, once) and `edgefarm fleet secrets` (the ConfigMap and
 * Secrets an install creates from them, printed for GitOps or applied server-side): reference/install.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  createFleet,
  fleetPaths,
  isIdentityInputError,
  isIdentityStoreError,
  readFleetFile,
  readPreload,
  readSeedFile,
  seedKeyPair,
  writeFleet,
} from '@edgefarm/identity';
import { kube } from './admin.js';
import { CliError, EXIT } from './errors.js';
import { FLEET_FIELD_MANAGER, fleetObjects, type FleetInputs, type FleetObjectOptions, type HubPaths } from './fleet-objects.js';
import { ensureFleetTls, readFleetTls, type FleetTlsOptions } from './fleet-tls.js';
import type { CliKube } from './kube.js';
import { json, yaml, type Streams } from './output.js';

export interface FleetContext extends Streams {
  now: () => number;
}

/** What `fleet init` is given: the TLS options without the clock (taken when it runs). */
export type FleetInitOptions = Omit<FleetTlsOptions, 'now'>;

/** The TLS directory of a fleet directory when --tls-dir is not given. */
export const tlsDirOf = (dir: string) => path.join(dir, 'tls');

export async function fleetInit(ctx: FleetContext, o: FleetInitOptions): Promise<void> {
  const wrote = await identity(async () => writeFleet(o.dir, await createFleet()));
  const tls = await ensureFleetTls({ ...o, dir: tlsDirOf(o.dir), now: ctx.now });
  for (const w of tls.warnings) ctx.err(`warning: ${w}\n`);
  ctx.out(
    `${wrote ? 'created' : 'kept'} the fleet identity in ${o.dir}\n` +
      (tls.made.length ? `made ${tls.made.join(', ')} in ${tlsDirOf(o.dir)}\n` : '') +
      (tls.kept.length ? `kept ${tls.kept.join(', ')} in ${tlsDirOf(o.dir)}\n` : ''),
  );
}

export interface FleetSecretsOptions extends Omit<FleetObjectOptions, 'paths'> {
  dir: string;
  tlsDir: string;
  /** Print (yaml, json) or apply. */
  mode: 'yaml' | 'json' | 'apply';
  /** Where the hub's files are (default: the base's pod paths); tests render for a local nats-server -t. */
  paths?: HubPaths;
}

export async function fleetSecrets(ctx: FleetContext & { kube?: () => CliKube }, o: FleetSecretsOptions): Promise<void> {
  const inputs = await readFleetInputs(o.dir, o.tlsDir);
  const objects = await identity(async () => fleetObjects(inputs, o));
  if (o.mode === 'apply') {
    const k = ctx.kube!();
    for (const obj of objects) {
      const what = `${obj.kind.toLowerCase()}/${obj.metadata.name}`;
      await kube(`applying ${what} in ${o.namespace}`, () => k.applyObject(obj, FLEET_FIELD_MANAGER));
      ctx.out(`${what} serverside-applied\n`);
    }
    return;
  }
  ctx.err('# the output holds secrets (keys, seeds, credentials): seal or encrypt it (sealed-secrets, SOPS) before committing it\n');
  if (o.mode === 'json') ctx.out(json({ apiVersion: 'v1', kind: 'List', items: objects }));
  else ctx.out(objects.map((obj) => yaml(obj)).join('---\n'));
}

/** The files of a fleet directory the objects hold, each seed checked against fleet.json. */
export async function readFleetInputs(dir: string, tlsDir: string): Promise<FleetInputs> {
  const tls = await readFleetTls(tlsDir);
  return identity(async () => {
    const p = fleetPaths(dir);
    const { keys } = await readFleetFile(dir);
    const { preload } = await readPreload(dir);
    const operatorSignerSeed = await readSeedFile(p.operatorSignerSeed);
    const nodeSignerSeed = await readSeedFile(p.nodeSignerSeed);
    if (seedKeyPair('operator', operatorSignerSeed, 'operator-signer.nk').getPublicKey() !== keys.operatorSigner)
      throw new CliError(EXIT.failed, `${p.operatorSignerSeed} does not match ${p.fleet}`);
    if (seedKeyPair('account', nodeSignerSeed, 'node-signer.nk').getPublicKey() !== keys.nodeSigner)
      throw new CliError(EXIT.failed, `${p.nodeSignerSeed} does not match ${p.fleet}`);
    // the files as they are (kubectl create --from-file did the same)
    const raw = (file: string) => readFile(file, 'utf8');
    await Promise.all([p.providerDesiredCreds, p.providerCloudCreds, p.claimsPusherCreds].map((f) => readSeedFile(f)));
    return {
      accounts: keys.accounts,
      nodeSigner: keys.nodeSigner,
      operatorJwt: await raw(p.operatorJwt),
      preload,
      providerDesiredCreds: await raw(p.providerDesiredCreds),
      providerCloudCreds: await raw(p.providerCloudCreds),
      claimsPusherCreds: await raw(p.claimsPusherCreds),
      operatorSignerSeed: await raw(p.operatorSignerSeed),
      nodeSignerSeed: await raw(p.nodeSignerSeed),
      tls,
    };
  });
}

/** identity's errors as the command's: its input errors are usage errors, its store errors failures. */
async function identity<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (isIdentityInputError(err)) throw new CliError(EXIT.usage, (err as Error).message, { cause: err });
    if (isIdentityStoreError(err)) throw new CliError(EXIT.failed, (err as Error).message, { cause: err });
    throw err;
  }
}
