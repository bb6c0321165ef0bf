/**
 * STAND-IN for @edgefarm/identity's account functions, written while the identity workspace was being written in
 * parallel with exactly these signatures. When identity exports them, this file becomes
 * `export { reissueSitesAccount, pushAccountClaims } from '@edgefarm/identity';` and nothing else changes.
 */
import { decode, encodeAccount } from '@nats-io/jwt';
import { fromSeed } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_ACCOUNT_LAYOUT, HubAccounts, NODE_SIGNER_ROLE, nodeLeafPermissionTemplate, type SubjectPermissions } from '@edgefarm/proto';

const NO_LIMITS = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
const NO_JETSTREAM = { mem_storage: 0, disk_storage: 0, streams: 0, consumer: 0 };

function jwtPermissions(p: SubjectPermissions) {
  return {
    pub: { allow: p.pub.allow, deny: p.pub.deny },
    sub: { allow: p.sub.allow, deny: p.sub.deny },
    ...(p.resp ? { resp: { max: p.resp.max, ttl: p.resp.ttlMs * 1_000_000 } } : {}),
  };
}

/**
 * The EF_SITES account JWT (proto's HUB_ACCOUNT_LAYOUT, the scoped node signing key with its template, limits) with
 * these revocations (user public key -> unix seconds), signed by an operator signing key.
 */
export async function reissueSitesAccount(o: {
  operatorSigningSeed: string;
  accounts: { system: string; desired: string; cloud: string; sites: string };
  nodeSignerPublicKey: string;
  revocations: Record<string, number>;
}): Promise<string> {
  const byName: Record<string, string> = {
    [HubAccounts.desired]: o.accounts.desired,
    [HubAccounts.cloud]: o.accounts.cloud,
    [HubAccounts.sites]: o.accounts.sites,
  };
  const layout = HUB_ACCOUNT_LAYOUT[HubAccounts.sites];
  const signer = fromSeed(new TextEncoder().encode(o.operatorSigningSeed));
  return encodeAccount(
    HubAccounts.sites,
    o.accounts.sites,
    {
      limits: { ...NO_LIMITS, ...NO_JETSTREAM },
      signing_keys: [
        {
          kind: 'user_scope',
          key: o.nodeSignerPublicKey,
          role: NODE_SIGNER_ROLE,
          template: { ...jwtPermissions(nodeLeafPermissionTemplate()), allowed_connection_types: ['LEAFNODE'] },
        },
      ],
      exports: layout.exports.map((e) => ({
        name: e.name,
        subject: e.subject,
        type: e.type,
        ...(e.type === 'service' ? { response_type: 'Singleton' } : {}),
      })),
      imports: layout.imports.map((i) => ({ name: i.name, subject: i.subject, type: i.type, account: byName[i.from]! })),
      revocations: { ...o.revocations },
    },
    { signer },
  );
}

/**
 * Pushes an account JWT to the hub ($SYS.REQ.CLAIMS.UPDATE) from a system-account connection; rejects unless 200, and
 * before sending when `issuers` is given and the JWT's issuer is not one of them (a hub stores a JWT of an untrusted
 * signer and loses the account at its next restart).
 */
export async function pushAccountClaims(
  nc: NatsConnection,
  accountJwt: string,
  o: { timeoutMs?: number; issuers?: string[] } = {},
): Promise<void> {
  if (o.issuers && !o.issuers.includes(decode(accountJwt).iss))
    throw new Error("the account JWT is not signed by one of the operator's signing keys");
  const m = await nc.request('$SYS.REQ.CLAIMS.UPDATE', new TextEncoder().encode(accountJwt), { timeout: o.timeoutMs ?? 5000 });
  const reply = m.json<{ data?: { code?: number; message?: string }; error?: { code?: number; description?: string } }>();
  const code = reply.data?.code ?? reply.error?.code;
  if (code !== 200)
    throw new Error(`the hub refused the account claims: ${reply.error?.description ?? reply.data?.message ?? `code ${code}`}`);
}
