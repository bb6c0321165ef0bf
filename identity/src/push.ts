/**
 * Installing an account JWT on a running hub: a request to $SYS.REQ.CLAIMS.UPDATE from a system-account connection
 * (the claims pusher's credentials). A full resolver stores the JWT (it survives restarts) and passes it to the
 * other members of a hub cluster; connections the new claims no longer allow (a revoked node's leaf) are closed.
 */
import { decode, type Account, type ClaimsData } from '@nats-io/jwt';
import type { NatsConnection } from '@nats-io/transport-node';
import { SYSTEM_CLAIMS_UPDATE } from '@edgefarm/proto';
import { ClaimsUpdateError, IdentityInputError } from './errors.js';

/** The longest account JWT sent (a NATS message's default max payload is 1 MiB). */
const MAX_JWT_BYTES = 1024 * 1024 - 1024;

interface ClaimsUpdateReply {
  data?: { code?: number; message?: string; account?: string };
  error?: { code?: number; description?: string; account?: string };
}

/**
 * Sends `accountJwt` (checked to be a validly signed account JWT) to $SYS.REQ.CLAIMS.UPDATE on `nc` and resolves
 * when a server answers code 200. Rejects with {@link ClaimsUpdateError} on no answer within `timeoutMs` (default
 * 5 s) or any other code.
 *
 * Pass the operator's signing keys as `issuers` (fleet.json's `keys.operatorSigner`): nats-server 2.12 answers 200 to
 * a JWT signed by an operator it does not trust and STORES it in its resolver directory; the running account is kept,
 * but after a restart the account is unusable (every site locked out) until a valid JWT is pushed again. With
 * `issuers`, such a JWT is refused here, before it is sent.
 */
export async function pushAccountClaims(
  nc: NatsConnection,
  accountJwt: string,
  o: { timeoutMs?: number; issuers?: string[] } = {},
): Promise<void> {
  const bytes = new TextEncoder().encode(accountJwt);
  if (bytes.length > MAX_JWT_BYTES) throw new IdentityInputError('accountJwt', `${bytes.length} bytes, at most ${MAX_JWT_BYTES}`);
  let claims: ClaimsData<Account>;
  try {
    claims = decode<Account>(accountJwt);
  } catch (err) {
    throw new IdentityInputError('accountJwt', 'not a validly signed JWT', { cause: err });
  }
  if (claims.nats.type !== 'account' || !claims.sub?.startsWith('A')) throw new IdentityInputError('accountJwt', 'not an account JWT');
  if (o.issuers && !o.issuers.includes(claims.iss)) {
    throw new IdentityInputError('accountJwt', `signed by ${claims.iss}, not by one of the operator's signing keys`);
  }
  let raw: string;
  try {
    const m = await nc.request(SYSTEM_CLAIMS_UPDATE, bytes, { timeout: o.timeoutMs ?? 5_000 });
    raw = m.string();
  } catch (err) {
    throw new ClaimsUpdateError(`no answer to the claims update of account ${claims.sub}`, undefined, { cause: err });
  }
  let reply: ClaimsUpdateReply;
  try {
    reply = JSON.parse(raw) as ClaimsUpdateReply;
  } catch (err) {
    throw new ClaimsUpdateError(`unreadable answer to the claims update of account ${claims.sub}`, undefined, { cause: err });
  }
  const code = reply.data?.code ?? reply.error?.code;
  if (code !== 200 || reply.error) {
    throw new ClaimsUpdateError(
      `claims update of account ${claims.sub} refused: ${reply.error?.description ?? reply.data?.message ?? 'no code'}`,
      code,
    );
  }
}
