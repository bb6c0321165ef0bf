/**
 * The registrar's Prometheus metrics, on a registry of its own: every request by endpoint and result (`ok` or the
 * error code of protocol.ts, so a bounded set), request durations, credentials issued, and the requests refused before
 * the Registrar saw them (limits.ts: rate, in flight, size, timeouts).
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RejectReason } from './limits.js';
import type { ErrorCode } from './protocol.js';

export type Endpoint = 'join' | 'renew';
export type Result = 'ok' | ErrorCode;

export class RegistrarMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'endpoint' | 'result'>;
  private readonly duration: Histogram<'endpoint'>;
  private readonly issued: Counter<'kind'>;
  private readonly rejectedCounter: Counter<'reason'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics ?? false) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'registrar_requests_total',
      help: 'Requests by endpoint and result (ok, or the error code answered)',
      labelNames: ['endpoint', 'result'],
      registers,
    });
    this.duration = new Histogram({
      name: 'registrar_request_duration_seconds',
      help: 'Time to answer a request',
      labelNames: ['endpoint'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.issued = new Counter({
      name: 'registrar_credentials_issued_total',
      help: 'Node credentials minted, by join or renewal',
      labelNames: ['kind'],
      registers,
    });
    this.rejectedCounter = new Counter({
      name: 'edgefarm_registrar_requests_rejected_total',
      help: 'Requests refused before the registrar looked at them, by reason (client-rate, overall-rate, in-flight, too-large, unsupported-media-type, request-timeout, idle-timeout, bad-request)',
      labelNames: ['reason'],
      registers,
    });
  }

  /** A request refused before the Registrar saw it (also counted in requests_total when its endpoint is known). */
  rejected(reason: RejectReason): void {
    this.rejectedCounter.inc({ reason });
  }

  async rejectedCount(reason: RejectReason): Promise<number> {
    const m = await this.rejectedCounter.get();
    return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
  }

  request(endpoint: Endpoint, result: Result, seconds: number): void {
    this.requests.inc({ endpoint, result });
    this.duration.observe({ endpoint }, seconds);
    if (result === 'ok') this.issued.inc({ kind: endpoint });
  }

  /** The counter's value (tests). */
  async count(endpoint: Endpoint, result: Result): Promise<number> {
    const m = await this.requests.get();
    return m.values.find((v) => v.labels.endpoint === endpoint && v.labels.result === result)?.value ?? 0;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
  get contentType(): string {
    return this.registry.contentType;
  }
}
