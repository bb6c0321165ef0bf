import { decode, type Account, type ClaimsData, type Operator } from '@nats-io/jwt';
import { createAccount, createOperator, createUser } from '@nats-io/nkeys';
import { HUB_ACCOUNT_LAYOUT, HubAccounts, NODE_SIGNER_ROLE, nodeLeafPermissionTemplate } from '@edgefarm/proto';
import { ACCOUNT_ROLES, DEFAULT_DESIRED_CONSUMER_LIMIT, MAX_REVOCATIONS, accountClaims, reissueSitesAccount } from './accounts.js';
import { isIdentityInputError } from './errors.js';
import { createFleet, type Fleet } from './fleet.js';
import { seedText } from './keys.js';
import { subjectPermissions } from './permissions.js';

let fleet: Fleet;
beforeAll(async () => {
  fleet = await createFleet({ desiredConsumerLimit: 500 });
});

const account = (role: (typeof ACCOUNT_ROLES)[number]) => decode<Account>(fleet.jwts.accounts[role]);
const userKey = () => createUser().getPublicKey();

describe('the operator', () => {
  it('names the system account and the signing key that signs every account', () => {
    const op = decode<Operator>(fleet.jwts.operator);
    expect(op.sub).toBe(fleet.keys.operator);
    expect(op.iss).toBe(fleet.keys.operator);
    expect(op.nats.system_account).toBe(fleet.keys.accounts.system);
    expect(op.nats.signing_keys).toEqual([fleet.keys.operatorSigner]);
    for (const role of ACCOUNT_ROLES) expect([role, account(role).iss]).toEqual([role, fleet.keys.operatorSigner]);
  });
});

describe("the hub accounts follow proto's layout", () => {
  it.each(['desired', 'cloud', 'sites'] as const)('%s: exports, imports (by the exporter key), JetStream as the layout says', (role) => {
    const claims = account(role);
    const layout = HUB_ACCOUNT_LAYOUT[HubAccounts[role]];
    expect(claims.name).toBe(HubAccounts[role]);
    expect(claims.sub).toBe(fleet.keys.accounts[role]);
    expect((claims.nats.exports ?? []).map((e) => [e.name, e.subject, e.type])).toEqual(
      layout.exports.map((e) => [e.name, e.subject, e.type]),
    );
    for (const e of claims.nats.exports ?? []) expect(e.response_type).toBe(e.type === 'service' ? 'Singleton' : undefined);
    const roleOf = (name: string) => (Object.keys(HubAccounts) as (keyof typeof HubAccounts)[]).find((r) => HubAccounts[r] === name)!;
    expect((claims.nats.imports ?? []).map((i) => [i.name, i.subject, i.type, i.account])).toEqual(
      layout.imports.map((i) => [i.name, i.subject, i.type, fleet.keys.accounts[roleOf(i.from)]]),
    );
    const limits = claims.nats.limits!;
    if (layout.jetstream) expect([limits.disk_storage, limits.mem_storage, limits.streams]).toEqual([-1, -1, -1]);
    else expect([limits.disk_storage, limits.mem_storage, limits.streams, limits.consumer]).toEqual([0, 0, 0, 0]);
    expect(limits.disallow_bearer).toBe(true);
  });

  it('every import names an export of the account it names', () => {
    const byKey = new Map(ACCOUNT_ROLES.map((r) => [fleet.keys.accounts[r], account(r)]));
    for (const r of ACCOUNT_ROLES) {
      for (const i of account(r).nats.imports ?? []) {
        const exporter = byKey.get(i.account)!;
        expect([r, i.subject, (exporter.nats.exports ?? []).some((e) => e.subject === i.subject && e.type === i.type)]).toEqual([
          r,
          i.subject,
          true,
        ]);
      }
    }
  });

  it('limits the consumers of EF_DESIRED (default and chosen) and no other account', () => {
    expect(account('desired').nats.limits?.consumer).toBe(500);
    expect(account('cloud').nats.limits?.consumer).toBe(-1);
    const keys = fleet.keys.accounts;
    expect(accountClaims('desired', keys).limits?.consumer).toBe(DEFAULT_DESIRED_CONSUMER_LIMIT);
    expect(() => accountClaims('desired', keys, { desiredConsumerLimit: 0 })).toThrow(/desiredConsumerLimit/);
  });

  it("gives EF_SITES the node signer's scope: proto's template, leaf connections only", () => {
    const [scope, ...rest] = account('sites').nats.signing_keys ?? [];
    expect(rest).toEqual([]);
    expect(typeof scope).toBe('object');
    if (typeof scope !== 'object') return;
    expect([scope.kind, scope.key, scope.role]).toEqual(['user_scope', fleet.keys.nodeSigner, NODE_SIGNER_ROLE]);
    expect(subjectPermissions(scope.template)).toEqual(nodeLeafPermissionTemplate());
    expect(scope.template.allowed_connection_types).toEqual(['LEAFNODE']);
    expect(account('sites').nats.revocations).toBeUndefined();
  });
});

