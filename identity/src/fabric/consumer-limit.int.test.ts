/**
 * EF_DESIRED's consumer limit (the account JWT's): a compromised site may create consumers with its own filter and
 * bodies it chooses (decision 0008), and the limit bounds how many. Sites' sources are direct consumers, which
 * nats-server does not count: B's site keeps receiving its desired state when A has used up the limit.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Streams, desiredSubjects, hubDesiredConsumerCreate, sourceDeliverPrefix } from '@edgefarm/proto';
import { SecureFabric } from '@edgefarm/testing';
import { Verdicts, desiredOf, liveLeaf, rawRequest, startTwoNodes, waitForPayload, type TwoNodes } from './fabric.fixtures.js';

const LIMIT = 5;

describe("EF_DESIRED's consumer limit", () => {
  let t: TwoNodes;
  const table = new Verdicts(`EF_DESIRED consumer limit (${LIMIT} in this test)`);

  beforeAll(async () => {
    t = await startTwoNodes(() => SecureFabric.start({ desiredConsumerLimit: LIMIT }));
  }, 60_000);

  afterAll(async () => {
    table.print();
    await t?.fabric.stop();
  });

  it('bounds the consumers a compromised site creates, and the sites’ sources keep flowing', async () => {
    let leaf = await liveLeaf(t.fabric, 'node-a', undefined);
    const filter = desiredSubjects.node(t.A);
    const outcomes: string[] = [];
    for (let i = 0; i < LIMIT + 3; i++) {
      leaf = await liveLeaf(t.fabric, 'node-a', leaf);
      const name = `pile${i}`;
      const answer = await rawRequest(leaf, t.A, hubDesiredConsumerCreate(name, filter), {
        stream_name: Streams.desired,
        config: {
          name,
          durable_name: name,
          deliver_subject: `${sourceDeliverPrefix(t.A)}.${name}`,
          filter_subject: filter,
          ack_policy: 'none',
        },
      });
      const parsed = answer ? (JSON.parse(answer) as { error?: { err_code?: number } }) : undefined;
      outcomes.push(parsed ? String(parsed.error?.err_code ?? 'created') : 'no answer');
    }
    const created = outcomes.filter((o) => o === 'created').length;
    table.record(`durable consumers a compromised site creates (${LIMIT + 3} tried)`, `at most ${LIMIT}`, `${created}`, outcomes.join(' '));
    expect(created).toBeLessThanOrEqual(LIMIT);
    expect(outcomes.slice(-1)[0]).not.toBe('created');
    const data = 'secret of B after the pile';
    await jetstream(t.desired).publish(desiredOf(t.B).secret, new TextEncoder().encode(data));
    const flowing = await waitForPayload(t.siteB, 'node-b', desiredOf(t.B).secret, data).then(
      () => 'delivered',
      () => 'stalled',
    );
    table.record("B's source after A used up the limit", 'delivered', flowing);
    expect(flowing).toBe('delivered');
    const count = (await (await jetstreamManager(t.desired)).streams.info(Streams.desired)).state.consumer_count;
    table.record('consumers on EF_DESIRED (the sources not counted by the limit)', `>= ${LIMIT}`, String(count));
  }, 30_000);
});
