/**
 * Node A's credentials against node B's status, requests and sessions, and against the provider's consumers: from
 * a compromised site A (RawLeaf) and from A's agent through its own site server. Also what the provider's own users
 * may not do. Every check fails if a permission or the account layout is widened; each runs while B's own traffic
 * verifiably flows.
 */
import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import {
  HUB_DOMAIN,
  PROVIDER_INBOX_PREFIX,
  RPC_OPS,
  Streams,
  desiredSubjects,
  rpcSubjects,
  sessionSubjects,
  siteInboxPrefix,
  statusSubjects,
} from '@edgefarm/proto';
import { SecureFabric, waitFor, type RawLeaf } from '@edgefarm/testing';
import { Verdicts, liveLeaf, sleep, startTwoNodes, type TwoNodes } from './fabric.fixtures.js';

const te = new TextEncoder();
const td = new TextDecoder();

/** Collects what `subject` brings on `nc`. */
function collect(nc: NatsConnection, subject: string): { msgs: Msg[]; stop(): void } {
  const msgs: Msg[] = [];
  const sub = nc.subscribe(subject, { callback: (_e, m) => void msgs.push(m) });
  return { msgs, stop: () => sub.unsubscribe() };
}

/** Resolves when the server accepted the subscription for a second, rejects with the error it sent. */
function subscribeError(nc: NatsConnection, subject: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      resolve();
    }, 1_000);
    const sub = nc.subscribe(subject, {
      callback: (err) => {
        if (!err) return;
        clearTimeout(timer);
        reject(err);
      },
    });
  });
}

