/**
 * The registrar's Prometheus metrics, on a registry of its own: every request by endpoint and result (`ok` or the
 * error code of protocol.ts, so a bounded set), request durations, and credentials issued.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ErrorCode } from './protocol.js';

export type Endpoint = 'join' | 'renew';
export type Result = 'ok' | ErrorCode;

export class RegistrarMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'endpoint' | 'result'>;
  private readonly duration: Histogram<'endpoint'>;
  private readonly issued: Counter<'kind'>;

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
