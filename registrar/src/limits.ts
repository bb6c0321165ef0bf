/**
 * Admission of requests to /v1/join and /v1/renew, decided before a body is read: a token bucket per client address,
 * one over all clients, and a bound on requests in flight. What a refused request costs the registrar is a map lookup:
 * no body is read, no Kubernetes call is made. The reasons a request is refused before the Registrar sees it are
 * {@link RejectReason}, a bounded set (the metric's label; never the address).
 *
 * The per-client memory is bounded too ({@link LimitSettings.maxClients}, least recently seen forgotten first): an
 * attacker with more addresses than that gets a fresh burst per address, which the overall bucket still bounds.
 */

/** Why a request was refused before it reached the Registrar (`edgefarm_registrar_requests_rejected_total{reason}`). */
export const REJECT_REASONS = [
  'client-rate',
  'overall-rate',
  'in-flight',
  'too-large',
  'unsupported-media-type',
  'request-timeout',
  'idle-timeout',
  'bad-request',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface LimitSettings {
  /** Requests a minute one client address may make (also its burst). */
  clientPerMinute: number;
  /** Requests a second over all clients (the burst is ten seconds' worth). */
  overallPerSecond: number;
  /** Requests being served at once; more are refused with `busy`. */
  maxInFlight: number;
  /** Client addresses remembered at most. */
  maxClients: number;
}

export const DEFAULT_LIMITS: LimitSettings = { clientPerMinute: 60, overallPerSecond: 20, maxInFlight: 64, maxClients: 10_000 };

class Bucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly capacity: number,
    private readonly perMs: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  /** Takes one token; when there is none, how many ms until there is one. */
  take(now: number): { ok: true } | { ok: false; retryMs: number } {
    this.tokens = Math.min(this.capacity, this.tokens + Math.max(0, now - this.last) * this.perMs);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryMs: Math.ceil((1 - this.tokens) / this.perMs) };
  }
}

export type Admitted =
  { ok: true; release: () => void } | { ok: false; reason: 'client-rate' | 'overall-rate' | 'in-flight'; retryAfterSeconds: number };

export class Admission {
  readonly settings: LimitSettings;
  private readonly clients = new Map<string, Bucket>();
  private readonly overall: Bucket;
  private inFlightNow = 0;

  constructor(
    settings: Partial<LimitSettings> = {},
    private readonly now: () => number = Date.now,
  ) {
    this.settings = { ...DEFAULT_LIMITS, ...settings };
    const s = this.settings;
    this.overall = new Bucket(s.overallPerSecond * 10, s.overallPerSecond / 1000, now());
  }

  /** Admits a request of `client` (its address) or says why not; call `release` once it is answered. */
  admit(client: string): Admitted {
    const now = this.now();
    let bucket = this.clients.get(client);
    if (bucket) this.clients.delete(client);
    else bucket = new Bucket(this.settings.clientPerMinute, this.settings.clientPerMinute / 60_000, now);
    this.clients.set(client, bucket); // most recently seen last
    if (this.clients.size > this.settings.maxClients) this.clients.delete(this.clients.keys().next().value!);
    const mine = bucket.take(now);
    if (!mine.ok) return { ok: false, reason: 'client-rate', retryAfterSeconds: Math.ceil(mine.retryMs / 1000) };
    const all = this.overall.take(now);
    if (!all.ok) return { ok: false, reason: 'overall-rate', retryAfterSeconds: Math.ceil(all.retryMs / 1000) };
    if (this.inFlightNow >= this.settings.maxInFlight) return { ok: false, reason: 'in-flight', retryAfterSeconds: 1 };
    this.inFlightNow++;
    let released = false;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        this.inFlightNow--;
      },
    };
  }

  get inFlight(): number {
    return this.inFlightNow;
  }
  /** Client addresses remembered now (tests). */
  get clientCount(): number {
    return this.clients.size;
  }
}
