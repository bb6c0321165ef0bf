import { ManualClock, silentLogger } from '@edgefarm/testing';
import { MemoryImageService } from './memory.js';
import { DEFAULT_GC_POLICY, ImageGC, gcPolicyProblem, planImageGc, usagePercent, type GcImage, type GcInput } from './gc.js';

const NOW = 1_000_000_000;
const MIN = 60_000;
const img = (id: string, sizeBytes: number, lastUsedMs = 0, over: Partial<GcImage> = {}): GcImage => ({
  id,
  names: [`reg.io/${id}:1`],
  sizeBytes,
  pinned: false,
  lastUsedMs,
  firstSeenMs: NOW - 10 * MIN,
  ...over,
});

function plan(over: Partial<GcInput>) {
  return planImageGc({
    images: [],
    inUse: new Set(),
    sandboxImage: 'registry.k8s.io/pause:3.6',
    capacityBytes: 1000,
    availableBytes: 100,
    policy: DEFAULT_GC_POLICY,
    nowMs: NOW,
    ...over,
  });
}

describe('usagePercent', () => {
  it.each([
    [1000, 1000, 0],
    [1000, 150, 85],
    [1000, 151, 85],
    [1000, 0, 100],
    [0, 0, 0],
  ])('capacity %s available %s -> %s%%', (cap, avail, pct) => {
    expect(usagePercent(cap, avail)).toBe(pct);
  });
});

describe('planImageGc', () => {
  const images = [img('old', 30, NOW - 5 * MIN), img('never', 20, 0), img('recent', 500, NOW - MIN), img('used', 40, NOW)];

  it.each([
    // name, available of 1000, policy, in use, expected removals
    ['below the high threshold: nothing', 200, DEFAULT_GC_POLICY, [], []],
    ['at the high threshold (85%): free to 80% = 50 bytes, LRU first', 150, DEFAULT_GC_POLICY, ['used'], ['never', 'old']],
    ['far above: everything unused, LRU order', 10, DEFAULT_GC_POLICY, ['used'], ['never', 'old', 'recent']],
    ['an image in use (by id) is never removed', 10, DEFAULT_GC_POLICY, ['recent', 'used'], ['never', 'old']],
    ['high 100 disables collection', 0, { ...DEFAULT_GC_POLICY, highPercent: 100, lowPercent: 90 }, [], []],
    ['high 0 low 0 removes every unused image', 900, { highPercent: 0, lowPercent: 0, minAgeMs: 0 }, ['used'], ['never', 'old', 'recent']],
  ] as const)('%s', (_name, available, policy, inUse, expected) => {
    const p = plan({ images, availableBytes: available, policy: { ...policy }, inUse: new Set(inUse) });
    expect(p.remove.map((i) => i.id)).toEqual(expected);
  });

  it('computes what to free as the kubelet does', () => {
    const p = plan({ images, availableBytes: 100 });
    expect(p.usagePercent).toBe(90);
    expect(p.bytesToFree).toBe(100); // 1000 * 20% - 100
    expect(p.remove.map((i) => i.id)).toEqual(['never', 'old', 'recent']); // 20 + 30 < 100, then 500
    expect(p.freedBytes).toBe(550);
    expect(p.kept.get('used')).toBe('enough freed');
  });

  it('keeps the sandbox image, pinned images, images used by name and young images', () => {
    const p = plan({
      images: [
        img('pause', 1, 0, { names: ['registry.k8s.io/pause:3.6'] }),
        img('pinned', 1, 0, { pinned: true }),
        img('byname', 1, 0, { names: ['reg.io/app:1'] }),
        img('young', 1, 0, { firstSeenMs: NOW - MIN }),
        img('free', 1, 0),
      ],
      inUse: new Set(['reg.io/app:1']),
      availableBytes: 0,
    });
    expect(p.remove.map((i) => i.id)).toEqual(['free']);
    expect(Object.fromEntries(p.kept)).toEqual({
      pause: 'sandbox image',
      pinned: 'pinned',
      byname: 'in use',
      young: 'younger than the minimum age',
    });
  });

  it('orders equal last use by first seen', () => {
    const p = plan({
      images: [img('b', 1, 0, { firstSeenMs: NOW - 5 * MIN }), img('a', 1, 0, { firstSeenMs: NOW - 9 * MIN })],
      availableBytes: 0,
    });
    expect(p.remove.map((i) => i.id)).toEqual(['a', 'b']);
  });
});

