import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { desiredSubjects, hubDesiredConsumerCreate, sourceDeliverPrefix } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { HubListing, isHubListingError } from './hub-listing.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const subjectOf = (name: string) => desiredSubjects.pod(KEY, { namespace: 'default', name });

/** One delivery: a headers-only message (code 0), its ack reply carrying the pending count. */
function delivery(subject: string, pending: number | undefined, at = ''): Partial<Msg> {
  const reply = pending === undefined ? undefined : `$JS.ACK.EF_DESIRED.list-x.1.${pending + 10}.1.1700000000000000000.${pending}${at}`;
  return { subject, reply, data: new Uint8Array(), headers: { code: 0, description: '' } as Msg['headers'] };
}
const heartbeat = (deliver: string): Partial<Msg> => ({
  subject: deliver,
  data: new Uint8Array(),
  headers: { code: 100, description: 'Idle Heartbeat' } as Msg['headers'],
});

/**
 * The site connection as the listing uses it: one subscription, one request (the consumer create). `answer` gets the
 * create request and returns the JetStream reply and the deliveries that follow it.
 */
class FakeNc {
  readonly requests: { subject: string; body: Record<string, unknown> }[] = [];
  subscribed = '';
  unsubscribed = false;
  private queue: Partial<Msg>[] = [];
  private wake: (() => void) | undefined;

  constructor(private readonly answer: (deliver: string, body: Record<string, unknown>) => { reply: object; deliveries: Partial<Msg>[] }) {}

  readonly nc = {
    subscribe: (subject: string) => {
      this.subscribed = subject;
      const self = this;
      return {
        unsubscribe: () => {
          self.unsubscribed = true;
          self.wake?.();
        },
        async *[Symbol.asyncIterator]() {
          for (;;) {
            while (self.queue.length === 0 && !self.unsubscribed) await new Promise<void>((r) => (self.wake = r));
            if (self.unsubscribed) return;
            yield self.queue.shift() as Msg;
          }
        },
      };
    },
    flush: async () => undefined,
    request: async (subject: string, data: string) => {
      const body = JSON.parse(data) as Record<string, unknown>;
      this.requests.push({ subject, body });
      const { reply, deliveries } = this.answer(this.subscribed, body);
      setImmediate(() => {
        this.queue.push(...deliveries);
        this.wake?.();
      });
      return { json: () => reply };
    },
  } as unknown as NatsConnection;
}

const listing = (fake: FakeNc, timeoutMs = 2_000) => new HubListing({ nc: fake.nc, wireId: KEY, log: silentLogger() }, { timeoutMs });

async function listingError(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    expect(isHubListingError(err)).toBe(true);
    return err as Error;
  }
  throw new Error('expected a HubListingError');
}

describe('HubListing', () => {
  it("creates a headers-only, last-per-subject push consumer through the filtered create subject, into the node's deliver space", async () => {
    const fake = new FakeNc(() => ({ reply: { num_pending: 0 }, deliveries: [] }));
    expect(await listing(fake).list()).toEqual(new Set());
    const [req] = fake.requests;
    const config = req!.body.config as Record<string, unknown>;
    expect(req!.subject).toBe(hubDesiredConsumerCreate(config.name as string, desiredSubjects.node(KEY)));
    expect(req!.body.stream_name).toBe('EF_DESIRED');
    expect(config).toMatchObject({
      filter_subject: desiredSubjects.node(KEY),
      deliver_subject: fake.subscribed,
      deliver_policy: 'last_per_subject',
      ack_policy: 'none',
      headers_only: true,
      inactive_threshold: 5_000_000_000,
    });
    expect(config.flow_control).toBeUndefined(); // the agent may not answer flow control
    expect(fake.subscribed.startsWith(`${sourceDeliverPrefix(KEY)}.list.`)).toBe(true);
    expect(fake.unsubscribed).toBe(true);
  });

  it('reads deliveries until one says nothing is pending', async () => {
    const fake = new FakeNc(() => ({
      reply: { num_pending: 3 },
      deliveries: [delivery(subjectOf('a'), 2), delivery(subjectOf('b'), 1), delivery(desiredSubjects.nodeConfig(KEY), 0)],
    }));
    expect(await listing(fake).list()).toEqual(new Set([subjectOf('a'), subjectOf('b'), desiredSubjects.nodeConfig(KEY)]));
    expect(fake.unsubscribed).toBe(true);
  });

  it('takes the subject from the reply when the delivery comes under the deliver subject', async () => {
    const fake = new FakeNc((deliver) => ({ reply: { num_pending: 1 }, deliveries: [delivery(deliver, 0, `@${subjectOf('a')}`)] }));
    expect(await listing(fake).list()).toEqual(new Set([subjectOf('a')]));
  });

  it('without pending counts, is complete at an idle heartbeat after every delivery the consumer had', async () => {
    const fake = new FakeNc((deliver) => ({
      reply: { num_pending: 2 },
      deliveries: [delivery(subjectOf('a'), undefined), delivery(subjectOf('b'), undefined), heartbeat(deliver)],
    }));
    expect(await listing(fake).list()).toEqual(new Set([subjectOf('a'), subjectOf('b')]));
  });

  it('an idle heartbeat before every delivery arrived is an incomplete listing, never a short one', async () => {
    const fake = new FakeNc((deliver) => ({ reply: { num_pending: 3 }, deliveries: [delivery(subjectOf('a'), 2), heartbeat(deliver)] }));
    expect((await listingError(listing(fake).list())).message).toMatch(/after 1 of 3 deliveries/);
  });

  it("skips a delivery that is not one of this node's desired subjects", async () => {
    const other = desiredSubjects.pod('UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN', { namespace: 'default', name: 'x' });
    const fake = new FakeNc(() => ({ reply: { num_pending: 2 }, deliveries: [delivery(other, 1), delivery(subjectOf('a'), 0)] }));
    expect(await listing(fake).list()).toEqual(new Set([subjectOf('a')]));
  });

  it('fails on a refused create, a reply without a count, too many subjects, and silence', async () => {
    const refused = new FakeNc(() => ({
      reply: { error: { code: 403, err_code: 10131, description: 'filter mismatch' } },
      deliveries: [],
    }));
    expect((await listingError(listing(refused).list())).message).toMatch(/refused .*filter mismatch \(10131\)/);
    const noCount = new FakeNc(() => ({ reply: {}, deliveries: [] }));
    expect((await listingError(listing(noCount).list())).message).toMatch(/no pending count/);
    const huge = new FakeNc(() => ({ reply: { num_pending: 200_000 }, deliveries: [] }));
    expect((await listingError(listing(huge).list())).message).toMatch(/more than 100000/);
    const silent = new FakeNc(() => ({ reply: { num_pending: 1 }, deliveries: [] }));
    expect((await listingError(listing(silent, 50).list())).message).toMatch(/no delivery .* within 50 ms/);
    expect(silent.unsubscribed).toBe(true);
  });
});
