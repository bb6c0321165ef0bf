import { silentLogger } from '../testing/fixtures.js';
import { WorkQueue } from './workqueue.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  it('coalesces a key queued several times while waiting', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(async (k) => void seen.push(k), silentLogger(), { concurrency: 1 });
    q.add('a');
    q.add('b');
    q.add('a');
    q.start();
    await q.idle();
    expect(seen).toEqual(['a', 'b']);
    await q.stop();
  });

  it('never runs a key twice at once, and re-runs it once when queued during its run', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        runs++;
        maxRunning = Math.max(maxRunning, running);
        if (runs === 1) await gate.promise;
        running--;
      },
      silentLogger(),
      { concurrency: 4 },
    );
    q.start();
    q.add('a');
    await Promise.resolve();
    q.add('a');
    q.add('a');
    gate.resolve();
    await q.idle();
    expect(runs).toBe(2);
    expect(maxRunning).toBe(1);
    await q.stop();
  });

  it('runs different keys in parallel up to the concurrency', async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const q = new WorkQueue(
      async () => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await gate.promise;
        running--;
      },
      silentLogger(),
      { concurrency: 2 },
    );
    q.start();
    for (const k of ['a', 'b', 'c']) q.add(k);
    await new Promise((r) => setTimeout(r, 5));
    expect(maxRunning).toBe(2);
    gate.resolve();
    await q.idle();
    await q.stop();
  });

  it('survives a failing handler and drops keys after stop', async () => {
    const seen: string[] = [];
    const q = new WorkQueue(
      async (k) => {
        seen.push(k);
        if (k === 'bad') throw new Error('boom');
      },
      silentLogger(),
    );
    q.start();
    q.add('bad');
    q.add('good');
    await q.idle();
    await q.stop();
    q.add('late');
    expect(seen).toEqual(['bad', 'good']);
  });
});
