/**
 * STAND-IN for @edgefarm/identity's node-user functions, written while the identity workspace was being written in
 * parallel with exactly these signatures. When identity exports them, this file becomes
 * `export { mintNodeUser, formatCreds } from '@edgefarm/identity';` and nothing else changes.
 */
import { encodeUser, fmtCreds } from '@nats-io/jwt';
import { fromPublic, fromSeed } from '@nats-io/nkeys';
import { isUserPublicKey } from '@edgefarm/proto';

/**
 * A node's user JWT, signed by the EF_SITES scoped signing key (no permissions of its own: the scope's template
 * applies), expiring at `expiresAt`. Refuses a `nodePublicKey` that is not a user nkey.
 */
export async function mintNodeUser(o: {
  signerSeed: string;
  accountPublicKey: string;
  nodePublicKey: string;
  name: string;
  expiresAt: Date;
  issuedAt?: Date;
}): Promise<string> {
  if (!isUserPublicKey(o.nodePublicKey)) throw new Error('nodePublicKey is not a NATS user public key');
  fromPublic(o.nodePublicKey);
  const signer = fromSeed(new TextEncoder().encode(o.signerSeed));
  return encodeUser(
    o.name,
    o.nodePublicKey,
    o.accountPublicKey,
    {},
    { signer, scopedUser: true, exp: Math.floor(o.expiresAt.getTime() / 1000) },
  );
}

/** The standard NATS credentials file text: the user JWT and the user's seed. */
export function formatCreds(jwt: string, seed: string): string {
  return new TextDecoder().decode(fmtCreds(jwt, fromSeed(new TextEncoder().encode(seed))));
}
