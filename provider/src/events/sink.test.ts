import { create, edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import type { Pod } from '../kube/client.js';
import { EdgeEventSink, eventName } from './sink.js';

const log = pino({ level: 'silent' });
const pod: Pod = { metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '7' }, spec: { nodeName: 'edge-1', containers: [] } };

function ev(over: Partial<edge.EdgeEvent> = {}): edge.EdgeEvent {
  return create(edge.EdgeEventSchema, {
    id: 'i1', key: 'abcdef0123456789', podUid: 'u1', podNamespace: 'default', podName: 'web', fieldPath: 'spec.containers{app}',
    type: edge.EventType.WARNING, reason: 'BackOff', message: 'Back-off restarting failed container app in pod web_default(u1)',
    firstTimestampMs: 1_000n, lastTimestampMs: 1_000n, count: 1, nodeName: 'edge-1', ...over,
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
      type: 'Warning', reason: 'BackOff', count: 1, source: { component: 'kubelet', host: 'edge-1' }, reportingComponent: 'kubelet',
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

  it('drops events for pods no longer in the API or replaced by a new UID', async () => {
    const { kube, sink } = setup();
    expect(await sink.handle('edge-1', ev({ podName: 'gone' }))).toBe('dropped');
    expect(await sink.handle('edge-1', ev({ podUid: 'old-uid' }))).toBe('dropped');
    expect(kube.events).toHaveLength(0);
  });

  it('retries API errors with backoff, bounded', async () => {
    const { kube, sink } = setup();
    kube.failNext('patchEvent', new ApiError(500, 'boom'));
    expect(await sink.handle('edge-1', ev())).toBe('created');
    for (let i = 0; i < 5; i++) kube.failNext('patchEvent', new ApiError(500, 'boom'));
    expect(await sink.handle('edge-1', ev({ count: 2 }))).toBe('dropped');
    expect(kube.events[0]!.count).toBe(1);
  });

  it('keeps long names within 253 characters', () => {
    expect(eventName('p'.repeat(300), 'abcdef0123456789')).toHaveLength(253);
  });
});
