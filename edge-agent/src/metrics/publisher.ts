/**
 * MetricsPublisher: every interval, writes the agent's metrics text (Prometheus exposition, the registry's output)
 * to the outbox as the last value of `ef.outbox.<wire id>.metrics`; the forwarder moves it to the hub
 * (`ef.status.<wire id>.metrics`), so the cloud sees every site's metrics without reaching into it. A text larger than
 * {@link MAX_METRICS_BYTES} is skipped with a warning (a JetStream message must stay small; an agent's text is ~10 KiB
 * of process metrics plus ~2 KiB per CRI method and code seen, tens of KiB in all). A failed write is logged and
 * retried at the next interval (last value: nothing queues).
 */
import { outboxSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { OutboxWriter } from '../bus/outbox.js';
import { errorMessage } from '../util/time.js';
import type { MetricsText } from './server.js';

export const MAX_METRICS_BYTES = 256 * 1024;

export class MetricsPublisher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly deps: { wireId: string; metrics: MetricsText; outbox: OutboxWriter; log: Logger },
    private readonly intervalMs: number,
  ) {}

  /** First publish at once, then every interval. */
  start(): void {
    if (this.timer || this.intervalMs <= 0) return;
    const tick = () => {
      this.running = this.publish().then(() => undefined);
    };
    tick();
    this.timer = setInterval(tick, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One publish; resolves with whether it was written. */
  async publish(): Promise<boolean> {
    const { wireId, metrics, outbox, log } = this.deps;
    try {
      const data = new TextEncoder().encode(await metrics.text());
      if (data.byteLength > MAX_METRICS_BYTES) {
        log.warn({ bytes: data.byteLength, max: MAX_METRICS_BYTES }, 'metrics text too large to publish; skipped');
        return false;
      }
      await outbox.publish(outboxSubjects.of(wireId, { kind: 'metrics' }), data);
      return true;
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'could not publish metrics to the outbox; retrying at the next interval');
      return false;
    }
  }
}
