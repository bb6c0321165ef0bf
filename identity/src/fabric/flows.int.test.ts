/**
 * The positive path of the secured fabric (decision 0008), with nodes A and B joined by key: A's site stream sources
 * exactly A's desired subjects through the leaf with deliver prefix sourceDeliverPrefix(A); A's JetStream publishes
 * of status and events are acked through siteInboxPrefix(A); a provider request on ef.rpc.<A>.<op> gets A's agent's
 * reply (EF_SITES' service export); session frames flow both ways; A's push listing of its own subjects works.
 */
import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import {
  HUB_DOMAIN,
  Headers,
  Streams,
  desiredSubjects,
  eventSubjects,
  hubDesiredConsumerCreate,
  parseDesiredSubject,
  rpcSubjects,
  sessionSubjects,
  sourceDeliverPrefix,
  statusSubjects,
} from '@edgefarm/proto';
import { SecureFabric, waitFor } from '@edgefarm/testing';
import {
  KEYED_KINDS,
  Verdicts,
  createHubStreams,
  createSiteStream,
  desiredOf,
  publishDesired,
  sleep,
  streamSubjects,
} from './fabric.fixtures.js';

const te = new TextEncoder();
const td = new TextDecoder();

describe('the secured fabric: what a node may do', () => {
  let fabric: SecureFabric;
  let desired: NatsConnection;
  let cloud: NatsConnection;
  let agentA: NatsConnection;
  let agentB: NatsConnection;
  let siteA: JetStreamManager;
  let A: string;
  let B: string;
  const table = new Verdicts('Secured fabric, positive path (node A on its own subjects)');

  beforeAll(async () => {
    fabric = await SecureFabric.start();
    A = fabric.node('node-a').wireId;
    B = fabric.node('node-b').wireId;
    desired = await fabric.connectProvider('desired');
    cloud = await fabric.connectProvider('cloud');
    await createHubStreams(desired, cloud);
    await publishDesired(desired, A);
    await publishDesired(desired, B);
    agentA = await fabric.connectAgent('node-a');
    agentB = await fabric.connectAgent('node-b');
    siteA = await createSiteStream(agentA, 'node-a', A);
    await createSiteStream(agentB, 'node-b', B);
  }, 60_000);

  afterAll(async () => {
    table.print();
    await fabric?.stop();
  });

  it("sources exactly A's desired subjects through the leaf, delivered below sourceDeliverPrefix(A)", async () => {
    const want = Object.values(desiredOf(A)).sort();
    const got = await waitFor(`site A has its ${want.length} objects`, async () => {
      const s = await streamSubjects(siteA, Streams.siteDesired('node-a'));
      return s.length >= want.length ? s : undefined;
    });
    table.record(
      "site A's stream holds A's pod, ConfigMap, Secret, token, device",
      'exactly these',
      got.join() === want.join() ? 'exactly these' : got.join(),
    );
    expect(got).toEqual(want);
    expect(got.every((s) => parseDesiredSubject(s).node === A)).toBe(true);
    const leaf = await waitFor('leaf A subscriptions', async () => {
      const res = await fetch(`http://127.0.0.1:${fabric.member().monitorPort}/leafz?subs=1`);
      const body = (await res.json()) as { leafs: { name: string; subscriptions_list?: string[] }[] };
      const l = body.leafs.find((x) => x.name === 'node-a');
      return l?.subscriptions_list?.some((s) => s.startsWith(`${sourceDeliverPrefix(A)}.`)) ? l : undefined;
    });
    const deliveries = (leaf.subscriptions_list ?? []).filter((s) => s.startsWith('ef.src.'));
    const below = deliveries.every((s) => s.startsWith(`${sourceDeliverPrefix(A)}.`));
    table.record(
      "the hub delivers A's source (leaf interest)",
      'sourceDeliverPrefix(A)',
      below ? 'sourceDeliverPrefix(A)' : deliveries.join(),
    );
    expect(below).toBe(true);

    // a change and a tombstone arrive while linked
    await jetstream(desired).publish(desiredOf(A).secret, te.encode('secret v2'));
    const h = headers();
    h.set(Headers.operation, 'DEL');
    await jetstream(desired).publish(desiredOf(A).pod, new Uint8Array(), { headers: h });
    const tomb = await waitFor('tombstone at site A', async () => {
      const m = await siteA.streams.getMessage(Streams.siteDesired('node-a'), { last_by_subj: desiredOf(A).pod }).catch(() => undefined);
      return m?.header?.get(Headers.operation) === 'DEL' ? m : undefined;
    });
    table.record('a change and a tombstone for A reach site A', 'delivered', tomb ? 'delivered' : 'missing');
  }, 30_000);

  it('acks A’s JetStream publishes of status and events through siteInboxPrefix(A)', async () => {
    const js = jetstream(agentA, { domain: HUB_DOMAIN, timeout: 5_000 });
    const ack = await js.publish(statusSubjects.of(A, { kind: 'node' }), te.encode('heartbeat'), { msgID: 'hb-1' });
    table.record("agent A's status report, acked", 'EF_STATUS', ack.stream, `seq ${ack.seq}`);
    expect(ack.stream).toBe(Streams.status);
    const dup = await js.publish(statusSubjects.of(A, { kind: 'node' }), te.encode('heartbeat'), { msgID: 'hb-1' });
    table.record('the same report again (Nats-Msg-Id)', 'duplicate', dup.duplicate ? 'duplicate' : 'stored twice');
    expect(dup.duplicate).toBe(true);
    const ev = await js.publish(eventSubjects.of(A, 'e1'), te.encode('event'), { msgID: 'ev-1' });
    table.record("agent A's event, acked", 'EF_EVENTS', ev.stream);
    expect(ev.stream).toBe(Streams.events);
  });

  it("answers a provider request on ef.rpc.<A>.<op> with A's agent (service import), once", async () => {
    agentA.subscribe(rpcSubjects.node(A), { callback: (_e, m) => void m.respond(te.encode('from A')) });
    agentB.subscribe(rpcSubjects.node(B), { callback: (_e, m) => void m.respond(te.encode('from B')) });
    await agentA.flush();
    await agentB.flush();
    const reply = await waitFor('rpc reply', async () =>
      td.decode((await cloud.request(rpcSubjects.of(A, 'stats'), te.encode('{}'), { timeout: 1_000 })).data),
    );
    table.record('provider request ef.rpc.<A>.stats', 'from A', reply);
    expect(reply).toBe('from A');
    const replyB = td.decode((await cloud.request(rpcSubjects.of(B, 'logs'), te.encode('{}'), { timeout: 2_000 })).data);
    expect(replyB).toBe('from B');
  });

  it('carries session frames both ways', async () => {
    const up: string[] = [];
    const down: string[] = [];
    cloud.subscribe(sessionSubjects.of(A, 's1', 'up'), { callback: (_e, m) => void up.push(m.string()) });
    agentA.subscribe(sessionSubjects.of(A, 's1', 'down'), { callback: (_e, m) => void down.push(m.string()) });
    await cloud.flush();
    await agentA.flush();
    await waitFor('session frames', async () => {
      agentA.publish(sessionSubjects.of(A, 's1', 'up'), te.encode('output'));
      cloud.publish(sessionSubjects.of(A, 's1', 'down'), te.encode('input'));
      await sleep(100);
      return up.length > 0 && down.length > 0;
    });
    table.record('session frame agent A -> provider (.up)', 'delivered', up[0] === 'output' ? 'delivered' : String(up[0]));
    table.record('session frame provider -> agent A (.down)', 'delivered', down[0] === 'input' ? 'delivered' : String(down[0]));
  });

  it("lists A's hub subjects with a push consumer into sourceDeliverPrefix(A) (the compaction check)", async () => {
    const listSubject = `${sourceDeliverPrefix(A)}.list.${Date.now()}`;
    let listed = 0;
    const sub = agentA.subscribe(listSubject, { callback: () => void listed++ });
    await agentA.flush();
    const name = `list${Date.now()}`;
    const res = await agentA.request(
      hubDesiredConsumerCreate(name, desiredSubjects.node(A)),
      te.encode(
        JSON.stringify({
          stream_name: Streams.desired,
          config: {
            name,
            deliver_subject: listSubject,
            filter_subject: desiredSubjects.node(A),
            deliver_policy: 'last_per_subject',
            headers_only: true,
            ack_policy: 'none',
            inactive_threshold: 10_000_000_000,
          },
        }),
      ),
      { timeout: 3_000 },
    );
    const created = JSON.parse(res.string()) as { error?: unknown };
    expect(created.error).toBeUndefined();
    // one subject per keyed kind (pod, configmap, secret, token, device), as publishDesired made them
    const want = KEYED_KINDS.length;
    await waitFor('the listing', async () => listed >= want);
    await sleep(300);
    sub.unsubscribe();
    table.record("agent A lists its node's hub subjects (headers only, last per subject)", `${want} subjects`, `${listed} subjects`);
    expect(listed).toBe(want);
  });
});
