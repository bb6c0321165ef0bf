import { RateLimiter } from './rate.js';

describe('RateLimiter', () => {
  it('lets a burst through, then spaces reservations 1/rate apart', () => {
    let now = 0;
    const r = new RateLimiter(10, 3, { now: () => now });
    expect([r.reserve(), r.reserve(), r.reserve()]).toEqual([0, 0, 0]);
    expect(r.reserve()).toBeCloseTo(100);
    expect(r.reserve()).toBeCloseTo(200);
    now = 200; // both reserved tokens have come in: the next waits one interval
    expect(r.reserve()).toBeCloseTo(100);
  });

  it('refills over time, never above the burst', () => {
    let now = 0;
    const r = new RateLimiter(10, 2, { now: () => now });
    r.reserve();
    r.reserve();
    now = 10_000;
    expect([r.reserve(), r.reserve()]).toEqual([0, 0]);
    expect(r.reserve()).toBeCloseTo(100);
  });

  it('take() sleeps for the reservation', async () => {
    const slept: number[] = [];
    const r = new RateLimiter(4, 1, { now: () => 0, sleep: async (ms) => void slept.push(ms) });
    await r.take();
    await r.take();
    await r.take();
    expect(slept).toEqual([250, 500]);
  });

  it('rejects a rate or burst that cannot work', () => {
    expect(() => new RateLimiter(0, 1)).toThrow(RangeError);
    expect(() => new RateLimiter(5, 0)).toThrow(RangeError);
    expect(() => new RateLimiter(Number.NaN, 1)).toThrow(RangeError);
  });
});
