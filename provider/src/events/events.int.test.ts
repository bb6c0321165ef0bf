/**
 * HubBus.followEvents against a real nats-server hub, into the EdgeEventSink over the fake API: events stored in
 * EF_EVENTS become Kubernetes Events through the sink's queue, as in the provider (the same aggregation key updates
 * one Event); malformed messages are dropped without stopping the follower.
 */
import { create } from '@bufbuild/protobuf';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { edge, encode, eventSubjects } from '@edgefarm/proto';
import { HubFixture } from '@edgefarm/testing';
import { pino } from 'pino';
import { HubBus, oneConnection } from '../bus/hub.js';
import { FakeKubeClient } from '../kube/fake.js';
import { EdgeEventSink } from './sink.js';

const log = pino({ level: 'silent' });
let bed: HubFixture;
let nc: NatsConnection;

beforeAll(async () => {
  bed = await HubFixture.start('ef-events-');
  ({ nc } = bed);
}, 60_000);

afterAll(() => bed?.stop());

const ev = (id: string, count: number, node = 'edge-a') =>
  create(edge.EdgeEventSchema, {
    id,
    key: '0123456789abcdef',
    podUid: 'u1',
    podNamespace: 'default',
    podName: 'web',
    fieldPath: 'spec.containers{app}',
    type: edge.EventType.NORMAL,
    reason: 'Pulled',
    message: 'Container image "x" already present on machine',
    firstTimestampMs: 1_000n,
    lastTimestampMs: BigInt(1_000 + count),
    count,
    nodeName: node,
  });

test('events in EF_EVENTS become Kubernetes Events; malformed and unserved ones are skipped', async () => {
  const bus = new HubBus({ hub: oneConnection(nc), log });
  await bus.ensureStreams();
  const kube = new FakeKubeClient();
  kube.pods.set('default/web', {
    metadata: { name: 'web', namespace: 'default', uid: 'u1', resourceVersion: '5' },
    spec: { nodeName: 'edge-a', containers: [] }, // bound to edge-a: only edge-a speaks for it
  });
  const sink = new EdgeEventSink({ kube, getPod: (ns, n) => kube.pods.get(`${ns}/${n}`), log });
  let dropped = 0;
  await bus.followEvents({
    event: async (node, e) => {
      if (node === 'edge-a') await sink.enqueue(node, e);
    },
    dropped: () => dropped++,
  });
  const js = jetstream(nc);
  await js.publish(eventSubjects.of('edge-a', 'x-1'), encode(edge.EdgeEventSchema, ev('x-1', 1)));
  await js.publish(eventSubjects.of('edge-a', 'x-2'), new Uint8Array([0xff, 0xff]));
  await js.publish(eventSubjects.of('edge-b', 'y-1'), encode(edge.EdgeEventSchema, ev('y-1', 9, 'edge-b'))); // another replica's node
  await js.publish(eventSubjects.of('edge-a', 'x-3'), encode(edge.EdgeEventSchema, ev('x-3', 3)));
  const start = Date.now();
  while (kube.events[0]?.count !== 3 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50));
  expect(kube.events).toHaveLength(1);
  expect(kube.events[0]).toMatchObject({ count: 3, reason: 'Pulled', source: { component: 'kubelet', host: 'edge-a' } });
  expect(dropped).toBe(1);
  await bus.stop();
  await sink.drained();
  await sink.stop();
}, 30_000);
