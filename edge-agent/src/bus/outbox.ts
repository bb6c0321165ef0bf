/**
 * OutboxWriter: where the agent puts everything it reports (pod status, heartbeats). The JetStream implementation
 * writes to the node's outbox stream in the SITE's JetStream (last value per subject), from where the forwarder
 * moves it to the hub. A write resolves only once the site server stored it.
 */
import type { JetStreamClient } from '@nats-io/jetstream';
import { Streams } from '@edgefarm/proto';

export interface OutboxWriter {
  /** Stores `data` under `subject` (an outboxSubjects.of(...) subject). Rejects when it was not stored. */
  publish(subject: string, data: Uint8Array): Promise<void>;
}

export class JetStreamOutbox implements OutboxWriter {
  private readonly stream: string;

  constructor(
    private readonly js: JetStreamClient,
    node: string,
    private readonly timeoutMs = 5000,
    /** The site stream written to (default the outbox; the event recorder passes Streams.siteEvents(node)). */
    stream?: string,
  ) {
    this.stream = stream ?? Streams.outbox(node);
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    await this.js.publish(subject, data, { timeout: this.timeoutMs, expect: { streamName: this.stream } });
  }
}

/** Hand-written fake: records writes, optionally fails the next ones. */
export class FakeOutbox implements OutboxWriter {
  readonly published: { subject: string; data: Uint8Array }[] = [];
  private failures = 0;

  failNext(count = 1): void {
    this.failures += count;
  }

  async publish(subject: string, data: Uint8Array): Promise<void> {
    if (this.failures > 0) {
      this.failures--;
      throw new Error('injected outbox failure');
    }
    this.published.push({ subject, data });
  }

  clear(): void {
    this.published.length = 0;
  }
}
