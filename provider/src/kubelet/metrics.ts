/**
 * The kubelet API's metrics (docs/metrics.md): requests refused, by a bounded `reason` (never a path, a user or a
 * pod), and sessions closed for idling. Registered on the registry given (the provider's), or a registry of their
 * own (tests).
 */
import { Counter, Registry } from 'prom-client';
import { PREFIX } from '../metrics/metrics.js';

/** Why a kubelet API request was refused. */
export const KUBELET_REJECT_REASONS = [
  'bad_path',
  'bad_request',
  'unauthenticated',
  'forbidden',
  'not_found',
  'auth_error',
  'too_many_sessions',
  'too_many_requests',
  'too_many_ports',
] as const;
export type KubeletRejectReason = (typeof KUBELET_REJECT_REASONS)[number];

export class KubeletMetrics {
  readonly registry: Registry;
  private readonly rejects: Counter<'reason'>;
  private readonly idle: Counter;

  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    this.rejects = new Counter({
      name: `${PREFIX}kubelet_requests_rejected_total`,
      help: 'Kubelet API requests refused, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
    for (const r of KUBELET_REJECT_REASONS) this.rejects.inc({ reason: r }, 0);
    this.idle = new Counter({
      name: `${PREFIX}kubelet_sessions_idle_closed_total`,
      help: 'Kubelet API streaming connections (exec, attach, port-forward) closed after the idle timeout',
      registers: [this.registry],
    });
  }

  rejected(reason: KubeletRejectReason): void {
    this.rejects.inc({ reason });
  }

  idleClosed(): void {
    this.idle.inc();
  }

  /** The count of one reason (tests). */
  async rejectedCount(reason: KubeletRejectReason): Promise<number> {
    const m = await this.rejects.get();
    return m.values.find((v) => v.labels.reason === reason)?.value ?? 0;
  }
}

/** The reject reason of a Status code answered to a refused request. */
export function reasonOfCode(code: number | undefined): KubeletRejectReason {
  switch (code) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthenticated';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 429:
      return 'too_many_requests';
    default:
      return 'auth_error';
  }
}
