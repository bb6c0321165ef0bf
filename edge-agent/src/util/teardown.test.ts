import { recordingLogger } from '@edgefarm/testing';
import { Teardown } from './teardown.js';

describe('Teardown', () => {
  it('stops in reverse order, waits for each step, logs a failing one and goes on; a second run does nothing', async () => {
    const { log, records } = recordingLogger();
    const t = new Teardown(log);
    const order: string[] = [];
    t.add('a', () => order.push('a'));
    t.add('b', async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push('b');
    });
    t.add('c', () => {
      throw new Error('boom');
    });
    t.add('d', () => order.push('d'));
    await t.run();
    expect(order).toEqual(['d', 'b', 'a']);
    expect(records.filter((r) => r.msg === 'error while stopping')).toEqual([expect.objectContaining({ part: 'c', err: 'boom' })]);
    await t.run();
    expect(order).toEqual(['d', 'b', 'a']);
  });

  it('runs a step added after run() began at once (a start still going on when the agent is stopped)', async () => {
    const { log } = recordingLogger();
    const t = new Teardown(log);
    await t.run();
    let stopped = false;
    t.add('late', () => (stopped = true));
    expect(stopped).toBe(true);
  });
});
