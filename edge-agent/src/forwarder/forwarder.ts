/**
 * Forwarder: moves the node's outbox (site JetStream) to the hub's EF_STATUS, store-and-forward.
 *
 * - A durable pull consumer on Streams.outbox(node); each message is published to forwardSubject(subject) through
 *   the site connection (the leaf link carries it to the hub) with Nats-Msg-Id = forwardMsgId(subject, generation),
 *   so a report forwarded twice is stored once.
 * - The outbox message is acked only after the hub's publish ack. While the hub is unreachable the publish fails
 *   (the client reports no responders / "jetstream not enabled", or times out); the rest of the batch is nak'ed with
 *   a delay and the forwarder backs off. Nothing is lost: the outbox keeps the last value per subject.
 * - On start, a consumer with messages pending ack (a previous forwarder died mid-batch) is deleted and recreated,
 *   so delivery restarts in stream order instead of replaying the old messages after newer ones (ack_wait trap).
 * - An outbox message that cannot be forwarded at all (bad subject, undecodable payload, a subject of another wire id
 *   than the node's: left from before the node joined again, and its permissions would refuse it) is logged and
 *   terminated.
 * - The same mechanism drains other site streams given a {@link ForwardRoute}: {@link eventsRoute} moves the site
 *   events stream to EF_EVENTS.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import {
  Streams,
  decodeEdgeEvent,
  decodeNodeHeartbeat,
  decodeDeviceStatusReport,
  decodePodStatusReport,
  forwardEvent,
  forwardMsgId,
  forwardSubject,
  isDecodeError,
  isSubjectError,
  parseEventSubject,
  parseStatusSubject,
  SubjectError,
} from '@edgefarm/proto';
import type { Logger } from 'pino';
import { isConsumerNotFound } from '../bus/errors.js';
import { backoffMs, errorMessage, sleep } from '../util/time.js';

export interface ForwarderOptions {
  consumerName?: string;
  ackWaitMs?: number;
  batch?: number;
  /** How long one pull waits for messages. */
  pullExpiresMs?: number;
  publishTimeoutMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
}

export interface ForwarderDeps {
  /** The node's name (its site streams' names). */
  node: string;
  /** The node's wire id: only its subjects are forwarded. */
  wireId: string;
  /** Site JetStream (the outbox lives there). */
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** JetStream client toward the hub domain, over the same site connection. */
  hub: JetStreamClient;
  log: Logger;
  /** Another site stream to drain instead of the outbox (default: the outbox to EF_STATUS). */
  route?: ForwardRoute;
  /** Called on every acknowledgement from the hub: proof the link to the hub works (see desired/compaction-check.ts). */
  onHubAck?: () => void;
}

/** A site stream and how each of its messages is forwarded. */
export interface ForwardRoute {
  stream: string;
  /** The hub subject and Nats-Msg-Id of a message; throws a SubjectError or DecodeError when it cannot be forwarded. */
  target(subject: string, data: Uint8Array): { subject: string; msgId: string };
}

/** The site events stream to EF_EVENTS; Nats-Msg-Id is the event's site subject (node and unique event id). */
export function eventsRoute(node: string, wireId: string): ForwardRoute {
  return {
    stream: Streams.siteEvents(node),
    target(subject, data) {
      ownSubject(parseEventSubject(subject).node, wireId, subject);
      const target = forwardEvent(subject);
      decodeEdgeEvent(data, subject);
      return target;
    },
  };
}

export interface ForwarderStats {
  forwarded: number;
  duplicates: number;
  failures: number;
  dropped: number;
}

class PoisonMessage extends Error {
  override name = 'PoisonMessage';
}

/** Throws a SubjectError when a site subject names another wire id than the node's. */
function ownSubject(node: string, wireId: string, subject: string): void {
  if (node !== wireId) throw new SubjectError(`${subject} names wire id ${node}, not this node's ${wireId}`);
}

export class Forwarder {
  readonly stats: ForwarderStats = { forwarded: 0, duplicates: 0, failures: 0, dropped: 0 };
  private readonly opts: Required<ForwarderOptions>;
  private readonly stream: string;
  private abort = new AbortController();
  private loop: Promise<void> | undefined;
  private batch: ConsumerMessages | undefined;

  constructor(
    private readonly deps: ForwarderDeps,
    options: ForwarderOptions = {},
  ) {
    this.opts = {
      consumerName: options.consumerName ?? 'forwarder',
      ackWaitMs: options.ackWaitMs ?? 30_000,
      batch: options.batch ?? 64,
      pullExpiresMs: options.pullExpiresMs ?? 5_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 5_000,
      backoffBaseMs: options.backoffBaseMs ?? 250,
      backoffMaxMs: options.backoffMaxMs ?? 5_000,
    };
    this.stream = deps.route?.stream ?? Streams.outbox(deps.node);
  }

