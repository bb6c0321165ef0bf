/**
 * The revoker's settings, declared here and spread into PROVIDER_SETTINGS (config.ts), so the revoker's part of the
 * provider's configuration stays in one place. All four together turn the revoker on; none leaves it off.
 */
import { ValueError, custom, text, type Problem } from '@edgefarm/settings';
import type { FleetAccounts } from './revoker.js';

export interface RevokerConfig {
  operatorSigningSeedFile: string;
  systemCredsFile: string;
  accounts: FleetAccounts;
  nodeSignerPublicKey: string;
}

const ACCOUNT_KEY = /^A[A-Z2-7]{55}$/;
const ROLES = ['system', 'desired', 'cloud', 'sites'] as const;

const accounts = custom('system=A...,desired=A...,cloud=A...,sites=A... (account public keys)', (raw): FleetAccounts => {
  const out: Partial<FleetAccounts> = {};
  for (const part of raw.split(',')) {
    const [role, key] = part.trim().split('=');
    if (!ROLES.includes(role as (typeof ROLES)[number]) || !key || !ACCOUNT_KEY.test(key))
      throw new ValueError(`"${part.trim()}" is not <role>=<account public key>`);
    out[role as keyof FleetAccounts] = key;
  }
  const missing = ROLES.filter((r) => !out[r]);
  if (missing.length > 0) throw new ValueError(`missing ${missing.join(', ')}`);
  return out as FleetAccounts;
});

export const REVOKER_SPECS = {
  revokerOperatorSeedFile: {
    env: 'EF_OPERATOR_SIGNING_SEED_FILE',
    type: text('file'),
    unset: 'no revoker: revocations reach the hub only by hand',
    doc: "the operator signing key's seed: the revoker re-issues the EF_SITES account JWT with the revocation list",
  },
  revokerSystemCreds: {
    env: 'EF_NATS_SYSTEM_CREDS',
    type: text('creds file'),
    unset: 'see EF_OPERATOR_SIGNING_SEED_FILE',
    doc: "a system-account user's credentials: the revoker pushes the account JWT with $SYS.REQ.CLAIMS.UPDATE",
  },
  revokerAccounts: {
    env: 'EF_FLEET_ACCOUNTS',
    type: accounts,
    unset: 'see EF_OPERATOR_SIGNING_SEED_FILE',
    doc: "the hub accounts' public keys, as system=A...,desired=A...,cloud=A...,sites=A...",
  },
  revokerNodeSigner: {
    env: 'EF_NODE_SIGNER_KEY',
    type: custom('account-type public key (A...)', (raw) => {
      if (!ACCOUNT_KEY.test(raw)) throw new ValueError('is not a signing key (A...)');
      return raw;
    }),
    unset: 'see EF_OPERATOR_SIGNING_SEED_FILE',
    doc: "EF_SITES' scoped signing key of node users (the registrar holds its seed)",
  },
} as const;

interface RevokerValues {
  revokerOperatorSeedFile?: string;
  revokerSystemCreds?: string;
  revokerAccounts?: FleetAccounts;
  revokerNodeSigner?: string;
}

/** The revoker's configuration when all four are set; a problem when only some are. */
export function revokerConfig(v: RevokerValues, problem?: Problem): RevokerConfig | undefined {
  const set = [v.revokerOperatorSeedFile, v.revokerSystemCreds, v.revokerAccounts, v.revokerNodeSigner].filter(
    (x) => x !== undefined,
  ).length;
  if (set === 0) return undefined;
  if (set < 4 || !v.revokerOperatorSeedFile || !v.revokerSystemCreds || !v.revokerAccounts || !v.revokerNodeSigner) {
    problem?.('EF_OPERATOR_SIGNING_SEED_FILE, EF_NATS_SYSTEM_CREDS, EF_FLEET_ACCOUNTS and EF_NODE_SIGNER_KEY go together');
    return undefined;
  }
  return {
    operatorSigningSeedFile: v.revokerOperatorSeedFile,
    systemCredsFile: v.revokerSystemCreds,
    accounts: v.revokerAccounts,
    nodeSignerPublicKey: v.revokerNodeSigner,
  };
}
