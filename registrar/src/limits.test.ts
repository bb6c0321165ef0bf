import { Admission } from './limits.js';

describe('admission (rates and the bound in flight)', () => {
  it('gives each client its burst, refills it over a minute, and says when to retry', () => {
    const clock = { now: 0 };
    const a = new Admission({ clientPerMinute: 2, overallPerSecond: 1000, maxInFlight: 100 }, () => clock.now);
    expect(a.admit('a').ok).toBe(true);
    expect(a.admit('a').ok).toBe(true);
    expect(a.admit('a')).toEqual({ ok: false, reason: 'client-rate', retryAfterSeconds: 30 });
    expect(a.admit('b').ok).toBe(true);
    clock.now += 30_000;
    expect(a.admit('a').ok).toBe(true);
  });

  it('bounds the clients it remembers (an address flood forgets the oldest, the overall rate still holds)', () => {
    const a = new Admission({ clientPerMinute: 1, overallPerSecond: 0.5, maxInFlight: 100, maxClients: 3 }, () => 0);
    const results = Array.from({ length: 10 }, (_, i) => a.admit(`10.0.0.${i}`));
    expect(a.clientCount).toBe(3);
    expect(results.filter((r) => r.ok)).toHaveLength(5);
    expect(results.filter((r) => !r.ok && r.reason === 'overall-rate')).toHaveLength(5);
  });

  it('counts requests in flight; release is idempotent', () => {
    const a = new Admission({ maxInFlight: 1 }, () => 0);
    const first = a.admit('a');
    expect(a.admit('b')).toMatchObject({ ok: false, reason: 'in-flight' });
    if (!first.ok) throw new Error('not admitted');
    first.release();
    first.release();
    expect(a.inFlight).toBe(0);
    expect(a.admit('b').ok).toBe(true);
  });
});