  async start(): Promise<void> {
    await this.ensureConsumer();
    this.abort = new AbortController();
    this.loop = this.run(this.abort.signal);
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.batch?.close().catch(() => undefined);
    await this.loop;
    this.loop = undefined;
  }

  private async ensureConsumer(): Promise<void> {
    const { jsm, log } = this.deps;
    const name = this.opts.consumerName;
    let exists = false;
    try {
      const ci = await jsm.consumers.info(this.stream, name);
      exists = true;
      if (ci.num_ack_pending > 0) {
        log.info(
          { consumer: name, ackPending: ci.num_ack_pending },
          'outbox consumer has unacked messages: recreating it to restart delivery in order',
        );
        await jsm.consumers.delete(this.stream, name);
        exists = false;
      }
    } catch (err) {
      if (!isConsumerNotFound(err)) throw err;
    }
    if (!exists) {
      await jsm.consumers.add(this.stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(this.opts.ackWaitMs),
        max_ack_pending: 10_000,
      });
    }
  }

  private async run(signal: AbortSignal): Promise<void> {
    const { js, log } = this.deps;
    let failures = 0;
    let consumer: Consumer | undefined;
    while (!signal.aborted) {
      let failed = false;
      let forwarded = false;
      try {
        consumer ??= await js.consumers.get(this.stream, this.opts.consumerName);
        const batch = await consumer.fetch({ max_messages: this.opts.batch, expires: this.opts.pullExpiresMs });
        this.batch = batch;
        for await (const m of batch) {
          if (signal.aborted || failed) {
            m.nak(failed ? backoffMs(failures, this.opts.backoffBaseMs, this.opts.backoffMaxMs) : 0);
            continue;
          }
          try {
            await this.forward(m);
            forwarded = true;
          } catch (err) {
            if (err instanceof PoisonMessage) {
              this.stats.dropped++;
              log.error({ subject: m.subject, seq: m.seq, err: err.message }, 'dropping an outbox message that cannot be forwarded');
              m.term(err.message);
              continue;
            }
            failed = true;
            this.stats.failures++;
            if (failures === 0)
              log.warn({ err: errorMessage(err), subject: m.subject }, 'hub unreachable; holding the outbox and retrying');
            m.nak(backoffMs(failures, this.opts.backoffBaseMs, this.opts.backoffMaxMs));
          }
        }
      } catch (err) {
        if (signal.aborted) break;
        failed = true;
        consumer = undefined; // looked up again next round; recreated when it is gone
        if (isConsumerNotFound(err)) await this.ensureConsumer().catch(() => undefined);
        log.debug({ err: errorMessage(err) }, 'outbox pull failed');
      } finally {
        this.batch = undefined;
      }
      if (failed) {
        await sleep(backoffMs(failures, this.opts.backoffBaseMs, this.opts.backoffMaxMs), signal);
        failures++;
      } else if (forwarded && failures > 0) {
        log.info({ after: failures }, 'hub reachable again; forwarding the outbox');
        failures = 0;
      }
    }
  }

  private async forward(m: JsMsg): Promise<void> {
    if (this.deps.route) return this.forwardRouted(m, this.deps.route);
    let subject: string;
    let generation: bigint;
    try {
      subject = forwardSubject(m.subject);
      const parsed = parseStatusSubject(m.subject);
      ownSubject(parsed.node, this.deps.wireId, m.subject);
      generation =
        parsed.key.kind === 'pod'
          ? decodePodStatusReport(m.data, m.subject).generation
          : parsed.key.kind === 'device'
            ? decodeDeviceStatusReport(m.data, m.subject).generation
            : parsed.key.kind === 'metrics'
              ? BigInt(m.info.timestampNanos) // Prometheus text, no generation: the outbox's storage time
              : decodeNodeHeartbeat(m.data, m.subject).sentAtMs;
    } catch (err) {
      if (isSubjectError(err) || isDecodeError(err)) throw new PoisonMessage(err.message, { cause: err });
      throw err;
    }
    const ack = await this.deps.hub.publish(subject, m.data, {
      msgID: forwardMsgId(m.subject, generation),
      timeout: this.opts.publishTimeoutMs,
    });
    if (ack.duplicate) this.stats.duplicates++;
    this.deps.onHubAck?.();
    await m.ackAck();
    this.stats.forwarded++;
  }

  private async forwardRouted(m: JsMsg, route: ForwardRoute): Promise<void> {
    let target: { subject: string; msgId: string };
    try {
      target = route.target(m.subject, m.data);
    } catch (err) {
      if (isSubjectError(err) || isDecodeError(err)) throw new PoisonMessage(err.message, { cause: err });
      throw err;
    }
    const ack = await this.deps.hub.publish(target.subject, m.data, { msgID: target.msgId, timeout: this.opts.publishTimeoutMs });
    if (ack.duplicate) this.stats.duplicates++;
    this.deps.onHubAck?.();
    await m.ackAck();
    this.stats.forwarded++;
  }
}
