/**
 * A token bucket as client-go's (and the kubelet's `--event-qps`/`--event-burst`): `ratePerS` tokens a second, at most
 * `burst` saved. take() reserves one token and waits for it when the bucket is empty; reservations queue in call
 * order, so N callers at once wait 1/rate apart.
 */
export interface RateLimiterOptions {
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export class RateLimiter {
  private tokens: number;
  private last: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    options: RateLimiterOptions = {},
  ) {
    if (!(ratePerS > 0) || !(burst >= 1)) throw new RangeError('rate must be > 0 and burst >= 1');
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.tokens = burst;
    this.last = this.now();
  }

  /** Milliseconds the caller must wait for its token (0: it had one); the token is taken either way. */
  reserve(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerS) / 1000);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.ratePerS;
  }

  async take(): Promise<void> {
    const ms = this.reserve();
    if (ms > 0) await this.sleep(ms);
  }
}
