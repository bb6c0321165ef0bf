/**
 * A fleet's NATS identity, made once per instance: the operator (identity key + signing key), the four accounts,
 * EF_SITES' scoped node signer, their JWTs, and the standing users (the provider's two, the claims pusher).
 * Node users are minted later, one per join, by the registrar (mintNodeUser); the hollow user only by `make bench`.
 *
 * Who holds what (identity/README.md): the hub reads the operator JWT and the account JWTs; the registrar the node
 * signer's seed; whoever revokes the operator signing seed and the claims pusher's credentials; the provider its two
 * credentials files. The operator's identity seed signs nothing after this.
 */
import { createAccount, createOperator } from '@nats-io/nkeys';
import { claimsPusherPermissions, providerPermissions } from '@edgefarm/proto';
import {
  ACCOUNT_ROLES,
  accountClaims,
  encodeAccountJwt,
  encodeOperatorJwt,
  reissueSitesAccount,
  type AccountKeys,
  type AccountRole,
} from './accounts.js';
import { seedKeyPair, seedText } from './keys.js';
import { formatCreds, mintAccountUser } from './users.js';

/** Every seed of a fleet. Secret: written only to files of mode 0600. */
export interface FleetSeeds {
  /** The operator's identity key: signs the operator JWT only (keep it offline). */
  operator: string;
  /** The operator's signing key: signs every account JWT (the revoker needs it). */
  operatorSigner: string;
  accounts: Record<AccountRole, string>;
  /** EF_SITES' scoped signing key: signs node users (the registrar needs it). */
  nodeSigner: string;
}

/** The public side of {@link FleetSeeds}. */
export interface FleetKeys {
  operator: string;
  operatorSigner: string;
  accounts: AccountKeys;
  nodeSigner: string;
}

/** Credentials files (text) of the fleet's standing users. Secret. */
export interface FleetCreds {
  providerDesired: string;
  providerCloud: string;
  claimsPusher: string;
}

export interface Fleet {
  seeds: FleetSeeds;
  keys: FleetKeys;
  jwts: { operator: string; accounts: Record<AccountRole, string> };
  creds: FleetCreds;
  desiredConsumerLimit: number | undefined;
}

/** The public keys of a fleet's seeds (each checked to be of its kind). */
export function fleetKeys(seeds: FleetSeeds): FleetKeys {
  const accounts = Object.fromEntries(
    ACCOUNT_ROLES.map((r) => [r, seedKeyPair('account', seeds.accounts[r], `accounts.${r}`).getPublicKey()]),
  ) as AccountKeys;
  return {
    operator: seedKeyPair('operator', seeds.operator, 'operator').getPublicKey(),
    operatorSigner: seedKeyPair('operator', seeds.operatorSigner, 'operatorSigner').getPublicKey(),
    accounts,
    nodeSigner: seedKeyPair('account', seeds.nodeSigner, 'nodeSigner').getPublicKey(),
  };
}

/** Fresh seeds for a fleet. */
export function newFleetSeeds(): FleetSeeds {
  const account = () => seedText(createAccount());
  return {
    operator: seedText(createOperator()),
    operatorSigner: seedText(createOperator()),
    accounts: { system: account(), desired: account(), cloud: account(), sites: account() },
    nodeSigner: account(),
  };
}

/** The operator and account JWTs of a fleet (EF_SITES without revocations). */
export async function fleetJwts(seeds: FleetSeeds, o: { desiredConsumerLimit?: number | undefined } = {}): Promise<Fleet['jwts']> {
  const keys = fleetKeys(seeds);
  const accounts = {} as Record<AccountRole, string>;
  for (const role of ACCOUNT_ROLES) {
    accounts[role] =
      role === 'sites'
        ? await reissueSitesAccount({
            operatorSigningSeed: seeds.operatorSigner,
            accounts: keys.accounts,
            nodeSignerPublicKey: keys.nodeSigner,
            revocations: {},
          })
        : await encodeAccountJwt(
            role,
            keys.accounts,
            accountClaims(
              role,
              keys.accounts,
              o.desiredConsumerLimit === undefined ? {} : { desiredConsumerLimit: o.desiredConsumerLimit },
            ),
            seeds.operatorSigner,
          );
  }
  return { operator: await encodeOperatorJwt(seeds.operator, keys.operatorSigner, keys.accounts.system), accounts };
}

/** The provider's two users (EF_DESIRED and EF_CLOUD, proto's providerPermissions, standard connections). */
export async function mintProviderCreds(seeds: FleetSeeds): Promise<{ desired: string; cloud: string }> {
  const desired = await mintAccountUser({
    accountSeed: seeds.accounts.desired,
    name: 'provider-desired',
    permissions: providerPermissions.desired(),
    connectionTypes: ['STANDARD'],
  });
  const cloud = await mintAccountUser({
    accountSeed: seeds.accounts.cloud,
    name: 'provider-cloud',
    permissions: providerPermissions.cloud(),
    connectionTypes: ['STANDARD'],
  });
  return { desired: formatCreds(desired.jwt, desired.seed), cloud: formatCreds(cloud.jwt, cloud.seed) };
}

/** The system-account user that may only push account JWTs ($SYS.REQ.CLAIMS.UPDATE). */
export async function mintClaimsPusherCreds(seeds: FleetSeeds): Promise<string> {
  const u = await mintAccountUser({
    accountSeed: seeds.accounts.system,
    name: 'claims-pusher',
    permissions: claimsPusherPermissions(),
    connectionTypes: ['STANDARD'],
  });
  return formatCreds(u.jwt, u.seed);
}

/** A whole fleet identity, from fresh seeds or given ones. */
export async function createFleet(o: { seeds?: FleetSeeds; desiredConsumerLimit?: number } = {}): Promise<Fleet> {
  const seeds = o.seeds ?? newFleetSeeds();
  const keys = fleetKeys(seeds);
  const jwts = await fleetJwts(seeds, { desiredConsumerLimit: o.desiredConsumerLimit });
  const provider = await mintProviderCreds(seeds);
  const creds = { providerDesired: provider.desired, providerCloud: provider.cloud, claimsPusher: await mintClaimsPusherCreds(seeds) };
  return { seeds, keys, jwts, creds, desiredConsumerLimit: o.desiredConsumerLimit };
}
