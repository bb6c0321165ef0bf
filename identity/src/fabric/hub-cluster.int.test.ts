/**
 * A 3-member hub (renderHubConfig's cluster block, full resolvers syncing through the system account): R3 hub
 * streams under the account JWTs' limits, node A's site linked to member 2 sourcing its desired state and getting its
 * status acked, and a revocation pushed to member 1 enforced by member 2 (A's leaf closed) while node B on member 3
 * stays.
 */
import { jetstream } from '@nats-io/jetstream';
import { HUB_DOMAIN, Streams, statusSubjects } from '@edgefarm/proto';
import { SecureFabric } from '@edgefarm/testing';
import { KEYED_KINDS, Verdicts, createHubStreams, createSiteStream, publishDesired, sleep, waitForSubjects } from './fabric.fixtures.js';

const te = new TextEncoder();

describe('a 3-member hub', () => {
  let fabric: SecureFabric;
  const table = new Verdicts('3-member hub: resolvers in sync');

  beforeAll(async () => {
    fabric = await SecureFabric.start({ hubMembers: 3, nodes: [] });
    await fabric.join('node-a');
    await fabric.join('node-b');
    await fabric.startSite('node-a', { members: [1] });
    await fabric.startSite('node-b', { members: [2] });
    await fabric.waitLeaf('node-a', true, 20_000, 1);
    await fabric.waitLeaf('node-b', true, 20_000, 2);
  }, 90_000);

  afterAll(async () => {
    table.print();
    await fabric?.stop();
  });

  it('serves R3 hub streams to a site linked to another member', async () => {
    const A = fabric.node('node-a').wireId;
    const desired = await fabric.connectProvider('desired', 0);
    const cloud = await fabric.connectProvider('cloud', 0);
    await createHubStreams(desired, cloud, 3);
    await publishDesired(desired, A);
    const agent = await fabric.connectAgent('node-a');
    const site = await createSiteStream(agent, 'node-a', A);
    const n = KEYED_KINDS.length;
    await waitForSubjects(site, 'node-a', n, 20_000);
    table.record("site A (on member 2) sources A's objects from the R3 EF_DESIRED", `${n} subjects`, `${n} subjects`);
    const ack = await jetstream(agent, { domain: HUB_DOMAIN, timeout: 5_000 }).publish(
      statusSubjects.of(A, { kind: 'node' }),
      te.encode('hb'),
    );
    table.record("site A's status report, acked by the R3 EF_STATUS", Streams.status, ack.stream);
    expect(ack.stream).toBe(Streams.status);
  }, 60_000);

  it('enforces a revocation pushed to member 1 on member 2, and keeps node B on member 3', async () => {
    const t0 = performance.now();
    await fabric.revoke({ [fabric.node('node-a').wireId]: Math.floor(Date.now() / 1000) }, 0);
    const gone = await fabric.waitLeaf('node-a', false, 10_000, 1);
    const ms = Math.round(performance.now() - t0);
    table.record(
      "node A's leaf on member 2 after a push to member 1",
      'closed < 10 s',
      ms < 10_000 ? 'closed < 10 s' : `${ms} ms`,
      `${ms} ms after the push began (${Math.round(gone)} ms after it was confirmed)`,
    );
    process.stdout.write(`3-member hub: node A's leaf on member 2 closed ${ms} ms after the push to member 1 began\n`);
    await sleep(3_000);
    const anywhere = await fabric.linked('node-a');
    table.record('node A redialing (3 s)', 'refused', anywhere ? 'linked' : 'refused');
    expect(anywhere).toBe(false);
    const b = await fabric.linked('node-b', 2);
    table.record('node B on member 3', 'linked', b ? 'linked' : 'gone');
    expect(b).toBe(true);
    const raw = await fabric.rawLeaf('node-a', { i: 2 });
    table.record("node A's credentials at member 3", 'refused', raw.ok ? 'connected' : 'refused', raw.errors.join('; '));
    expect(raw.ok).toBe(false);
  }, 30_000);
});
