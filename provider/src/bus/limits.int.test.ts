/**
 * The hub streams' limits against a real nats-server (limits.ts): EF_DESIRED at its byte limit refuses new values with
 * a HubStreamFullError and keeps every value it holds (tombstones still go in); EF_STATUS at its limit drops its
 * oldest report; an existing stream of the old, unbounded layout is updated in place.
 */
import { create } from '@bufbuild/protobuf';
import { DiscardPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_STREAM_CONFIGS, MAX_PAYLOAD_BYTES, Streams, edge, encode, statusSubjects } from '@edgefarm/proto';
import { HubFixture } from '@edgefarm/testing';
import { pino } from 'pino';
import { HubBus, HubStreamFullError, isHubStreamFull, oneConnection, readDesired } from './hub.js';
import { InstrumentedPublisher } from './instrumented.js';

const log = pino({ level: 'silent' });
let bed: HubFixture;
let nc: NatsConnection;

beforeAll(async () => {
  bed = await HubFixture.start('ef-hub-limits-');
  ({ nc } = bed);
}, 60_000);

afterAll(() => bed?.stop());

const spec = (name: string, padding = 1000) =>
  create(edge.EdgePodSpecSchema, {
    uid: `uid-${name}`,
    namespace: 'default',
    name,
    resourceVersion: '1',
    annotations: { pad: 'x'.repeat(padding) },
    containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35' }],
  });

test('an existing stream of the unbounded layout gets the limits; EF_DESIRED at its limit refuses new values and keeps every value it holds', async () => {
  // The layout before the limits: as proto configures it, no byte limit, discard old.
  const jsm = await jetstreamManager(nc);
  for (const c of HUB_STREAM_CONFIGS.filter((c) => c.name !== Streams.events))
    await jsm.streams.add({ ...c, subjects: [...c.subjects], num_replicas: 1 });

  const bus = new HubBus({ hub: oneConnection(nc), log }, { limits: { desiredMaxBytes: 16 * 1024, statusMaxBytes: 8 * 1024 } });
  await bus.ensureStreams();
  const desired = (await jsm.streams.info(Streams.desired)).config;
  expect(desired).toMatchObject({
    max_bytes: 16 * 1024,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: 1,
    max_msg_size: MAX_PAYLOAD_BYTES,
  });
  const status = (await jsm.streams.info(Streams.status)).config;
  expect(status).toMatchObject({
    max_bytes: 8 * 1024,
    discard: DiscardPolicy.Old,
    max_msgs_per_subject: 1,
    max_msg_size: MAX_PAYLOAD_BYTES,
  });

  const failures: string[] = [];
  const publisher = new InstrumentedPublisher(bus, {
    published: () => undefined,
    failed: (kind, reason) => void failures.push(`${kind} ${reason}`),
  });
  const stored: string[] = [];
  let refused: unknown;
  for (let i = 0; i < 40 && !refused; i++) {
    try {
      await publisher.publishPod('edge-1', spec(`p${i}`));
      stored.push(`p${i}`);
    } catch (err) {
      refused = err;
    }
  }
  expect(isHubStreamFull(refused)).toBe(true);
  expect((refused as Error).message).toMatch(/EF_DESIRED is at its byte limit/);
  expect(failures).toEqual(['pod stream_full']);
  expect(stored.length).toBeGreaterThan(5);
  // Nothing accepted was dropped to make room: every value stored is still there.
  const held = () =>
    readDesired(nc, ['edge-1'], log).then((rs) => rs.flatMap((r) => (r.kind === 'pod' && r.spec ? [r.key.name] : [])).sort());
  expect(await held()).toEqual([...stored].sort());
  // At the limit even a new value of the same size for a subject it holds is refused (nats-server checks the stream's
  // bytes before it drops the subject's old value); the old value stays.
  await expect(publisher.publishPod('edge-1', spec(stored[2]!))).rejects.toThrow(HubStreamFullError);
  expect(await held()).toEqual([...stored].sort());
  // A tombstone still goes in, replacing its value, and makes room for a new value.
  await publisher.tombstonePod('edge-1', { namespace: 'default', name: stored[0]! });
  await publisher.tombstonePod('edge-1', { namespace: 'default', name: stored[1]! });
  await publisher.publishPod('edge-1', spec('after-room'));
  expect(await held()).toEqual([...stored.slice(2), 'after-room'].sort());
});

test('EF_STATUS at its limit drops its oldest reports, never a new one', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log }, { limits: { desiredMaxBytes: 16 * 1024, statusMaxBytes: 8 * 1024 } });
  await bus.ensureStreams();
  const js = jetstream(nc);
  const report = (uid: string) =>
    encode(
      edge.PodStatusReportSchema,
      create(edge.PodStatusReportSchema, { uid, namespace: 'default', name: uid, generation: 1n, message: 'm'.repeat(500) }),
    );
  for (let i = 0; i < 40; i++) await js.publish(statusSubjects.of('edge-1', { kind: 'pod', uid: `u${i}` }), report(`u${i}`));
  const info = await (await jetstreamManager(nc)).streams.info(Streams.status);
  expect(info.state.bytes).toBeLessThanOrEqual(8 * 1024);
  const last = await (
    await jetstreamManager(nc)
  ).streams.getMessage(Streams.status, { last_by_subj: statusSubjects.of('edge-1', { kind: 'pod', uid: 'u39' }) });
  expect(last).not.toBeNull();
  await expect(
    (await jetstreamManager(nc)).streams.getMessage(Streams.status, {
      last_by_subj: statusSubjects.of('edge-1', { kind: 'pod', uid: 'u0' }),
    }),
  ).resolves.toBeNull();
});
