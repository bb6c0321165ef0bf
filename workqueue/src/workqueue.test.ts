import { WorkQueue } from './workqueue.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('WorkQueue', () => {
  it('stop waits for running handlers', async () => {
    let finished = false;
    const q = new WorkQueue(async () => {
      await new Promise((r) => setTimeout(r, 20));
      finished = true;
    });
    q.add('k');
    await tick();
    await q.stop();
    expect(finished).toBe(true);
  });

  it('holds keys until start when paused', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => void seen.push(k), { startPaused: true });
    q.add('a');
    await tick();
    expect(seen).toEqual([]);
    q.start();
    await q.drained();
    expect(seen).toEqual(['a']);
  });

  it('rejects a bad worker count', () => {
    expect(() => new WorkQueue(async () => undefined, { workers: 0 })).toThrow(RangeError);
  });

  it('de-duplicates queued keys and never runs a key concurrently', async () => {
    const running = new Set<string>();
    const seen: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = new WorkQueue(
      async (key) => {
        expect(running.has(key)).toBe(false);
        running.add(key);
        seen.push(key);
        if (seen.length === 1) await gate;
        running.delete(key);
      },
      { workers: 1 },
    );
    q.add('a');
    await tick();
    q.add('a'); // while a runs: marked dirty, runs once more afterwards
    q.add('a');
    q.add('b'); // queued behind a
    q.add('b');
    release();
    await q.drained();
    expect(seen.sort()).toEqual(['a', 'a', 'b']);
  });

  it('retries failures with exponential backoff through the injected timer', async () => {
    const delays: number[] = [];
    const pending: (() => void)[] = [];
    let attempts = 0;
    const errors: number[] = [];
    const q = new WorkQueue(
      async () => {
        attempts++;
        if (attempts < 3) throw new Error('boom');
      },
      {
        baseDelayMs: 100,
        setTimer: (fn, ms) => {
          delays.push(ms);
          pending.push(fn);
          return { cancel: () => undefined };
        },
        onError: (_k, _e, attempt) => errors.push(attempt),
      },
    );
    q.add('k');
    await q.drained();
    pending.shift()!();
    await q.drained();
    pending.shift()!();
    await q.drained();
    expect(attempts).toBe(3);
    expect(delays).toEqual([100, 200]);
    expect(errors).toEqual([1, 2]);
  });

  it('drops work after stop', async () => {
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
    });
    await q.stop();
    q.add('x');
    await q.drained();
    expect(runs).toBe(0);
  });
});
