import { createAccount, createOperator } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import { SYSTEM_CLAIMS_UPDATE, claimsPusherPermissions } from '@edgefarm/proto';
import { reissueSitesAccount } from './accounts.js';
import { isClaimsUpdateError, isIdentityInputError } from './errors.js';
import { seedText } from './keys.js';
import { pushAccountClaims } from './push.js';
import { mintAccountUser } from './users.js';

// What a revoker pushes (EF_SITES from reissueSitesAccount, signed by an operator signing key) and a user JWT, made
// once for the file; no whole fleet: each key costs ~50 ms under jest.
let sites: { key: string; jwt: string };
/** An operator key that did not sign the account. */
let operatorKey: string;
let userJwt: string;
beforeAll(async () => {
  const operatorSigner = seedText(createOperator());
  const accountSeeds = { system: createAccount(), desired: createAccount(), cloud: createAccount(), sites: createAccount() };
  const accounts = {
    system: accountSeeds.system.getPublicKey(),
    desired: accountSeeds.desired.getPublicKey(),
    cloud: accountSeeds.cloud.getPublicKey(),
    sites: accountSeeds.sites.getPublicKey(),
  };
  const jwt = await reissueSitesAccount({
    operatorSigningSeed: operatorSigner,
    accounts,
    nodeSignerPublicKey: createAccount().getPublicKey(),
    revocations: {},
  });
  sites = { key: accounts.sites, jwt };
  operatorKey = createOperator().getPublicKey();
  userJwt = (
    await mintAccountUser({
      accountSeed: seedText(accountSeeds.system),
      name: 'claims-pusher',
      permissions: claimsPusherPermissions(),
      connectionTypes: ['STANDARD'],
    })
  ).jwt;
});

/** A connection whose request() records the call and answers with `answer` (or fails with it). */
function fakeConnection(answer: string | Error): { nc: NatsConnection; calls: { subject: string; data: string; timeout?: number }[] } {
  const calls: { subject: string; data: string; timeout?: number }[] = [];
  const nc = {
    request: async (subject: string, data: Uint8Array, opts?: { timeout?: number }) => {
      calls.push({ subject, data: new TextDecoder().decode(data), ...(opts?.timeout ? { timeout: opts.timeout } : {}) });
      if (answer instanceof Error) throw answer;
      return { string: () => answer };
    },
  } as unknown as NatsConnection;
  return { nc, calls };
}

describe('pushAccountClaims', () => {
  it('sends the account JWT to the claims update subject and resolves on code 200', async () => {
    const { nc, calls } = fakeConnection(JSON.stringify({ data: { code: 200, account: sites.key, message: 'jwt updated' } }));
    await pushAccountClaims(nc, sites.jwt, { timeoutMs: 1234 });
    expect(calls).toEqual([{ subject: SYSTEM_CLAIMS_UPDATE, data: sites.jwt, timeout: 1234 }]);
  });

  it.each([
    ['an error answer', JSON.stringify({ error: { code: 500, description: 'not trusted' } }), 500],
    ['another code', JSON.stringify({ data: { code: 404 } }), 404],
    ['an unreadable answer', 'garbage', undefined],
    ['no answer', new Error('timeout'), undefined],
  ])('rejects with a ClaimsUpdateError on %s', async (_what, answer, code) => {
    const err = await pushAccountClaims(fakeConnection(answer).nc, sites.jwt).catch((e: unknown) => e);
    expect(isClaimsUpdateError(err)).toBe(true);
    expect((err as { code?: number }).code).toBe(code);
  });

  it('refuses a JWT not signed by one of the given issuers without sending it', async () => {
    const { nc, calls } = fakeConnection('{}');
    const err = await pushAccountClaims(nc, sites.jwt, { issuers: [operatorKey] }).catch((e: unknown) => e);
    expect(isIdentityInputError(err)).toBe(true);
    expect(calls).toEqual([]);
  });

  it('refuses what is not a validly signed account JWT without sending it', async () => {
    const { nc, calls } = fakeConnection('{}');
    for (const jwt of ['not a jwt', `${sites.jwt.slice(0, -3)}AAA`, userJwt]) {
      expect(isIdentityInputError(await pushAccountClaims(nc, jwt).catch((e: unknown) => e))).toBe(true);
    }
    expect(calls).toEqual([]);
  });
});
