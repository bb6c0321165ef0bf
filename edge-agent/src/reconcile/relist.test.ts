import { MemoryPodRuntime } from '../runtime/memory.js';
import { podSpec, silentLogger } from '@edgefarm/testing';
import { Relister } from './relist.js';

async function setup() {
  const runtime = new MemoryPodRuntime({ recordCalls: true });
  const queued: string[] = [];
  const relister = new Relister({ runtime, log: silentLogger(), onChange: (k) => queued.push(k) }, 0);
  const a = podSpec({ name: 'a' });
  const b = podSpec({ name: 'b' });
  const sa = await runtime.runSandbox(a, 0);
  const ca = await runtime.createContainer(a, { id: sa, attempt: 0 }, a.containers[0]!, { attempt: 0, restartCount: 0 });
  await runtime.startContainer(ca);
  const sb = await runtime.runSandbox(b, 0);
  return { runtime, queued, relister, a, b, ca, sa, sb };
}

describe('Relister (PLEG relist)', () => {
  it('reports every key first, then only the keys whose sandboxes or containers changed state', async () => {
    const { runtime, relister, queued, ca, b, sb } = await setup();
    expect((await relister.relistOnce()).sort()).toEqual(['default/a', 'default/b']);
    expect(await relister.relistOnce()).toEqual([]);

    runtime.exit(ca, 1);
    expect(await relister.relistOnce()).toEqual(['default/a']);
    expect(await relister.relistOnce()).toEqual([]);

    const cb = await runtime.createContainer(b, { id: sb, attempt: 0 }, b.containers[0]!, { attempt: 0, restartCount: 0 });
    expect(await relister.relistOnce()).toEqual(['default/b']); // a new container
    await runtime.startContainer(cb);
    expect(await relister.relistOnce()).toEqual(['default/b']); // created -> running
    await runtime.removeSandbox(sb);
    expect(await relister.relistOnce()).toEqual(['default/b']); // gone
    expect(await relister.relistOnce()).toEqual([]);
    expect(queued.sort()).toEqual(['default/a', 'default/a', 'default/b', 'default/b', 'default/b', 'default/b']);
    expect(runtime.methods().filter((m) => m === 'relist')).toHaveLength(8);
  });

  it('a failed relist keeps the last snapshot; the timer runs only between start and stop', async () => {
    const { runtime, queued, ca } = await setup();
    const relister = new Relister({ runtime, log: silentLogger(), onChange: (k) => queued.push(k) }, 5);
    relister.start();
    await new Promise((r) => setTimeout(r, 30));
    const first = queued.length;
    expect(first).toBe(2);
    runtime.failNext('relist');
    runtime.exit(ca, 0);
    await new Promise((r) => setTimeout(r, 30));
    await relister.stop();
    expect(queued.slice(first)).toEqual(['default/a']);
    const calls = runtime.methods().filter((m) => m === 'relist').length;
    await new Promise((r) => setTimeout(r, 20));
    expect(runtime.methods().filter((m) => m === 'relist')).toHaveLength(calls);
  });
});