describe("node A's credentials against node B's status, requests and sessions", () => {
  let t: TwoNodes;
  let leaf: RawLeaf | undefined;
  const table = new Verdicts("Least privilege: node A's credentials against node B's status, rpc and sessions; the provider's users");

  beforeAll(async () => {
    t = await startTwoNodes(() => SecureFabric.start());
    t.agentB.subscribe(rpcSubjects.node(t.B), { callback: (_e, m) => void m.respond(te.encode('from B')) });
    await t.agentB.flush();
    await jetstream(t.agentB, { domain: HUB_DOMAIN }).publish(statusSubjects.of(t.B, { kind: 'node' }), te.encode('status of B'));
    await jetstream(t.agentA, { domain: HUB_DOMAIN }).publish(statusSubjects.of(t.A, { kind: 'node' }), te.encode('status of A'));
  }, 60_000);

  afterAll(async () => {
    table.print();
    await t?.fabric.stop();
  });

  const lastSeq = async (nc: NatsConnection, stream: string) => (await (await jetstreamManager(nc)).streams.info(stream)).state.last_seq;

  it("stores no status for B, from the compromised site or A's agent", async () => {
    const before = await lastSeq(t.cloud, Streams.status);
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    const inbox = `${siteInboxPrefix(t.A)}.forge`;
    leaf.sub(`${inbox}.>`);
    leaf.pub(statusSubjects.of(t.B, { kind: 'node' }), 'forged status of B', `${inbox}.1`);
    leaf.pub(statusSubjects.of(t.B, { kind: 'pod', uid: 'u1' }), 'forged pod status of B', `${inbox}.2`);
    await leaf.ping();
    const viaAgent = await jetstream(t.agentA, { domain: HUB_DOMAIN, timeout: 1_500 })
      .publish(statusSubjects.of(t.B, { kind: 'node' }), te.encode('forged by the agent'))
      .then(
        () => 'stored',
        (e: Error) => `refused (${e.message.slice(0, 60)})`,
      );
    await sleep(300);
    const after = await lastSeq(t.cloud, Streams.status);
    table.record(
      "publish B's status (raw leaf)",
      'nothing stored',
      after === before ? 'nothing stored' : `${after - before} stored`,
      leaf.errors.at(-1) ?? '',
    );
    table.record("publish B's status through agent A's site", 'refused', viaAgent.startsWith('refused') ? 'refused' : viaAgent, viaAgent);
    expect(after).toBe(before);
    expect(viaAgent).toMatch(/^refused/);
  });

  it("neither receives nor answers B's requests", async () => {
    for (const [what, subject] of [
      ["subscribe to B's rpc subjects", rpcSubjects.node(t.B)],
      ['subscribe to every rpc subject', rpcSubjects.all],
    ] as const) {
      leaf = await liveLeaf(t.fabric, 'node-a', leaf);
      leaf.sub(subject);
      await leaf.ping();
      const answers: string[] = [];
      for (const op of RPC_OPS)
        answers.push(td.decode((await t.cloud.request(rpcSubjects.of(t.B, op), te.encode('{}'), { timeout: 2_000 })).data));
      await sleep(200);
      const seen = leaf.messages.filter((m) => m.subject.includes(t.B));
      table.record(
        what,
        'nothing',
        seen.length ? `received ${seen.length}` : 'nothing',
        `B answered ${answers.filter((a) => a === 'from B').length}/${RPC_OPS.length}`,
      );
      expect(seen).toEqual([]);
      expect(answers.every((a) => a === 'from B')).toBe(true);
    }
    // a reply forged into the provider's inbox space does not arrive
    const inbox = collect(t.cloud, `${PROVIDER_INBOX_PREFIX}.>`);
    await t.cloud.flush();
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    leaf.pub(`${PROVIDER_INBOX_PREFIX}.forged.1`, 'forged reply');
    await leaf.ping();
    await sleep(300);
    inbox.stop();
    table.record(
      "publish into the provider's inbox (a forged reply)",
      'nothing',
      inbox.msgs.length ? `received ${inbox.msgs.length}` : 'nothing',
    );
    expect(inbox.msgs).toEqual([]);
  });

  it("neither reads nor writes B's sessions", async () => {
    const downAtB = collect(t.agentB, sessionSubjects.of(t.B, 's9', 'down'));
    const upAtProvider = collect(t.cloud, sessionSubjects.allDirection('up'));
    await t.agentB.flush();
    await t.cloud.flush();
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    leaf.sub(sessionSubjects.of(t.B, 's9', 'down'));
    leaf.sub(sessionSubjects.of(t.B, 's9', 'up'));
    leaf.sub(sessionSubjects.node(t.B));
    await leaf.ping();
    await waitFor("B's session frames", async () => {
      t.cloud.publish(sessionSubjects.of(t.B, 's9', 'down'), te.encode('input for B'));
      t.agentB.publish(sessionSubjects.of(t.B, 's9', 'up'), te.encode('output of B'));
      await sleep(100);
      return downAtB.msgs.length > 0 && upAtProvider.msgs.some((m) => m.string() === 'output of B');
    });
    const seen = leaf.messages.filter((m) => m.subject.includes(t.B));
    table.record(
      "subscribe to B's session frames (up and down)",
      'nothing',
      seen.length ? `received ${seen.length}` : 'nothing',
      leaf.errors.at(-1) ?? '',
    );
    expect(seen).toEqual([]);
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    leaf.pub(sessionSubjects.of(t.B, 's9', 'up'), 'forged output of B');
    await leaf.ping();
    await sleep(300);
    const forged = upAtProvider.msgs.filter((m) => m.string().startsWith('forged'));
    table.record("publish B's session output (.up)", 'nothing', forged.length ? `received ${forged.length}` : 'nothing');
    expect(forged).toEqual([]);
    downAtB.stop();
    upAtProvider.stop();
  });

  it('reaches no consumer of EF_CLOUD with $JS.ACK (+NXT) injection', async () => {
    const jsm = await jetstreamManager(t.cloud);
    const durable = 'status-worker';
    await jsm.consumers.add(Streams.status, { durable_name: durable, ack_policy: AckPolicy.Explicit, filter_subject: statusSubjects.all });
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    const steal = `${siteInboxPrefix(t.A)}.steal`;
    leaf.sub(`${steal}.>`);
    await leaf.ping();
    for (const [op, body] of [
      ['+NXT', '+NXT {"batch":50}'],
      ['+WPI', '+WPI'],
      ['-NAK', '-NAK'],
    ] as const) {
      leaf.pub(`$JS.ACK.${Streams.status}.${durable}.1.1.1.0.0`, body, `${steal}.${op}`);
      await leaf.ping();
      await sleep(400);
      const info = await jsm.consumers.info(Streams.status, durable);
      const got = leaf.messages.filter((m) => m.subject.startsWith(steal));
      table.record(
        `$JS.ACK ${op} to an explicit-ack consumer of EF_STATUS`,
        'nothing',
        got.length || info.delivered.consumer_seq ? `reached (${got.length})` : 'nothing',
        `leaf ${leaf.closed ? 'closed' : 'open'}`,
      );
      expect([op, got.length, info.delivered.consumer_seq]).toEqual([op, 0, 0]);
    }
    // the consumer itself works: the provider pulls B's status from it
    const c = await jetstream(t.cloud).consumers.get(Streams.status, durable);
    const m = await c.next({ expires: 2_000 });
    expect(m?.subject).toMatch(/^ef\.status\./);
    m?.ack();
  });

  it("lets the provider's users do only their part", async () => {
    const refused = (p: Promise<unknown>) =>
      p.then(
        () => 'allowed',
        (e: Error) => `refused (${e.message.slice(0, 50)})`,
      );
    const cj = await jetstreamManager(t.cloud);
    const dj = await jetstreamManager(t.desired);
    const checks: [string, Promise<unknown>][] = [
      ['provider (EF_CLOUD) deletes EF_STATUS', cj.streams.delete(Streams.status)],
      [
        'provider (EF_CLOUD) DIRECT.GET on EF_STATUS',
        cj.direct.getMessage(Streams.status, { last_by_subj: statusSubjects.of(t.B, { kind: 'node' }) }),
      ],
      ['provider (EF_DESIRED) deletes EF_DESIRED', dj.streams.delete(Streams.desired)],
      [
        'provider (EF_DESIRED) publishes status',
        jetstream(t.desired, { timeout: 1_500 }).publish(statusSubjects.of(t.B, { kind: 'node' }), te.encode('x')),
      ],
      [
        'provider (EF_CLOUD) publishes desired state',
        jetstream(t.cloud, { timeout: 1_500 }).publish(desiredSubjects.of(t.B, 'pod', { namespace: 'd', name: 'x' }), te.encode('x')),
      ],
      [
        "agent A sends a request to B's rpc through its site",
        t.agentA.request(rpcSubjects.of(t.B, 'exec'), te.encode('{}'), { timeout: 1_000 }),
      ],
      ["agent A subscribes to B's rpc on its site", subscribeError(t.agentA, rpcSubjects.node(t.B))],
    ];
    for (const [what, p] of checks) {
      const observed = await refused(p);
      table.record(what, 'refused', observed.startsWith('refused') ? 'refused' : observed, observed);
      expect([what, observed]).toEqual([what, expect.stringMatching(/^refused/)]);
    }
    expect((await cj.streams.info(Streams.status)).config.name).toBe(Streams.status);
  });
});
