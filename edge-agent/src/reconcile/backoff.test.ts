import { RestartBackoff, crashLoopMessage, goDuration } from './backoff.js';

describe('RestartBackoff (flowcontrol.Backoff as the kubelet uses it)', () => {
  /** Crashes a container `times` times, each after running `runMs`, restarting as soon as allowed; returns the waits. */
  function crashLoop(b: RestartBackoff, times: number, runMs: number): number[] {
    let now = 0;
    const waits: number[] = [];
    for (let i = 0; i < times; i++) {
      now += runMs;
      const finished = now;
      let wait = 0;
      while (b.isInBackOffSince('k', finished, now)) {
        now += 100;
        wait += 100;
      }
      b.next('k', finished, now);
      waits.push(wait);
    }
    return waits;
  }

  it('first restart at once, then 10 s doubling, capped at 300 s', () => {
    expect(crashLoop(new RestartBackoff(), 9, 0)).toEqual([0, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000]);
  });

  it('starts over when the container ran longer than 2 * max since the last restart (10 min with the defaults)', () => {
    const b = new RestartBackoff();
    crashLoop(b, 4, 0);
    expect(b.get('k')).toBe(80_000);
    let now = 1_000_000;
    b.next('k', now, now);
    now += 600_001; // ran 10 min
    expect(b.isInBackOffSince('k', now, now)).toBe(false);
    b.next('k', now, now);
    expect(b.get('k')).toBe(10_000);
  });

  it('gc drops entries idle for 2 * max', () => {
    const b = new RestartBackoff(1000, 2000);
    b.next('k', 0, 0);
    b.gc(4000);
    expect(b.size()).toBe(1);
    b.gc(4001);
    expect(b.size()).toBe(0);
  });

  it('prints durations and messages as the kubelet does', () => {
    expect([10_000, 80_000, 160_000, 300_000, 1000, 500].map(goDuration)).toEqual(['10s', '1m20s', '2m40s', '5m0s', '1s', '500ms']);
    expect(crashLoopMessage({ name: 'web', namespace: 'prod', uid: 'u-1' }, 'app', 20_000)).toBe(
      'back-off 20s restarting failed container=app pod=web_prod(u-1)',
    );
  });
});
