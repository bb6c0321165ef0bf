/**
 * DesiredInformer: reads the node's site desired-state stream into a {@link DesiredStore}, like an informer: an
 * ordered consumer with deliver policy last_per_subject lists the current state, then follows new messages. The
 * ordered consumer recreates itself from the last seen sequence after a disconnect, so nothing is missed while the
 * agent runs; a restarted agent lists again (last value per subject is exactly the current state).
 */
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Headers, Streams, desiredSubjects, sourcedSequence } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { DesiredStore } from './store.js';

export interface DesiredInformerDeps {
  js: JetStreamClient;
  jsm: JetStreamManager;
  node: string;
  store: DesiredStore;
  log: Logger;
}

export class DesiredInformer {
  private messages: ConsumerMessages | undefined;
  private loops: Promise<void>[] = [];

  constructor(private readonly deps: DesiredInformerDeps) {}

  async start(): Promise<void> {
    const { js, jsm, node, store, log } = this.deps;
    const stream = Streams.siteDesired(node);
    const info = await jsm.streams.info(stream);
    if (info.state.messages === 0) store.markSynced();
    const consumer = await js.consumers.get(stream, {
      deliver_policy: DeliverPolicy.LastPerSubject,
      filter_subjects: desiredSubjects.node(node),
    });
    const messages = await consumer.consume({ max_messages: 256 });
    this.messages = messages;
    this.loops.push(
      (async () => {
        for await (const m of messages) {
          store.apply({ subject: m.subject, seq: m.seq, hubSeq: sourcedSequence(m.headers?.get(Headers.streamSource)), data: m.data, operation: m.headers?.get(Headers.operation) || undefined });
          if (m.info.pending === 0) store.markSynced();
        }
      })().catch((err: unknown) => log.error({ err }, 'desired-state consumer stopped')),
      (async () => {
        for await (const s of messages.status()) {
          if (s.type === 'heartbeats_missed' || s.type === 'reset' || s.type === 'ordered_consumer_recreated') log.info({ status: s }, 'desired-state consumer');
          else log.trace({ status: s }, 'desired-state consumer');
        }
      })().catch(() => undefined),
    );
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await Promise.allSettled(this.loops);
    this.loops = [];
  }
}
