/**
 * Revocation as the registrar's revoker does it: reissueSitesAccount with the node's key in `revocations`, pushed
 * with pushAccountClaims from the claims pusher. Node A's leaf is closed within 10 s (measured and printed) and kept
 * out, across a hub restart too (the full resolver keeps the pushed JWT over the older preload); node B's leaf stays
 * the same connection. A JWT from a foreign operator is not applied (and refused before sending when pushAccountClaims
 * is given the operator's signing keys); the claims pusher can do nothing else.
 */
import { createOperator } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import { rpcSubjects } from '@edgefarm/proto';
import { SecureFabric } from '@edgefarm/testing';
import { isIdentityInputError, pushAccountClaims, reissueSitesAccount, seedText } from '../index.js';
import { Verdicts, sleep } from './fabric.fixtures.js';

const te = new TextEncoder();

describe('revoking a node', () => {
  let fabric: SecureFabric;
  let cloud: NatsConnection;
  const table = new Verdicts('Revocation (reissueSitesAccount + pushAccountClaims)');

  beforeAll(async () => {
    fabric = await SecureFabric.start();
    cloud = await fabric.connectProvider('cloud');
    const agentB = await fabric.connectAgent('node-b');
    agentB.subscribe(rpcSubjects.node(fabric.node('node-b').wireId), { callback: (_e, m) => void m.respond(te.encode('from B')) });
    await agentB.flush();
  }, 60_000);

  afterAll(async () => {
    table.print();
    await fabric?.stop();
  });

  const leafOf = async (name: string) => (await fabric.leafs()).find((l) => l.name === name);

  it("does not apply a push signed by a foreign operator, and refuses the claims pusher's other requests", async () => {
    const forged = await reissueSitesAccount({
      operatorSigningSeed: seedText(createOperator()),
      accounts: fabric.fleet.keys.accounts,
      nodeSignerPublicKey: fabric.fleet.keys.nodeSigner,
      revocations: { [fabric.node('node-b').wireId]: Math.floor(Date.now() / 1000) },
    });
    const nc = await fabric.connectClaimsPusher();
    const issuers = [fabric.fleet.keys.operatorSigner];
    const refused = await pushAccountClaims(nc, forged, { issuers }).catch((e: unknown) => e);
    table.record(
      'pushAccountClaims of a JWT from a foreign operator, with issuers',
      'refused',
      isIdentityInputError(refused) ? 'refused' : 'sent',
    );
    expect(isIdentityInputError(refused)).toBe(true);
    // without the check the server answers 200 and stores it, but does not apply it to the running account
    const sent = await pushAccountClaims(nc, forged).then(
      () => 'answered 200',
      (e: Error) => e.message,
    );
    await sleep(1_000);
    const bStays = await fabric.linked('node-b');
    table.record('the same JWT sent anyway (nats-server answers 200, stores it)', 'not applied', bStays ? 'not applied' : 'applied', sent);
    expect(bStays).toBe(true);
    // a valid JWT pushed again replaces the stored one (else the account is unusable after a restart)
    await fabric.revoke({});
    const ping = await nc.request('$SYS.REQ.SERVER.PING', new Uint8Array(), { timeout: 1_000 }).then(
      () => 'answered',
      (e: Error) => `refused (${e.message.slice(0, 60)})`,
    );
    table.record('the claims pusher asks $SYS.REQ.SERVER.PING', 'refused', ping.startsWith('refused') ? 'refused' : ping, ping);
    expect(ping).toMatch(/^refused/);
    await nc.close();
  });

  it("closes A's leaf within 10 s and keeps it out, while B's leaf stays the same connection", async () => {
    const A = fabric.node('node-a').wireId;
    const bBefore = await leafOf('node-b');
    const t0 = performance.now();
    const { pushedAt } = await fabric.revoke({ [A]: Math.floor(Date.now() / 1000) });
    // waits past the 10 s requirement, so a miss is measured and printed rather than a timeout
    const gone = await fabric.waitLeaf('node-a', false, 30_000);
    const sincePush = Math.round(pushedAt - t0 + gone);
    table.record(
      "node A's linked leaf after its revocation is pushed",
      'closed < 10 s',
      sincePush < 10_000 ? 'closed < 10 s' : `closed after ${sincePush} ms`,
      `${sincePush} ms after the push began: connect and claims update ${Math.round(pushedAt - t0)} ms, then ${Math.round(gone)} ms`,
    );
    process.stdout.write(`revocation: node A's leaf closed ${sincePush} ms after the push began\n`);
    expect(sincePush).toBeLessThan(10_000);
    await sleep(3_000);
    const aBack = await fabric.linked('node-a');
    table.record('node A redialing for 3 s after the revocation', 'refused', aBack ? 'linked' : 'refused');
    expect(aBack).toBe(false);
    const bAfter = await leafOf('node-b');
    table.record(
      "node B's leaf through the account update",
      'same connection',
      bAfter?.port === bBefore?.port ? 'same connection' : 'reconnected',
    );
    expect(bAfter?.port).toBe(bBefore?.port);
    const reply = new TextDecoder().decode(
      (await cloud.request(rpcSubjects.of(fabric.node('node-b').wireId, 'stats'), te.encode('{}'), { timeout: 2_000 })).data,
    );
    expect(reply).toBe('from B');
    const raw = await fabric.rawLeaf('node-a');
    table.record(
      "node A's credentials at connect after the revocation",
      'refused',
      raw.ok ? 'connected' : 'refused',
      raw.errors.join('; '),
    );
    expect(raw.ok).toBe(false);
  }, 60_000);

  it('keeps the revocation across a hub restart (the resolver keeps the pushed JWT over the older preload)', async () => {
    await fabric.restartMember(0);
    await fabric.waitLeaf('node-b', true, 15_000);
    await sleep(2_000);
    const aBack = await fabric.linked('node-a');
    table.record('node A after a hub restart (preload without the revocation)', 'refused', aBack ? 'linked' : 'refused');
    expect(aBack).toBe(false);
  }, 30_000);

  it('accepts a JWT for the revoked key issued after the revocation time: the registrar must not renew a revoked key', async () => {
    const a = fabric.node('node-a');
    await sleep(1_100);
    const fresh = await fabric.mintCreds(a);
    const raw = await fabric.rawLeaf('node-a', { creds: fresh });
    table.record(
      "a JWT for A's revoked key issued after the revocation",
      'connected',
      raw.ok ? 'connected' : 'refused',
      'revocation covers JWTs issued at or before its time',
    );
    expect(raw.ok).toBe(true);
    raw.close();
  });
});
