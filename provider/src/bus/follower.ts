/**
 * StreamFollower: follows a hub stream with an ordered consumer, surviving the loss of the consumer (see the class).
 */
import { DeliverPolicy, jetstream, type ConsumerConfig, type ConsumerMessages, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export type StartPosition = Pick<ConsumerConfig, 'deliver_policy' | 'opt_start_seq' | 'opt_start_time'>;

/**
 * Follows a hub stream with an ordered consumer from a start position, handing each message to `each` in order (the
 * next after `each` settled).
 *
 * On a hub cluster the ordered consumer can be lost with the member it lived on (kill -9 of that member; nats.js
 * 3.4 then waits on it for good). After a reconnect, or two missed idle heartbeats (pulls expire every 5 s), the
 * consumer is recreated from the stream sequence after the last one delivered, so nothing is skipped (and a node's
 * heartbeats do not go stale for want of a consumer).
 */
export class StreamFollower {
  private readonly js: JetStreamClient;
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  /** Stream sequence of the last message delivered (where a recreated consumer resumes). */
  private lastSeq = 0;
  private stopped = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    private readonly what: string,
    private readonly stream: string,
    private readonly filter: string,
    private readonly from: StartPosition,
    private readonly each: (m: JsMsg) => void | Promise<void>,
  ) {
    this.js = jetstream(nc);
  }

  async start(): Promise<void> {
    await this.follow(this.from);
    // After a reconnect (to another member) nats.js may keep polling a consumer that is gone: start a new one.
    void (async () => {
      for await (const s of this.nc.status()) {
        if (this.stopped) return;
        if (s.type === 'reconnect' && this.messages) void this.refollow(this.messages);
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.messages?.close();
    await this.loop;
  }

  private async follow(from: StartPosition): Promise<void> {
    const consumer = await this.js.consumers.get(this.stream, { filter_subjects: [this.filter], ...from });
    const messages = await consumer.consume({ expires: 5_000 });
    this.messages = messages;
    void (async () => {
      for await (const s of messages.status()) {
        if (s.type === 'heartbeats_missed' && s.count >= 2) {
          void this.refollow(messages);
          return;
        }
      }
    })();
    this.loop = (async () => {
      for await (const m of messages) {
        this.lastSeq = m.seq;
        await this.each(m);
      }
    })();
  }

  private async refollow(stale: ConsumerMessages): Promise<void> {
    if (this.messages !== stale) return;
    this.log.warn({ afterSeq: this.lastSeq }, `${this.what} consumer stopped answering; recreating it`);
    void stale.close().catch(() => undefined);
    while (!this.stopped && this.messages === stale) {
      try {
        await this.follow(this.lastSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 } : this.from);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, `could not recreate the ${this.what} consumer; retrying`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
}
