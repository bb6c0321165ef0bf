/**
 * HubBus against a real nats-server hub: stream creation is idempotent, desired state round-trips through
 * readDesired (tombstones included), and followStatus delivers the last value per subject, then new reports,
 * skipping malformed ones without stopping.
 */
import { create } from '@bufbuild/protobuf';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Headers, PayloadTooLargeError, TOMBSTONE_TTL, edge, encode, eventSubjects, statusSubjects, Streams } from '@edgefarm/proto';
import { HubFixture } from '@edgefarm/testing';
import { pino } from 'pino';
import { HubBus, oneConnection, readDesired } from './hub.js';

const log = pino({ level: 'silent' });
let bed: HubFixture;
let nc: NatsConnection;

beforeAll(async () => {
  bed = await HubFixture.start('ef-hubbus-');
  ({ nc } = bed);
}, 60_000);

afterAll(() => bed?.stop());

const spec = (name: string, rv: string) =>
  create(edge.EdgePodSpecSchema, {
    uid: `uid-${name}`,
    namespace: 'default',
    name,
    resourceVersion: rv,
    containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35' }],
  });

test('stream creation is idempotent and keeps one value per subject', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  await bus.ensureStreams();
  const info = await (await jetstreamManager(nc)).streams.info(Streams.desired);
  expect(info.config.max_msgs_per_subject).toBe(1);
  expect(info.config.metadata?.[TOMBSTONE_TTL.metadataKey]).toBe(String(TOMBSTONE_TTL.defaultSeconds));
});

test('a tombstone expires after the configured TTL, which the stream metadata tells the sites', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log }, { tombstoneTtlSeconds: 10 });
  await bus.ensureStreams();
  const jsm = await jetstreamManager(nc);
  expect((await jsm.streams.info(Streams.desired)).config.metadata?.[TOMBSTONE_TTL.metadataKey]).toBe('10');
  const seq = await bus.tombstonePod('edge-ttl', { namespace: 'default', name: 'gone' });
  const m = await jsm.streams.getMessage(Streams.desired, { seq });
  expect(m?.header?.get(Headers.ttl)).toBe('10s');
  expect(m?.header?.get(Headers.operation)).toBe('DEL');
  await new HubBus({ hub: oneConnection(nc), log }).ensureStreams(); // back to the default for the other tests
});

test('desired state round-trips, tombstones included, per node', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  await bus.publishPod('edge-a', spec('web.v1', '10'));
  await bus.publishPod('edge-a', spec('web.v1', '11')); // replaces the first: last value per subject
  await bus.publishPod('edge-a', spec('db', '12'));
  await bus.tombstonePod('edge-a', { namespace: 'default', name: 'db' });
  await bus.publishPod('edge-b', spec('other', '13'));
  const records = await readDesired(nc, ['edge-a'], log);
  expect(
    records.map((r) => [r.node, r.kind !== 'node' && r.key.name, r.kind === 'pod' && r.spec ? r.spec.resourceVersion : 'tombstone']),
  ).toEqual([
    ['edge-a', 'web.v1', '11'],
    ['edge-a', 'db', 'tombstone'],
  ]);
  expect(await readDesired(nc, ['edge-none'], log)).toEqual([]);
});

test('objects round-trip beside pods; one too large for a NATS message is refused before it is sent', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  const obj = (name: string, rv: string, bytes = 3) =>
    create(edge.EdgeObjectSchema, { namespace: 'default', name, resourceVersion: rv, data: { k: new Uint8Array(bytes) } });
  await bus.publishObject('edge-o', 'configmap', obj('app.conf', '20'));
  await bus.publishObject('edge-o', 'secret', obj('app.conf', '21')); // same name, other kind: its own subject
  await bus.publishObject('edge-o', 'token', obj('web-1', '22'));
  await bus.tombstoneObject('edge-o', 'token', { namespace: 'default', name: 'web-1' });
  await expect(bus.publishObject('edge-o', 'configmap', obj('big', '23', 1024 * 1024 + 1))).rejects.toThrow(PayloadTooLargeError);
  const records = await readDesired(nc, ['edge-o'], log);
  expect(
    records.map((r) => [
      r.kind,
      r.kind !== 'node' && r.key.name,
      r.kind !== 'pod' && r.kind !== 'node' && r.kind !== 'device' && r.object ? r.object.resourceVersion : 'tombstone',
    ]),
  ).toEqual([
    ['configmap', 'app.conf', '20'],
    ['secret', 'app.conf', '21'],
    ['token', 'web-1', 'tombstone'],
  ]);
});

