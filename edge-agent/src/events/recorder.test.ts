import { decodeEdgeEvent, edge, parseEventSubject } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { ManualClock, silentLogger } from '@edgefarm/testing';
import { EventRecorder, containerFieldPath, eventKey } from './recorder.js';

const NODE = 'n1';
const WIRE_ID = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const pod = { uid: 'u1', namespace: 'default', name: 'web' };
const decoded = (o: FakeOutbox) => o.published.map((p) => decodeEdgeEvent(p.data, p.subject));

function setup(opts = {}) {
  const sink = new FakeOutbox();
  const clock = new ManualClock(1_000_000);
  const rec = new EventRecorder(
    { node: NODE, wireId: WIRE_ID, sink, clock, log: silentLogger() },
    { minPublishIntervalMs: 5_000, ...opts },
  );
  return { sink, clock, rec };
}

describe('EventRecorder', () => {
  it("writes an event to the site events subject of the node's wire id with the kubelet fields", async () => {
    const { sink, rec } = setup();
    rec.event({ ...pod, fieldPath: containerFieldPath('app') }, 'Normal', 'Pulling', 'Pulling image "busybox"');
    await rec.flush();
    expect(sink.published).toHaveLength(1);
    const [e] = decoded(sink);
    expect(e).toMatchObject({
      podUid: 'u1',
      podNamespace: 'default',
      podName: 'web',
      fieldPath: 'spec.containers{app}',
      type: edge.EventType.NORMAL,
      reason: 'Pulling',
      count: 1,
      nodeName: NODE,
    });
    expect(e!.firstTimestampMs).toBe(1_000_000n);
    const subj = parseEventSubject(sink.published[0]!.subject);
    expect(subj).toMatchObject({ place: 'eventbox', node: WIRE_ID, id: e!.id });
    await rec.stop();
  });

  it('aggregates identical events: one key, count and lastTimestamp grow, at most one message per interval', async () => {
    const { sink, clock, rec } = setup();
    const ref = { ...pod, fieldPath: containerFieldPath('app') };
    for (let i = 0; i < 5; i++) {
      rec.event(ref, 'Warning', 'BackOff', 'Back-off restarting failed container app in pod web_default(u1)');
      clock.advance(100);
    }
    await Promise.resolve();
    expect(sink.published).toHaveLength(1); // the first one, at once; the rest coalesced
    await rec.flush();
    const events = decoded(sink);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ count: 5, key: events[0]!.key, firstTimestampMs: 1_000_000n, lastTimestampMs: 1_000_400n });
    expect(events[1]!.id).not.toBe(events[0]!.id);
    // after the interval the next occurrence is published at once
    clock.advance(5_000);
    rec.event(ref, 'Warning', 'BackOff', 'Back-off restarting failed container app in pod web_default(u1)');
    await rec.flush();
    expect(decoded(sink)[2]).toMatchObject({ count: 6 });
    await rec.stop();
  });

  it('publishes the coalesced update by itself once the interval is over', async () => {
    const { sink, rec } = setup({ minPublishIntervalMs: 20 });
    rec.event(pod, 'Normal', 'Killing', 'Stopping container app');
    rec.event(pod, 'Normal', 'Killing', 'Stopping container app');
    await new Promise((r) => setTimeout(r, 60));
    expect(decoded(sink).map((e) => e.count)).toEqual([1, 2]);
    await rec.stop();
  });

  it('different messages, reasons or objects are different events; outside the window a new one starts', async () => {
    const { sink, clock, rec } = setup({ aggregateWindowMs: 1_000 });
    rec.event(pod, 'Warning', 'Unhealthy', 'Liveness probe failed: a');
    rec.event(pod, 'Warning', 'Unhealthy', 'Liveness probe failed: b');
    rec.event({ ...pod, uid: 'u2' }, 'Warning', 'Unhealthy', 'Liveness probe failed: a');
    clock.advance(10_000);
    rec.event(pod, 'Warning', 'Unhealthy', 'Liveness probe failed: a');
    await rec.flush();
    const events = decoded(sink);
    expect(events.map((e) => e.count)).toEqual([1, 1, 1, 1]);
    expect(new Set(events.map((e) => e.key)).size).toBe(3);
    expect(events[3]!.firstTimestampMs).toBe(1_010_000n);
    expect(eventKey(pod, 'Warning', 'Unhealthy', 'Liveness probe failed: a')).toBe(events[0]!.key);
    await rec.stop();
  });

  it('counts events the site stream did not take, and goes on', async () => {
    const { sink, rec } = setup();
    sink.failNext(2);
    rec.event(pod, 'Normal', 'Pulled', 'a');
    rec.event(pod, 'Normal', 'Pulled', 'b');
    rec.event(pod, 'Normal', 'Pulled', 'c');
    await rec.flush();
    expect(rec.dropped).toBe(2);
    expect(rec.published).toBe(1);
    expect(decoded(sink).map((e) => e.message)).toEqual(['c']);
    await rec.stop();
  });

  it('forgets the oldest keys beyond maxKeys and records nothing after stop', async () => {
    const { sink, rec } = setup({ maxKeys: 2 });
    for (const m of ['a', 'b', 'c']) rec.event(pod, 'Normal', 'Pulled', m);
    rec.event(pod, 'Normal', 'Pulled', 'a'); // forgotten: a new event with count 1
    await rec.stop();
    rec.event(pod, 'Normal', 'Pulled', 'z');
    expect(decoded(sink).map((e) => [e.message, e.count])).toEqual([
      ['a', 1],
      ['b', 1],
      ['c', 1],
      ['a', 1],
    ]);
  });
});
