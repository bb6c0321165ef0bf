/**
 * A mapper's report on a real site nats-server: the mapper's request is answered (empty: stored; a text: refused, with
 * why), and the merged twin lands in the node's outbox stream under the device's UID, last value per device, where
 * the forwarder takes it to the hub.
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, create, decodeDeviceStatusReport, deviceKey, edge, encode, mapperSubjects, outboxSubjects } from '@edgefarm/proto';
import { TestSite, edgeDevice, silentLogger } from '@edgefarm/testing';
import { JetStreamOutbox } from '../bus/outbox.js';
import { ensureSiteStreams } from '../bus/site-streams.js';
import { DeviceTwins } from './twins.js';

const T = 120_000;
const NODE = 'edge-twins';
const WIRE = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
let site: TestSite;
let nc: NatsConnection;
let mapper: NatsConnection;

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  nc = await site.nats.connectSite();
  mapper = await site.nats.connectSite();
}, T);

afterAll(async () => {
  await mapper?.close();
  await nc?.close();
  await site?.stop();
}, T);

test(
  "a mapper's report is answered and its device's twin is in the outbox, last value per device",
  async () => {
    const jsm = await jetstreamManager(nc);
    await ensureSiteStreams(jsm, NODE, WIRE, silentLogger());
    const device = edgeDevice(3n);
    const twins = new DeviceTwins({
      nc,
      wireId: WIRE,
      devices: { device: (k) => (k === deviceKey(device) ? device : undefined), deviceKeys: () => [deviceKey(device)] },
      outbox: new JetStreamOutbox(jetstream(nc), NODE),
      clock: { now: () => Date.now() },
      log: silentLogger(),
      minWriteMs: 0,
    });
    twins.start();
    await nc.flush();
    const send = async (protocol: string, reported: string, at: bigint) => {
      const reply = await mapper.request(
        mapperSubjects.report(WIRE, protocol, { namespace: 'plant', name: 'pump-1' }),
        encode(
          edge.MapperReportSchema,
          create(edge.MapperReportSchema, { generation: 3n, connected: true, twins: [{ name: 'speed', reported, reportedAtMs: at }] }),
        ),
        { timeout: 5000 },
      );
      return new TextDecoder().decode(reply.data);
    };
    expect(await send('modbus', '1190', 1n)).toBe('');
    expect(await send('modbus', '1200', 2n)).toBe('');
    expect(await send('opcua', '7', 3n)).toMatch(/served by protocol modbus, not opcua/);

    const subject = outboxSubjects.of(WIRE, { kind: 'device', uid: 'u-1' });
    const last = await jsm.streams.getMessage(Streams.outbox(NODE), { last_by_subj: subject });
    const twin = decodeDeviceStatusReport(last!.data);
    expect(twin.twins.map((p) => [p.name, p.reported])).toEqual([['speed', '1200']]);
    expect(twin.observedGeneration).toBe(3n);
    const info = await jsm.streams.info(Streams.outbox(NODE), { subjects_filter: subject });
    expect(info.state.messages).toBe(1); // last value per device
    expect(twins.stats).toMatchObject({ merged: 2, refused: 1, written: 2 });
    twins.stop();
  },
  T,
);