describe('gcPolicyProblem', () => {
  it.each([
    [85, 80, ''],
    [0, 0, ''],
    [100, 100, ''],
    [101, 80, 'image GC high threshold 101 is not a percentage (0-100)'],
    [85, -1, 'image GC low threshold -1 is not a percentage (0-100)'],
    [50, 60, 'image GC low threshold 60 can not be higher than the high threshold 50'],
  ])('high %s low %s', (high, low, problem) => {
    expect(gcPolicyProblem({ highPercent: high, lowPercent: low })).toBe(problem);
  });
});

describe('ImageGC', () => {
  function setup(options = {}) {
    const clock = new ManualClock(NOW);
    const inUse = new Set<string>();
    const images = new MemoryImageService({ recordCalls: true, pullAny: false, inUse: () => inUse });
    const gc = new ImageGC({ images, clock, log: silentLogger() }, { minAgeMs: 0, ...options });
    const add = (id: string, size: number) =>
      images.present.set(`reg.io/${id}:1`, { id, names: [`reg.io/${id}:1`], sizeBytes: size, pinned: false });
    return { clock, images, inUse, gc, add };
  }

  it('removes unused images least recently used first, keeps used ones and the sandbox image', async () => {
    const { clock, images, inUse, gc, add } = setup();
    add('a', 10);
    add('b', 10);
    add('c', 10);
    images.present.set('registry.k8s.io/pause:3.6', { id: 'pause', names: ['registry.k8s.io/pause:3.6'], sizeBytes: 1, pinned: false });
    images.fs = { mountpoint: '/x', capacityBytes: 100, availableBytes: 50, imagesUsedBytes: 31 };
    inUse.add('a');
    await gc.runOnce(); // a used now; b, c never
    clock.advance(MIN);
    gc.noteUsed('b');
    inUse.clear();
    images.fs.availableBytes = 10; // 90% used: free 10 bytes
    const run = await gc.runOnce();
    expect(run).toMatchObject({ usagePercent: 90, bytesToFree: 10, removed: ['c'], freedBytes: 10, errors: [] });
    images.fs.availableBytes = 0; // 100%: free 20
    expect((await gc.runOnce()).removed).toEqual(['a', 'b']);
    expect([...images.present.keys()]).toEqual(['registry.k8s.io/pause:3.6']);
  });

  it('records a failed removal and goes on', async () => {
    const { images, gc, add } = setup();
    add('a', 10);
    add('b', 10);
    images.fs = { mountpoint: '/x', capacityBytes: 100, availableBytes: 0, imagesUsedBytes: 0 };
    images.failNext('removeImage');
    const run = await gc.runOnce();
    expect(run.removed).toEqual(['b']);
    expect(run.errors).toEqual(['a: injected removeImage failure']);
  });

  it('rejects bad thresholds', () => {
    expect(() => setup({ highPercent: 50, lowPercent: 60 })).toThrow('can not be higher');
  });

  it('runs every interval between start() and stop(), and leaves no timer', async () => {
    const { images, gc } = setup({ intervalMs: 40 });
    const runs = (): number => images.calls.filter((c) => c.method === 'imageFsUsage').length;
    gc.start();
    await new Promise((r) => setTimeout(r, 150));
    await gc.stop();
    const after = runs();
    expect(after).toBeGreaterThanOrEqual(2);
    await new Promise((r) => setTimeout(r, 120));
    expect(runs()).toBe(after);
  });
});