describe('reissueSitesAccount', () => {
  const reissue = (revocations: Record<string, number>, over: Partial<Parameters<typeof reissueSitesAccount>[0]> = {}) =>
    reissueSitesAccount({
      operatorSigningSeed: fleet.seeds.operatorSigner,
      accounts: fleet.keys.accounts,
      nodeSignerPublicKey: fleet.keys.nodeSigner,
      revocations,
      ...over,
    });
  const withoutStamp = (c: ClaimsData<Account>) => ({ ...c, iat: 0, jti: '' });

  it('carries the revocations, sorted, and is the init-time account otherwise', async () => {
    const [k1, k2] = [userKey(), userKey()];
    const c = decode<Account>(await reissue({ [k2]: 20, [k1]: 10 }));
    expect(c.nats.revocations).toEqual({ [k1]: 10, [k2]: 20 });
    expect(Object.keys(c.nats.revocations!)).toEqual([k1, k2].sort());
    const { revocations: _r, ...rest } = c.nats;
    expect(withoutStamp({ ...c, nats: rest })).toEqual(withoutStamp(account('sites')));
  });

  it('is deterministic apart from iat and jti', async () => {
    const k = userKey();
    const [a, b] = [decode<Account>(await reissue({ [k]: 5 })), decode<Account>(await reissue({ [k]: 5 }))];
    expect(withoutStamp(a)).toEqual(withoutStamp(b));
  });

  it.each([
    ['an account key', () => ({ [createAccount().getPublicKey()]: 1 })],
    ['a seed', () => ({ [seedText(createUser())]: 1 })],
    ['a wildcard', () => ({ '*': 1 })],
    ['a negative time', () => ({ [userKey()]: -1 })],
    ['a fractional time', () => ({ [userKey()]: 1.5 })],
  ])('refuses a revocation of %s, naming it by position only', async (_what, make) => {
    const revocations = make();
    const err = await reissue(revocations).catch((e: unknown) => e);
    expect(isIdentityInputError(err)).toBe(true);
    expect((err as Error).message).not.toContain(Object.keys(revocations)[0]!.slice(0, 20));
  });

  it('refuses more than MAX_REVOCATIONS entries', async () => {
    const many = Object.fromEntries(Array.from({ length: MAX_REVOCATIONS + 1 }, (_, i) => [`U${i}`, 1]));
    await expect(reissue(many)).rejects.toThrow(/at most/);
  });

  it('refuses a signer that is not an operator seed, and keys of the wrong kind', async () => {
    const err = await reissue({}, { operatorSigningSeed: fleet.seeds.accounts.sites }).catch((e: unknown) => e);
    expect(isIdentityInputError(err)).toBe(true);
    expect((err as Error).message).not.toContain(fleet.seeds.accounts.sites);
    await expect(reissue({}, { nodeSignerPublicKey: userKey() })).rejects.toThrow(/nodeSignerPublicKey/);
    await expect(reissue({}, { accounts: { ...fleet.keys.accounts, sites: createOperator().getPublicKey() } })).rejects.toThrow(
      /accounts.sites/,
    );
  });
});
