/**
 * The proof of a renewal: the exact bytes of the request body signed with the node's nkey seed (ed25519), sent
 * base64url in the `x-edgefarm-signature` header. The registrar verifies it against the public key in the body,
 * which must be the one the EdgeNode recorded at join.
 */
import { fromPublic, fromSeed } from '@nats-io/nkeys';
import { isUserPublicKey } from '@edgefarm/proto';

/** An ed25519 signature (64 bytes) in unpadded base64url: exactly 86 characters. */
const SIGNATURE = /^[A-Za-z0-9_-]{86}$/;

/** The signature header value of `body`, signed with a user seed (`SU...`). */
export function signBody(seed: string, body: Uint8Array): string {
  const kp = fromSeed(new TextEncoder().encode(seed));
  try {
    return Buffer.from(kp.sign(body)).toString('base64url');
  } finally {
    kp.clear();
  }
}

/**
 * True when `signature` (the header value) is `publicKey`'s signature of `body`; false for anything malformed. Only
 * canonical spellings count: a user key of exactly 56 characters (the nkeys library also takes a longer string whose
 * extra characters it drops) and the one base64url text of the signature's bytes.
 */
export function verifyBody(publicKey: string, body: Uint8Array, signature: string | undefined): boolean {
  if (signature === undefined || !SIGNATURE.test(signature) || !isUserPublicKey(publicKey)) return false;
  const bytes = Buffer.from(signature, 'base64url');
  if (bytes.length !== 64 || bytes.toString('base64url') !== signature) return false;
  try {
    return fromPublic(publicKey).verify(body, bytes);
  } catch {
    return false;
  }
}

/** The public key of a user seed; throws when it is not one. */
export function publicKeyOfSeed(seed: string): string {
  const kp = fromSeed(new TextEncoder().encode(seed));
  try {
    const pk = kp.getPublicKey();
    if (!pk.startsWith('U')) throw new Error('not a user seed');
    return pk;
  } finally {
    kp.clear();
  }
}
