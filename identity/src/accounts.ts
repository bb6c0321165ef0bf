/**
 * The operator's and the accounts' JWTs (decision 0008), built from proto's HUB_ACCOUNT_LAYOUT: the system account,
 * EF_DESIRED (JetStream; a consumer limit), EF_CLOUD (JetStream) and EF_SITES (no JetStream; the scoped signing key
 * whose template is proto's nodeLeafPermissionTemplate, leaf connections only; the revocations).
 *
 * Account JWTs are signed by the operator's signing key, so the operator's identity key can stay offline; whoever
 * revokes a node re-issues EF_SITES with {@link reissueSitesAccount}. The operator is not in strict signing-key mode:
 * nats-server applies that mode to users too (a user signed by its account's identity key is refused), and the
 * standing users (provider, claims pusher, bench hollow site) are signed by their accounts' keys.
 */
import { encodeAccount, encodeOperator, type Account, type Export, type Import, type OperatorLimits, type SigningKey } from '@nats-io/jwt';
import {
  HUB_ACCOUNT_LAYOUT,
  HubAccounts,
  NODE_SIGNER_ROLE,
  nodeLeafPermissionTemplate,
  type AccountExport,
  type HubAccount,
} from '@edgefarm/proto';
import { IdentityInputError } from './errors.js';
import { publicKey, seedKeyPair } from './keys.js';
import { jwtPermissions } from './permissions.js';

/** The four accounts of a fleet by role: the system account and the three hub accounts of proto's layout. */
export type AccountRole = 'system' | keyof typeof HubAccounts;
export const ACCOUNT_ROLES: readonly AccountRole[] = ['system', 'desired', 'cloud', 'sites'];

/** Public keys of the fleet's accounts, by role. */
export type AccountKeys = Record<AccountRole, string>;

/** Names the accounts carry in their JWTs (the hub accounts' are proto's). */
export const ACCOUNT_NAMES: Record<AccountRole, string> = { system: 'SYS', ...HubAccounts };

export const OPERATOR_NAME = 'edgefarm';

/**
 * Consumers an EF_DESIRED stream may have (nats-server applies an account's consumer limit per stream, to the
 * consumers created through the API: a node's listings and the provider's; a site stream's source is a direct
 * consumer and is not counted). Bounds what nodes can pile up with the consumer-create bodies they choose.
 */
export const DEFAULT_DESIRED_CONSUMER_LIMIT = 10_000;

/** At most this many revoked keys in EF_SITES (each ~100 bytes of JWT; the claims push must stay under 1 MiB). */
export const MAX_REVOCATIONS = 5_000;

/** Connection type of every node user: the template allows nothing but a leaf connection. */
export const NODE_CONNECTION_TYPES = ['LEAFNODE'] as const;

const NO_LIMIT = -1;
const BASE_LIMITS: OperatorLimits = {
  subs: NO_LIMIT,
  data: NO_LIMIT,
  payload: NO_LIMIT,
  imports: NO_LIMIT,
  exports: NO_LIMIT,
  wildcards: true,
  conn: NO_LIMIT,
  leaf: NO_LIMIT,
  // every user proves its key by signing the server's nonce
  disallow_bearer: true,
};
const JETSTREAM_OFF: OperatorLimits = { mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0 };
const jetstreamOn = (consumers: number): OperatorLimits => ({
  mem_storage: NO_LIMIT,
  disk_storage: NO_LIMIT,
  streams: NO_LIMIT,
  consumer: consumers,
  max_ack_pending: NO_LIMIT,
  mem_max_stream_bytes: NO_LIMIT,
  disk_max_stream_bytes: NO_LIMIT,
  max_bytes_required: false,
});

export interface AccountClaimOptions {
  /** Consumer limit of EF_DESIRED; default {@link DEFAULT_DESIRED_CONSUMER_LIMIT}. */
  desiredConsumerLimit?: number;
}

/** The role of a hub account name of proto's layout. */
function roleOf(account: HubAccount): keyof typeof HubAccounts {
  const role = (Object.keys(HubAccounts) as (keyof typeof HubAccounts)[]).find((r) => HubAccounts[r] === account);
  if (!role) throw new Error(`no role for account ${account}`);
  return role;
}

const exportClaim = (e: AccountExport): Export => ({
  name: e.name,
  subject: e.subject,
  type: e.type,
  // one reply per request: a site answers a request to it once, the status/event services ack once
  ...(e.type === 'service' ? { response_type: 'Singleton' as const } : {}),
});

/** The scoped signing key of EF_SITES: node users get proto's template and leaf connections only. */
export function nodeSignerScope(nodeSignerPublicKey: string): SigningKey {
  return {
    kind: 'user_scope',
    key: publicKey('account', nodeSignerPublicKey, 'nodeSignerPublicKey'),
    role: NODE_SIGNER_ROLE,
    template: {
      ...jwtPermissions(nodeLeafPermissionTemplate()),
      subs: NO_LIMIT,
      data: NO_LIMIT,
      payload: NO_LIMIT,
      allowed_connection_types: [...NODE_CONNECTION_TYPES],
    },
  };
}

