/**
 * User JWTs and their credentials files: a node's (signed by EF_SITES' scoped key, no permissions of its own: the
 * scope's template applies), the provider's two, the system-account user that pushes claims, and the bench-only
 * hollow site user. Seeds are returned to the caller and never logged here.
 */
import { createHash } from 'node:crypto';
import { Algorithms, Base64Codec, Base64UrlCodec, encodeUser, type ConnectionType, type User } from '@nats-io/jwt';
import { createUser, type KeyPair } from '@nats-io/nkeys';
import { hollowLeafPermissions, type SubjectPermissions } from '@edgefarm/proto';
import { IdentityInputError } from './errors.js';
import { dateAfter, nodeName, publicKey, seedKeyPair, seedText, unixSeconds } from './keys.js';
import { jwtPermissions } from './permissions.js';

/** The longest a node's JWT may live (the registrar renews well before; a scope cannot cap `exp` itself). */
export const MAX_NODE_LIFETIME_MS = 366 * 86_400_000;

/** How far in the future an `issuedAt` may be (clock skew): a later `iat` would slip past a revocation at T < iat. */
const MAX_ISSUED_AT_SKEW_MS = 5_000;

/**
 * A node's user JWT: subject `nodePublicKey` (the key the node made at join and proves at connect), issuer the
 * EF_SITES scoped key `signerSeed` on behalf of `accountPublicKey`, name `name` (a label: the template names the
 * node by its key), expiring at `expiresAt` (at most {@link MAX_NODE_LIFETIME_MS} after `issuedAt`, default now).
 * It carries no permissions or limits: the server applies the scope's template (proto's nodeLeafPermissionTemplate,
 * leaf connections only). Refuses a nodePublicKey that is not a user nkey, a name that is not a node name, a signer
 * that is not an account seed, an `issuedAt` in the future. `now` is the signer's clock (default the system's).
 */
export async function mintNodeUser(o: {
  signerSeed: string;
  accountPublicKey: string;
  nodePublicKey: string;
  name: string;
  expiresAt: Date;
  issuedAt?: Date;
  now?: Date;
}): Promise<string> {
  const signer = seedKeyPair('account', o.signerSeed, 'signerSeed');
  const account = publicKey('account', o.accountPublicKey, 'accountPublicKey');
  if (signer.getPublicKey() === account)
    throw new IdentityInputError('signerSeed', 'is the account key itself, not its scoped signing key');
  const subject = publicKey('user', o.nodePublicKey, 'nodePublicKey');
  const name = nodeName(o.name);
  const now = o.now ?? new Date();
  const issuedAt = o.issuedAt ?? now;
  if (!(issuedAt instanceof Date) || Number.isNaN(issuedAt.getTime())) throw new IdentityInputError('issuedAt', 'not a valid date');
  if (issuedAt.getTime() > now.getTime() + MAX_ISSUED_AT_SKEW_MS) throw new IdentityInputError('issuedAt', 'is in the future');
  const expiresAt = dateAfter(o.expiresAt, new Date(Math.max(now.getTime(), issuedAt.getTime())), 'expiresAt', MAX_NODE_LIFETIME_MS);
  return encodeAt(
    { aud: 'NATS', exp: unixSeconds(expiresAt), name, sub: subject, nats: { issuer_account: account, type: 'user', version: 2 } },
    signer,
    unixSeconds(issuedAt),
  );
}

/**
 * Signs claims as @nats-io/jwt's encode() does (header, `iss`, `jti` = SHA-512 of the claims), with a chosen `iat`:
 * the library always takes the current time, a node's JWT takes the issue time the registrar records.
 */
async function encodeAt(claim: Record<string, unknown>, kp: KeyPair, iat: number): Promise<string> {
  const body: Record<string, unknown> = { ...claim, iss: kp.getPublicKey(), iat };
  body.jti = Base64Codec.encode(new Uint8Array(createHash('sha512').update(JSON.stringify(body)).digest()));
  const header = Base64UrlCodec.encode(JSON.stringify({ typ: 'JWT', alg: Algorithms.v2 }));
  const payload = `${header}.${Base64UrlCodec.encode(JSON.stringify(body))}`;
  return `${payload}.${Base64UrlCodec.encode(kp.sign(new TextEncoder().encode(payload)))}`;
}

