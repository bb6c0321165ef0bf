import type { NatsConnection } from '@nats-io/transport-node';
import { SYSTEM_CLAIMS_UPDATE } from '@edgefarm/proto';
import { createFleet, type Fleet } from './fleet.js';
import { isClaimsUpdateError, isIdentityInputError } from './errors.js';
import { pushAccountClaims } from './push.js';

let fleet: Fleet;
beforeAll(async () => {
  fleet = await createFleet();
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
    const { nc, calls } = fakeConnection(
      JSON.stringify({ data: { code: 200, account: fleet.keys.accounts.sites, message: 'jwt updated' } }),
    );
    await pushAccountClaims(nc, fleet.jwts.accounts.sites, { timeoutMs: 1234 });
    expect(calls).toEqual([{ subject: SYSTEM_CLAIMS_UPDATE, data: fleet.jwts.accounts.sites, timeout: 1234 }]);
  });

  it.each([
    ['an error answer', JSON.stringify({ error: { code: 500, description: 'not trusted' } }), 500],
    ['another code', JSON.stringify({ data: { code: 404 } }), 404],
    ['an unreadable answer', 'garbage', undefined],
    ['no answer', new Error('timeout'), undefined],
  ])('rejects with a ClaimsUpdateError on %s', async (_what, answer, code) => {
    const err = await pushAccountClaims(fakeConnection(answer).nc, fleet.jwts.accounts.sites).catch((e: unknown) => e);
    expect(isClaimsUpdateError(err)).toBe(true);
    expect((err as { code?: number }).code).toBe(code);
  });

  it('refuses a JWT not signed by one of the given issuers without sending it', async () => {
    const { nc, calls } = fakeConnection('{}');
    const err = await pushAccountClaims(nc, fleet.jwts.accounts.sites, { issuers: [fleet.keys.operator] }).catch((e: unknown) => e);
    expect(isIdentityInputError(err)).toBe(true);
    expect(calls).toEqual([]);
  });

  it('refuses what is not a validly signed account JWT without sending it', async () => {
    const { nc, calls } = fakeConnection('{}');
    const userJwt = fleet.creds.providerCloud.split('\n')[1]!;
    for (const jwt of ['not a jwt', `${fleet.jwts.accounts.sites.slice(0, -3)}AAA`, userJwt]) {
      expect(isIdentityInputError(await pushAccountClaims(nc, jwt).catch((e: unknown) => e))).toBe(true);
    }
    expect(calls).toEqual([]);
  });
});
