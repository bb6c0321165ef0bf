/**
 * Node A's credentials against node B's desired state (pods, ConfigMaps, Secrets, tokens) and the hub's streams,
 * from a compromised site A that sends whatever it wants (RawLeaf): every check fails if a permission, the account
 * layout or a template is widened. Each read attempt runs while B's own site verifiably receives the same data.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  HUB_DOMAIN,
  SOURCE_DELIVERIES_ALL,
  Streams,
  desiredSubjects,
  domainApiPrefix,
  hubDesiredConsumerCreate,
  siteInboxPrefix,
  sourceDeliverPrefix,
} from '@edgefarm/proto';
import { SecureFabric, type RawLeaf } from '@edgefarm/testing';
import {
  KEYED_KINDS,
  Verdicts,
  desiredOf,
  liveLeaf,
  rawRequest,
  sleep,
  startTwoNodes,
  waitForPayload,
  type TwoNodes,
} from './fabric.fixtures.js';

const te = new TextEncoder();
const API = domainApiPrefix(HUB_DOMAIN);

describe("node A's credentials against node B's desired state", () => {
  let t: TwoNodes;
  let leaf: RawLeaf | undefined;
  const table = new Verdicts(
    "Least privilege: node A's credentials (a compromised site A) against node B's desired state and the hub streams",
  );
  let version = 0;

  beforeAll(async () => {
    t = await startTwoNodes(() => SecureFabric.start());
  }, 60_000);

  afterAll(async () => {
    table.print();
    await t?.fabric.stop();
  });

  /** Publishes a new version of B's Secret and waits until B's own site has it: proof the data flowed meanwhile. */
  async function changeB(): Promise<string> {
    const data = `secret of B v${++version}`;
    await jetstream(t.desired).publish(desiredOf(t.B).secret, te.encode(data));
    await waitForPayload(t.siteB, 'node-b', desiredOf(t.B).secret, data);
    await sleep(200);
    return data;
  }

  /**
   * Deliveries the compromised site received that carry B's data (every payload of B names B or says "of B"); answers
   * to its own API requests (below A's inbox prefix) are judged by the check that made them.
   */
  const ofB = (l: RawLeaf) =>
    l.messages.filter(
      (m) => !m.subject.startsWith(siteInboxPrefix(t.A)) && (m.data.includes(t.B) || m.data.includes('of B') || m.subject.includes(t.B)),
    );

  it.each([
    ["B's deliver prefix", () => `${sourceDeliverPrefix(t.B)}.>`],
    ["every node's deliveries", () => SOURCE_DELIVERIES_ALL],
    ["B's desired subjects", () => desiredSubjects.node(t.B)],
    ['every desired subject', () => desiredSubjects.all],
  ])('receives nothing subscribing to %s', async (what, subject) => {
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    leaf.sub(subject());
    await leaf.ping();
    await changeB();
    const got = ofB(leaf);
    table.record(`subscribe to ${what}`, 'nothing', got.length ? `received ${got.length}` : 'nothing', leaf.errors.at(-1) ?? '');
    expect(got).toEqual([]);
  });

  /** Creates a push consumer on EF_DESIRED through the compromised site, delivering into A's own space. */
  async function steal(what: string, subject: (name: string) => string, config: Record<string, unknown>): Promise<void> {
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    const name = `steal${Math.random().toString(36).slice(2, 8)}`;
    const deliver = `${sourceDeliverPrefix(t.A)}.${name}`;
    leaf.sub(`${deliver}.>`);
    leaf.sub(deliver);
    const answer = await rawRequest(leaf, t.A, subject(name), {
      stream_name: Streams.desired,
      config: { name, deliver_subject: deliver, deliver_policy: 'all', ack_policy: 'none', ...config },
    });
    await sleep(300);
    await changeB();
    const delivered = [...leaf.messages.filter((m) => m.subject.startsWith(deliver)), ...ofB(leaf)];
    const error = answer ? ((JSON.parse(answer) as { error?: { err_code?: number } }).error?.err_code ?? 'created') : 'no answer';
    table.record(
      what,
      'nothing',
      delivered.length ? `delivered ${delivered.length}` : 'nothing',
      `${String(error)}; ${leaf.closed ? 'leaf closed' : 'leaf open'}`,
    );
    expect(delivered).toEqual([]);
  }

  it("creates no consumer that delivers B's objects", async () => {
    const B = desiredSubjects.node(t.B);
    const A = desiredSubjects.node(t.A);
    await steal("consumer create with B's filter", (n) => hubDesiredConsumerCreate(n, B), { filter_subject: B });
    await steal("consumer create: A's filter in the subject, B's in the body", (n) => hubDesiredConsumerCreate(n, A), {
      filter_subject: B,
    });
    await steal('consumer create: filter_subjects [A, B]', (n) => hubDesiredConsumerCreate(n, A), { filter_subjects: [A, B] });
    await steal('consumer create without a filter in the subject', (n) => `${API}.CONSUMER.CREATE.${Streams.desired}.${n}`, {
      filter_subject: B,
    });
    await steal('durable consumer create', (n) => `${API}.CONSUMER.DURABLE.CREATE.${Streams.desired}.${n}`, {
      durable_name: 'x',
      filter_subject: B,
    });
    await steal("consumer create through the hub's own API prefix", (n) => `$JS.API.CONSUMER.CREATE.${Streams.desired}.${n}.${B}`, {
      filter_subject: B,
    });
  }, 30_000);

  it.each(KEYED_KINDS)('reads no %s of B by STREAM.MSG.GET or DIRECT.GET', async (kind) => {
    const subject = desiredOf(t.B)[kind];
    const reads: [string, string, unknown][] = [
      ['STREAM.MSG.GET', `${API}.STREAM.MSG.GET.${Streams.desired}`, { last_by_subj: subject }],
      ['DIRECT.GET', `${API}.DIRECT.GET.${Streams.desired}`, { last_by_subj: subject }],
      ['DIRECT.GET (subject form)', `${API}.DIRECT.GET.${Streams.desired}.${subject}`, undefined],
    ];
    for (const [how, api, body] of reads) {
      leaf = await liveLeaf(t.fabric, 'node-a', leaf);
      const answer = await rawRequest(leaf, t.A, api, body);
      const got = ofB(leaf);
      table.record(`${how} of B's ${kind}`, 'nothing', got.length || answer ? `answered` : 'nothing', answer?.slice(0, 60) ?? '');
      expect([how, got.length, answer]).toEqual([how, 0, undefined]);
    }
  });

  it("lists no node's subjects through STREAM.INFO", async () => {
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    const answer = await rawRequest(leaf, t.A, `${API}.STREAM.INFO.${Streams.desired}`, { subjects_filter: '>' });
    table.record('STREAM.INFO of EF_DESIRED with a subjects filter', 'nothing', answer ? 'answered' : 'nothing');
    expect(answer).toBeUndefined();
  });

  it('publishes nothing into EF_DESIRED for B (through the compromised site or its agent)', async () => {
    const jsm = await jetstreamManager(t.desired);
    const before = (await jsm.streams.info(Streams.desired)).state.last_seq;
    leaf = await liveLeaf(t.fabric, 'node-a', leaf);
    for (const kind of KEYED_KINDS) leaf.pub(desiredOf(t.B)[kind], `forged ${kind}`, '');
    await leaf.ping();
    const viaAgent = await jetstream(t.agentA, { domain: HUB_DOMAIN, timeout: 1_500 })
      .publish(desiredOf(t.B).pod, te.encode('forged by the agent'))
      .then(
        () => 'stored',
        (e: Error) => `refused (${e.message.slice(0, 50)})`,
      );
    await sleep(300);
    const after = (await jsm.streams.info(Streams.desired)).state.last_seq;
    table.record(
      "publish B's desired objects (raw leaf)",
      'nothing stored',
      after === before ? 'nothing stored' : `${after - before} stored`,
    );
    table.record("publish B's pod through agent A's site", 'refused', viaAgent.startsWith('refused') ? 'refused' : viaAgent, viaAgent);
    expect(after).toBe(before);
    expect(viaAgent).toMatch(/^refused/);
  });

  it('purges and deletes no hub stream', async () => {
    const dj = await jetstreamManager(t.desired);
    const cj = await jetstreamManager(t.cloud);
    const desiredBefore = (await dj.streams.info(Streams.desired)).state.messages;
    const attempts: [string, string][] = [
      ['purge EF_DESIRED', `${API}.STREAM.PURGE.${Streams.desired}`],
      ['delete EF_DESIRED', `${API}.STREAM.DELETE.${Streams.desired}`],
      ['delete EF_STATUS', `${API}.STREAM.DELETE.${Streams.status}`],
      ['delete EF_DESIRED (no domain)', `$JS.API.STREAM.DELETE.${Streams.desired}`],
    ];
    for (const [what, api] of attempts) {
      leaf = await liveLeaf(t.fabric, 'node-a', leaf);
      const answer = await rawRequest(leaf, t.A, api, {});
      table.record(what, 'nothing', answer ? 'answered' : 'nothing', answer?.slice(0, 60) ?? '');
      expect([what, answer]).toEqual([what, undefined]);
    }
    expect((await dj.streams.info(Streams.desired)).state.messages).toBe(desiredBefore);
    expect((await cj.streams.info(Streams.status)).config.name).toBe(Streams.status);
  });
});