/** A user, its JWT and its seed (the seed is the caller's to keep secret). */
export interface MintedUser {
  publicKey: string;
  jwt: string;
  seed: string;
}

/**
 * A user of an account signed by the account's own key (not a scope) with these permissions and connection types,
 * optionally expiring. The building block of the provider's, the claims pusher's and the hollow site's users.
 */
export async function mintAccountUser(o: {
  accountSeed: string;
  name: string;
  permissions: SubjectPermissions;
  connectionTypes: ConnectionType[];
  expiresAt?: Date;
}): Promise<MintedUser> {
  const akp = seedKeyPair('account', o.accountSeed, 'accountSeed');
  const name = nodeName(o.name, 'name');
  if (o.connectionTypes.length === 0) throw new IdentityInputError('connectionTypes', 'at least one');
  const ukp = createUser();
  const user: Partial<User> = { ...jwtPermissions(o.permissions), allowed_connection_types: [...o.connectionTypes] };
  const exp = o.expiresAt === undefined ? {} : { exp: unixSeconds(dateAfter(o.expiresAt, new Date(), 'expiresAt')) };
  const jwt = await encodeUser(name, ukp, akp, user, exp);
  return { publicKey: ukp.getPublicKey(), jwt, seed: seedText(ukp) };
}

/**
 * BENCH ONLY: the leaf user of a hollow site (`make bench`), signed by EF_SITES' account key with proto's
 * hollowLeafPermissions (every node's subjects behind one leaf). Never issued outside the bench: it can read and
 * write every node's desired state and status.
 */
export async function mintHollowUser(o: { sitesAccountSeed: string; expiresAt?: Date }): Promise<MintedUser> {
  return mintAccountUser({
    accountSeed: o.sitesAccountSeed,
    name: 'hollow-bench-only',
    permissions: hollowLeafPermissions(),
    connectionTypes: ['LEAFNODE'],
    ...(o.expiresAt ? { expiresAt: o.expiresAt } : {}),
  });
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The standard NATS credentials file text of a user JWT and the user's seed. Refuses a malformed JWT or seed. */
export function formatCreds(jwt: string, seed: string): string {
  if (typeof jwt !== 'string' || jwt.length > 64 * 1024 || !JWT_SHAPE.test(jwt)) throw new IdentityInputError('jwt', 'not a JWT');
  const kp = seedKeyPair('user', seed, 'seed');
  return `-----BEGIN NATS USER JWT-----
${jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
${seedText(kp)}
------END USER NKEY SEED------

*************************************************************
`;
}

/** The most a credentials file may hold: a JWT of at most 64 KiB, a seed and the banner. */
export const MAX_CREDS_BYTES = 80 * 1024;

/**
 * The one word between `begin` and `end`, each on a line of its own; undefined when absent. Linear in the text
 * (indexOf and trims): the regex this replaces backtracked quadratically over a flood of blank lines.
 */
function armored(text: string, begin: string, end: string): string | undefined {
  const b = text.indexOf(begin);
  if (b < 0) return undefined;
  const e = text.indexOf(end, b + begin.length);
  if (e < 0) return undefined;
  const inside = text.slice(b + begin.length, e);
  const word = inside.trim();
  if (word.length === 0 || /\s/.test(word)) return undefined;
  const before = inside.slice(0, inside.length - inside.trimStart().length);
  const after = inside.slice(inside.trimEnd().length);
  return before.includes('\n') && after.includes('\n') ? word : undefined;
}

/** The JWT and seed of a credentials file (what {@link formatCreds} writes). */
export function parseCreds(text: string): { jwt: string; seed: string } {
  if (typeof text !== 'string' || text.length > MAX_CREDS_BYTES)
    throw new IdentityInputError('creds', `not a credentials file (over ${MAX_CREDS_BYTES} bytes)`);
  const jwt = armored(text, '-----BEGIN NATS USER JWT-----', '------END NATS USER JWT------');
  const seed = armored(text, '-----BEGIN USER NKEY SEED-----', '------END USER NKEY SEED------');
  if (!jwt || !JWT_SHAPE.test(jwt)) throw new IdentityInputError('creds', 'no user JWT');
  if (!seed) throw new IdentityInputError('creds', 'no user seed');
  seedKeyPair('user', seed, 'creds seed');
  return { jwt, seed };
}