/**
 * The claims of one account: the system account's, or a hub account's from proto's layout (exports, imports naming
 * the exporting account's key, JetStream only where the layout says). EF_SITES also carries the node signer's scope
 * and `revocations` (user public key -> unix seconds: that key's JWTs issued at or before are refused).
 */
export function accountClaims(
  role: AccountRole,
  keys: AccountKeys,
  o: AccountClaimOptions & { nodeSignerPublicKey?: string; revocations?: Record<string, number> } = {},
): Partial<Account> {
  for (const r of ACCOUNT_ROLES) publicKey('account', keys[r], `accounts.${r}`);
  if (role === 'system') return { limits: { ...BASE_LIMITS, ...JETSTREAM_OFF } };
  const layout = HUB_ACCOUNT_LAYOUT[HubAccounts[role]];
  const consumers = consumerLimit(o.desiredConsumerLimit);
  const claims: Partial<Account> = {
    limits: { ...BASE_LIMITS, ...(layout.jetstream ? jetstreamOn(role === 'desired' ? consumers : NO_LIMIT) : JETSTREAM_OFF) },
    ...(layout.exports.length ? { exports: layout.exports.map(exportClaim) } : {}),
    ...(layout.imports.length
      ? {
          imports: layout.imports.map((i): Import => ({ name: i.name, subject: i.subject, account: keys[roleOf(i.from)], type: i.type })),
        }
      : {}),
  };
  if (role === 'sites') {
    if (o.nodeSignerPublicKey === undefined) throw new IdentityInputError('nodeSignerPublicKey', 'EF_SITES needs the node signer');
    claims.signing_keys = [nodeSignerScope(o.nodeSignerPublicKey)];
    const revocations = validRevocations(o.revocations ?? {});
    if (Object.keys(revocations).length) claims.revocations = revocations;
  }
  return claims;
}

function consumerLimit(n: number | undefined): number {
  const v = n ?? DEFAULT_DESIRED_CONSUMER_LIMIT;
  if (!Number.isSafeInteger(v) || v < 1 || v > 10_000_000) {
    throw new IdentityInputError('desiredConsumerLimit', 'must be an integer from 1 to 10000000');
  }
  return v;
}

/** Revocations checked (user keys, unix seconds) and sorted by key, so the same list gives the same claims. */
export function validRevocations(revocations: Record<string, number>): Record<string, number> {
  if (typeof revocations !== 'object' || revocations === null) throw new IdentityInputError('revocations', 'not an object');
  const entries = Object.entries(revocations);
  if (entries.length > MAX_REVOCATIONS) {
    throw new IdentityInputError('revocations', `${entries.length} entries, at most ${MAX_REVOCATIONS} (drop those whose JWTs expired)`);
  }
  const out: Record<string, number> = {};
  // a bad entry is named by its position: a key pasted in the wrong place could be a seed
  entries.forEach(([key, at], i) => {
    publicKey('user', key, `revocations entry ${i}`);
    if (!Number.isSafeInteger(at) || at < 0 || at > 2 ** 32) throw new IdentityInputError(`revocations entry ${i}`, 'not unix seconds');
  });
  for (const [key, at] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[key] = at;
  return out;
}

/** An account JWT signed by the operator's signing key. */
export async function encodeAccountJwt(
  role: AccountRole,
  keys: AccountKeys,
  claims: Partial<Account>,
  operatorSigningSeed: string,
): Promise<string> {
  const signer = seedKeyPair('operator', operatorSigningSeed, 'operatorSigningSeed');
  return encodeAccount(ACCOUNT_NAMES[role], publicKey('account', keys[role], `accounts.${role}`), claims, { signer });
}

/** The operator JWT, self-signed by its identity key: the system account and the signing key that signs every account. */
export async function encodeOperatorJwt(operatorSeed: string, operatorSigningPublicKey: string, systemAccount: string): Promise<string> {
  const okp = seedKeyPair('operator', operatorSeed, 'operatorSeed');
  const claims = {
    system_account: publicKey('account', systemAccount, 'systemAccount'),
    signing_keys: [publicKey('operator', operatorSigningPublicKey, 'operatorSigningPublicKey')],
  };
  return encodeOperator(OPERATOR_NAME, okp, claims);
}

/**
 * The EF_SITES account JWT (layout, the node signer's scope with its template, limits) with these revocations,
 * signed by an operator signing key: what a revoker pushes with pushAccountClaims. The same input gives the same
 * claims (only iat and jti differ).
 */
export async function reissueSitesAccount(o: {
  operatorSigningSeed: string;
  accounts: { system: string; desired: string; cloud: string; sites: string };
  nodeSignerPublicKey: string;
  revocations: Record<string, number>;
}): Promise<string> {
  const claims = accountClaims('sites', o.accounts, { nodeSignerPublicKey: o.nodeSignerPublicKey, revocations: o.revocations });
  return encodeAccountJwt('sites', o.accounts, claims, o.operatorSigningSeed);
}