test('readStatus replays the last value per subject, followStatus follows new ones; malformed messages are skipped', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  const js = jetstream(nc);
  const report = (generation: bigint, uid = 'p1') =>
    encode(edge.PodStatusReportSchema, create(edge.PodStatusReportSchema, { uid, namespace: 'default', name: uid, generation }));
  await js.publish(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p1' }), report(1n));
  await js.publish(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p1' }), report(2n)); // only this one is replayed
  await js.publish(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p2' }), new Uint8Array([0xff, 0xff, 0xff]));
  await js.publish(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p3' }), report(1n, 'not-p3')); // UID mismatch

  const seen: string[] = [];
  const beats: string[] = [];
  let dropped = 0;
  const handlers = {
    dropped: () => dropped++,
    pod: (node: string, r: edge.PodStatusReport) => seen.push(`${node}/${r.uid}@${r.generation}`),
    heartbeat: (node: string, hb: edge.NodeHeartbeat) => beats.push(`${node}:${hb.agentVersion}`),
  };
  await bus.followStatus(handlers);
  await bus.readStatus(['edge-s'], handlers);
  await js.publish(
    statusSubjects.of('edge-s', { kind: 'node' }),
    encode(edge.NodeHeartbeatSchema, create(edge.NodeHeartbeatSchema, { nodeName: 'edge-s', agentVersion: '9.9' })),
  );
  await js.publish(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p1' }), report(3n));
  const deadline = Date.now() + 10_000;
  while ((seen.length < 2 || beats.length < 1) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(seen).toEqual(['edge-s/p1@2', 'edge-s/p1@3']);
  expect(beats).toEqual(['edge-s:9.9']);
  expect(dropped).toBe(2); // the malformed report and the one whose UID does not match its subject (metrics count them)

  await bus.forgetPodStatus('edge-s', 'p1');
  const info = await (await jetstreamManager(nc)).streams.info(Streams.status, { subjects_filter: statusSubjects.node('edge-s') });
  expect(Object.keys(info.state.subjects ?? {})).not.toContain(statusSubjects.of('edge-s', { kind: 'pod', uid: 'p1' }));
  await bus.stop();
}, 30_000);

test('followEvents hands over one Event at a time: while the handler works, the next waits in the stream, none is lost', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  const js = jetstream(nc);
  const event = (i: number) =>
    encode(
      edge.EdgeEventSchema,
      create(edge.EdgeEventSchema, {
        id: `e${i}`,
        key: `k${i}`,
        podUid: 'u',
        podNamespace: 'default',
        podName: 'p',
        type: edge.EventType.NORMAL,
        reason: 'Pulled',
        firstTimestampMs: 1n,
        lastTimestampMs: 1n,
        count: 1,
        nodeName: 'edge-seq',
      }),
    );
  let running = 0;
  let most = 0;
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  await bus.followEvents(
    {
      event: async (_node, e) => {
        running++;
        most = Math.max(most, running);
        await gate; // a slow API
        seen.push(e.id);
        running--;
      },
    },
    0,
  );
  for (let i = 0; i < 20; i++) await js.publish(eventSubjects.of('edge-seq', `e${i}`), event(i));
  await new Promise((r) => setTimeout(r, 300));
  expect(running).toBe(1); // the first is being handled; the others wait (in the stream, or the consumer's bounded pull batch)
  release();
  for (let i = 0; i < 100 && seen.length < 20; i++) await new Promise((r) => setTimeout(r, 50));
  expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => `e${i}`));
  expect(most).toBe(1);
  await bus.stop();
});
