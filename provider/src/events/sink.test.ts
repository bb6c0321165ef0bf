import { create, edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import type { Pod } from '../kube/client.js';
import { EdgeEventSink, eventName } from './sink.js';

const log = pino({ level: 'silent' });
const pod: Pod = {
  metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '7' },
  spec: { nodeName: 'edge-1', containers: [] },
};

function ev(over: Partial<edge.EdgeEvent> = {}): edge.EdgeEvent {
  return create(edge.EdgeEventSchema, {
    id: 'i1',
    key: 'abcdef0123456789',
    podUid: 'u1',
    podNamespace: 'default',
    podName: 'web',
    fieldPath: 'spec.containers{app}',
    type: edge.EventType.WARNING,
    reason: 'BackOff',
    message: 'Back-off restarting failed container app in pod web_default(u1)',
    firstTimestampMs: 1_000n,
    lastTimestampMs: 1_000n,
    count: 1,
    nodeName: 'edge-1',
    ...over,
  });
}

function setup() {
  const kube = new FakeKubeClient();
  kube.pods.set('default/web', pod);
  const sink = new EdgeEventSink({ kube, getPod: (ns, n) => kube.pods.get(`${ns}/${n}`), log, sleep: async () => undefined });
  return { kube, sink };
}

describe('EdgeEventSink', () => {
  it('creates the Event as the kubelet would', async () => {
    const { kube, sink } = setup();
    expect(await sink.handle('edge-1', ev())).toBe('created');
    expect(kube.events).toHaveLength(1);
    expect(kube.events[0]).toMatchObject({
      metadata: { name: 'web.abcdef0123456789', namespace: 'default' },
      involvedObject: { kind: 'Pod', name: 'web', namespace: 'default', uid: 'u1', fieldPath: 'spec.containers{app}' },
      type: 'Warning',
      reason: 'BackOff',
      count: 1,
      source: { component: 'kubelet', host: 'edge-1' },
      reportingComponent: 'kubelet',
      firstTimestamp: new Date(1_000),
    });
  });

  it('patches the count and lastTimestamp of the same aggregated event; skips older messages', async () => {
    const { kube, sink } = setup();
    await sink.handle('edge-1', ev());
    expect(await sink.handle('edge-1', ev({ id: 'i2', count: 4, lastTimestampMs: 9_000n }))).toBe('updated');
    expect(await sink.handle('edge-1', ev({ id: 'i3', count: 2, lastTimestampMs: 5_000n }))).toBe('stale');
    expect(kube.events).toHaveLength(1);
    expect(kube.events[0]).toMatchObject({ count: 4, lastTimestamp: new Date(9_000).toISOString(), firstTimestamp: new Date(1_000) });
  });

  it('updates an Event another replica created meanwhile', async () => {
    const { kube, sink } = setup();
    await sink.handle('edge-1', ev());
    const other = setup().sink; // a fresh sink (another replica / a restart) over the same API
    (other as unknown as { deps: { kube: FakeKubeClient } }).deps.kube = kube;
    expect(await other.handle('edge-1', ev({ count: 2 }))).toBe('updated');
    expect(kube.events[0]!.count).toBe(2);
  });

  it('refuses an event about a pod bound to another node: nothing written on the pod, a Warning Event on the reporting Node once', async () => {
    const { kube, sink } = setup();
    expect(await sink.handle('edge-2', ev({ nodeName: 'edge-2' }))).toBe('wrong_node');
    expect(await sink.handle('edge-2', ev({ nodeName: 'edge-2', count: 2 }))).toBe('wrong_node');
    // No Event on the pod; one Warning Event on the reporting Node says so (at most once a minute).
    expect(kube.events.map((e) => [e.involvedObject.kind, e.involvedObject.name, e.reason])).toEqual([
      ['Node', 'edge-2', 'ForeignPodDataRefused'],
    ]);
    expect(kube.events[0]!.message).toMatch(
      /^refused 1 Events from this node about pods bound to other nodes \(last: pod default\/web on edge-1\)/,
    );
    // The pod's own node still gets its Event written.
    expect(await sink.handle('edge-1', ev())).toBe('created');
  });

  it('spends a write token only on an Event it will write: refused and unknown-pod events cost no API call and no token', async () => {
    const kube = new FakeKubeClient();
    kube.pods.set('default/web', pod);
    const slept: number[] = [];
    const sink = new EdgeEventSink({
      kube,
      getPod: (ns, n) => kube.pods.get(`${ns}/${n}`),
      log,
      ratePerS: 1, // burst 2
      sleep: async (ms) => void slept.push(ms),
    });
    for (let i = 0; i < 50; i++) {
      await sink.handle('edge-2', ev({ nodeName: 'edge-2', key: `k${i}`.padEnd(16, '0') }));
      await sink.handle('edge-1', ev({ podName: `ghost-${i}`, key: `g${i}`.padEnd(16, '0') }));
    }
    expect(kube.calls).toEqual(['createEvent ForeignPodDataRefused']); // the notice on edge-2, once a minute
    expect(await sink.handle('edge-1', ev())).toBe('created');
    expect(slept).toEqual([]); // the burst was still there
  });

  it('drops events for pods no longer in the API or replaced by a new UID', async () => {
    const { kube, sink } = setup();
    expect(await sink.handle('edge-1', ev({ podName: 'gone' }))).toBe('dropped');
    expect(await sink.handle('edge-1', ev({ podUid: 'old-uid' }))).toBe('dropped');
    expect(kube.events).toHaveLength(0);
  });

  it('writes a new Event with one call and a known one with one patch', async () => {
    const { kube, sink } = setup();
    await sink.handle('edge-1', ev());
    expect(kube.calls).toEqual(['createEvent BackOff']);
    await sink.handle('edge-1', ev({ id: 'i2', count: 2 }));
    expect(kube.calls).toEqual(['createEvent BackOff', 'patchEvent default/web.abcdef0123456789']);
  });

  it('creates again an Event it wrote that is gone (deleted, expired)', async () => {
    const { kube, sink } = setup();
    await sink.handle('edge-1', ev());
    kube.events.length = 0;
    expect(await sink.handle('edge-1', ev({ count: 3 }))).toBe('created');
    expect(kube.events).toHaveLength(1);
    expect(kube.events[0]!.count).toBe(3);
  });

  it('retries API errors with backoff, bounded', async () => {
    const { kube, sink } = setup();
    kube.failNext('createEvent', new ApiError(500, 'boom'));
    expect(await sink.handle('edge-1', ev())).toBe('created');
    for (let i = 0; i < 5; i++) kube.failNext('patchEvent', new ApiError(500, 'boom'));
    expect(await sink.handle('edge-1', ev({ count: 2 }))).toBe('dropped');
    expect(kube.events[0]!.count).toBe(1);
  });

  it('rate-limits API writes across events (burst twice the rate), not skipped ones', async () => {
    const { kube } = setup();
    const slept: number[] = [];
    const sink = new EdgeEventSink({
      kube,
      getPod: (ns, n) => kube.pods.get(`${ns}/${n}`),
      log,
      sleep: async (ms) => void slept.push(ms),
      ratePerS: 1,
    });
    await sink.handle('edge-1', ev({ count: 1 }));
    await sink.handle('edge-1', ev({ count: 2 }));
    await sink.handle('edge-1', ev({ count: 2 })); // stale: no write, no token
    await sink.handle('edge-1', ev({ podName: 'gone' })); // dropped: no token
    expect(slept).toEqual([]);
    await sink.handle('edge-1', ev({ count: 3 }));
    expect(slept).toHaveLength(1);
    expect(slept[0]).toBeGreaterThan(900);
    expect(kube.events[0]!.count).toBe(3);
  });

  it('keeps long names within 253 characters', () => {
    expect(eventName('p'.repeat(300), 'abcdef0123456789')).toHaveLength(253);
  });

  describe('enqueue', () => {
    /** A KubeClient whose createEvent/patchEvent wait until released, to see what runs at once. */
    function gated() {
      const { kube } = setup();
      for (let i = 0; i < 20; i++) kube.pods.set(`default/p${i}`, { ...pod, metadata: { ...pod.metadata, name: `p${i}`, uid: `u${i}` } });
      const gates: (() => void)[] = [];
      let inFlight = 0;
      let maxInFlight = 0;
      const create = kube.createEvent.bind(kube);
      kube.createEvent = async (e) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((r) => gates.push(r));
        inFlight--;
        return create(e);
      };
      const results: string[] = [];
      const sink = new EdgeEventSink({
        kube,
        getPod: (ns, n) => kube.pods.get(`${ns}/${n}`),
        log,
        sleep: async () => undefined,
        workers: 3,
        maxQueued: 4,
        outcome: (o) => results.push(o),
      });
      const release = async () => {
        while (gates.length) gates.shift()!();
        await new Promise((r) => setImmediate(r));
      };
      return { kube, sink, results, release, maxInFlight: () => maxInFlight, inFlight: () => inFlight };
    }
    const onPod = (i: number, over: Partial<edge.EdgeEvent> = {}) => ev({ podName: `p${i}`, podUid: `u${i}`, ...over });
    const settle = () => new Promise((r) => setImmediate(r));

    it('writes what is enqueued without an outcome callback too', async () => {
      const { kube, sink } = setup();
      await sink.enqueue('edge-1', ev());
      await sink.drained();
      expect(kube.events).toHaveLength(1);
    });

    it('writes different Events in parallel, up to the workers', async () => {
      const t = gated();
      for (let i = 0; i < 6; i++) await t.sink.enqueue('edge-1', onPod(i));
      await settle();
      expect(t.inFlight()).toBe(3);
      while (t.kube.events.length < 6) await t.release();
      await t.sink.drained();
      expect(t.maxInFlight()).toBe(3);
      expect(t.results.filter((r) => r === 'created')).toHaveLength(6);
    });

    it('coalesces messages for an Event still queued into the highest count, written after the write in flight for it', async () => {
      const t = gated();
      for (let i = 0; i < 3; i++) await t.sink.enqueue('edge-1', onPod(i)); // the 3 workers are busy
      await settle();
      await t.sink.enqueue('edge-1', onPod(0, { count: 5, lastTimestampMs: 5_000n })); // p0's Event is being written: queued
      await t.sink.enqueue('edge-1', onPod(0, { count: 7, lastTimestampMs: 7_000n })); // replaces it
      await t.sink.enqueue('edge-1', onPod(0, { count: 6, lastTimestampMs: 6_000n })); // older than the queued 7
      expect(t.sink.queued).toBe(1);
      while (t.sink.queued > 0 || t.inFlight() > 0) await t.release();
      await t.sink.drained();
      const p0 = t.kube.events.find((e) => e.metadata.name?.startsWith('p0.'));
      expect(p0).toMatchObject({ count: 7, lastTimestamp: new Date(7_000).toISOString() });
      expect(t.results.filter((r) => r === 'coalesced')).toHaveLength(2);
      expect(t.kube.calls.filter((c) => c.includes('p0.'))).toEqual(['patchEvent default/p0.abcdef0123456789']);
    });

    it('waits for room past maxQueued instead of growing without bound', async () => {
      const t = gated();
      for (let i = 0; i < 3; i++) await t.sink.enqueue('edge-1', onPod(i)); // in flight
      await settle();
      for (let i = 3; i < 7; i++) await t.sink.enqueue('edge-1', onPod(i)); // 4 queued: full
      let eighth = false;
      const waiting = t.sink.enqueue('edge-1', onPod(7)).then(() => (eighth = true));
      await settle();
      expect(eighth).toBe(false);
      expect(t.sink.queued).toBe(4);
      await t.release(); // three writes finish, three queued ones start: room
      await waiting;
      expect(eighth).toBe(true);
      while (t.kube.events.length < 8) await t.release();
      await t.sink.drained();
    });

    it('stop drops what is queued, lets a waiting enqueue return, and writes nothing more', async () => {
      const t = gated();
      for (let i = 0; i < 7; i++) await t.sink.enqueue('edge-1', onPod(i));
      await settle();
      const waiting = t.sink.enqueue('edge-1', onPod(7));
      const stopped = t.sink.stop();
      await waiting;
      await t.release();
      await stopped;
      await t.sink.enqueue('edge-1', onPod(8));
      await settle();
      expect(t.kube.events.map((e) => e.metadata.name?.split('.')[0]).sort()).toEqual(['p0', 'p1', 'p2']);
    });
  });
});
