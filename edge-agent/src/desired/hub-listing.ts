/**
 * HubListing: the subjects the hub's EF_DESIRED holds for this node (tombstones included: their subject still
 * exists), listed the only way a node's permissions allow (decision 0008): a push consumer created through the
 * filtered consumer-create subject (proto hubDesiredConsumerCreate, the filter pinned in the subject), headers only,
 * last value per subject, no acks, delivering below the node's deliver prefix (proto sourceListSubject). An ordered
 * consumer would need STREAM.INFO (which lists every node's subjects) and MSG.NEXT, which no node is granted.
 *
 * A listing is complete when a delivery says its consumer has nothing left (the pending count of its ack reply is 0),
 * or, when a reply carries no count, an idle heartbeat arrives after as many deliveries as the consumer had at its
 * creation. Anything else (a heartbeat before that, no delivery within `timeoutMs`, more than `maxSubjects`) is a
 * {@link HubListingError}: an incomplete listing must never make the compaction check forget what the hub still has.
 * The consumer is ephemeral: the server deletes it `inactiveMs` after the listing stops listening.
 */
import type { NatsConnection, Msg } from '@nats-io/transport-node';
import { nanos, nuid } from '@nats-io/transport-node';
import { Streams, desiredSubjects, hubDesiredConsumerCreate, parseAckReply, parseDesiredSubject, sourceListSubject } from '@edgefarm/proto';
import type { Logger } from 'pino';

/** Lists the node's subjects on the hub (the compaction check's view of the hub). */
export interface HubSubjects {
  list(): Promise<Set<string>>;
}

export interface HubListingDeps {
  /** The site connection (the hub is reached through its leaf link). */
  nc: NatsConnection;
  /** The node's wire id: the filter, the deliver subject. */
  wireId: string;
  log: Logger;
}

export interface HubListingOptions {
  /** Longest wait for the consumer create and then between two deliveries (default 10 s). */
  timeoutMs?: number;
  /** The consumer's idle heartbeat (default 1 s). */
  idleHeartbeatMs?: number;
  /** The server deletes the consumer this long after nobody listens (default 5 s). */
  inactiveMs?: number;
  /** Most subjects a listing takes (default 100,000). */
  maxSubjects?: number;
}

export class HubListingError extends Error {
  override name = 'HubListingError';
}
export function isHubListingError(err: unknown): err is HubListingError {
  return err instanceof HubListingError;
}

/** The JetStream API's answer to a consumer create: the consumer's info, or an error. */
interface CreateReply {
  error?: { code?: number; err_code?: number; description?: string };
  num_pending?: number;
}

/** True for a desired-state subject of the node with this wire id. */
function ownDesiredSubject(subject: string, wireId: string): boolean {
  try {
    return parseDesiredSubject(subject).node === wireId;
  } catch {
    return false;
  }
}

/** A core NATS status message (no payload, status code in its header line). */
function statusOf(m: Msg): { code: number; description: string } | undefined {
  const h = m.headers;
  if (!h || m.data.length > 0 || h.code === 0) return undefined;
  return { code: h.code, description: h.description };
}

export class HubListing implements HubSubjects {
  private readonly o: Required<HubListingOptions>;

  constructor(
    private readonly deps: HubListingDeps,
    options: HubListingOptions = {},
  ) {
    this.o = { timeoutMs: 10_000, idleHeartbeatMs: 1_000, inactiveMs: 5_000, maxSubjects: 100_000, ...options };
  }

  async list(): Promise<Set<string>> {
    const { nc, wireId } = this.deps;
    const id = nuid.next();
    const name = `list-${id}`;
    const filter = desiredSubjects.node(wireId);
    const deliver = sourceListSubject(wireId, id);
    const sub = nc.subscribe(deliver, { max: this.o.maxSubjects + 1000 });
    try {
      await nc.flush();
      const created = await this.create(name, filter, deliver);
      if (created === 0) return new Set();
      return await this.read(sub[Symbol.asyncIterator](), created);
    } finally {
      sub.unsubscribe();
    }
  }

  /** Creates the listing's consumer; resolves with the messages it has to deliver. */
  private async create(name: string, filter: string, deliver: string): Promise<number> {
    const body = {
      stream_name: Streams.desired,
      config: {
        name,
        filter_subject: filter,
        deliver_subject: deliver,
        deliver_policy: 'last_per_subject',
        ack_policy: 'none',
        headers_only: true,
        idle_heartbeat: nanos(this.o.idleHeartbeatMs),
        inactive_threshold: nanos(this.o.inactiveMs),
        mem_storage: true,
        num_replicas: 1,
      },
    };
    let reply: CreateReply;
    try {
      const m = await this.deps.nc.request(hubDesiredConsumerCreate(name, filter), JSON.stringify(body), { timeout: this.o.timeoutMs });
      reply = m.json<CreateReply>();
    } catch (err) {
      throw new HubListingError(`creating the listing consumer on the hub failed: ${(err as Error).message}`, { cause: err });
    }
    if (reply.error) {
      const e = reply.error;
      throw new HubListingError(
        `the hub refused the listing consumer: ${e.description ?? 'no description'} (${e.err_code ?? e.code ?? '?'})`,
      );
    }
    const pending = reply.num_pending;
    if (typeof pending !== 'number' || !Number.isSafeInteger(pending) || pending < 0)
      throw new HubListingError(`the hub's consumer create reply has no pending count`);
    if (pending > this.o.maxSubjects)
      throw new HubListingError(`the hub holds ${pending} subjects for this node, more than ${this.o.maxSubjects}`);
    return pending;
  }

  /** Reads deliveries until the listing is complete (see the module comment). */
  private async read(it: AsyncIterator<Msg>, created: number): Promise<Set<string>> {
    const { wireId, log } = this.deps;
    const out = new Set<string>();
    let delivered = 0;
    for (;;) {
      const m = await this.next(it);
      const status = statusOf(m);
      if (status) {
        if (status.code !== 100 || !/idle heartbeat/i.test(status.description)) continue;
        if (delivered >= created) return out;
        throw new HubListingError(`idle heartbeat after ${delivered} of ${created} deliveries: the listing is incomplete`);
      }
      delivered++;
      const ack = parseAckReply(m.reply);
      // A client gets a push delivery under the message's own subject; a reply that carries it is the fallback.
      const subject = [m.subject, ack?.subject].find((s) => s !== undefined && ownDesiredSubject(s, wireId));
      if (subject !== undefined) out.add(subject);
      else log.warn({ subject: m.subject, reply: m.reply }, 'listing: skipped a delivery that is not a desired subject of this node');
      if (out.size > this.o.maxSubjects) throw new HubListingError(`more than ${this.o.maxSubjects} subjects listed`);
      if (ack?.pending === 0) return out;
    }
  }

  private async next(it: AsyncIterator<Msg>): Promise<Msg> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new HubListingError(`no delivery from the listing consumer within ${this.o.timeoutMs} ms`)),
        this.o.timeoutMs,
      );
    });
    try {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new HubListingError('the listing subscription ended');
      return r.value;
    } finally {
      clearTimeout(timer);
    }
  }
}
