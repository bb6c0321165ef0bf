/**
 * The device board on a real site nats-server (JetStream): the desired store's devices appear in the site's bucket
 * keyed by protocol, a mapper's watch of its protocol sees every device it serves at start whatever came first, a
 * protocol change moves the entry, a removed device's entry is deleted, and a resync after a restart drops entries
 * of devices deleted meanwhile.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { create, decodeEdgeDevice, deviceBoard, deviceKey, edge } from '@edgefarm/proto';
import { TestSite, silentLogger, waitFor } from '@edgefarm/testing';
import { DeviceBoard, type DeviceSource } from './board.js';

const T = 120_000;
const WIRE_ID = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
let site: TestSite;
let nc: NatsConnection;

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  nc = await site.nats.connectSite();
}, T);

afterAll(async () => {
  await nc?.close();
  await site?.stop();
}, T);

/** A store of devices the test changes by hand. */
class Devices implements DeviceSource {
  readonly map = new Map<string, edge.EdgeDevice>();
  device(key: string) {
    return this.map.get(key);
  }
  deviceKeys() {
    return [...this.map.keys()];
  }
  set(name: string, protocol: string, generation: bigint): string {
    const key = deviceKey({ namespace: 'plant', name });
    this.map.set(
      key,
      create(edge.EdgeDeviceSchema, {
        namespace: 'plant',
        name,
        uid: `u-${name}`,
        generation,
        model: 'm',
        protocol,
        protocolConfigJson: '{}',
      }),
    );
    return key;
  }
}

/** What a mapper of `protocol` sees: the live entries of its keys, by key, with their generation. */
async function mapperView(protocol: string): Promise<Record<string, bigint>> {
  const kv = await new Kvm(nc).open(deviceBoard.bucket(WIRE_ID));
  const seen: Record<string, bigint> = {};
  const watch = await kv.watch({ key: deviceBoard.protocol(protocol) });
  const done = new Promise<void>((resolve) => {
    void (async () => {
      for await (const e of watch as AsyncIterable<KvEntry>) {
        if (e.operation === 'PUT') seen[e.key] = decodeEdgeDevice(e.value).generation;
        else delete seen[e.key];
        if (e.delta === 0) break;
      }
      resolve();
    })();
  });
  await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
  watch.stop();
  return seen;
}

test(
  'a node without devices keeps no bucket',
  async () => {
    const board = new DeviceBoard({ nc, wireId: 'UNODEVICES', devices: new Devices(), log: silentLogger() });
    await board.resync();
    board.changed(deviceKey({ namespace: 'plant', name: 'gone' }));
    await board.idle();
    const jsm = await jetstreamManager(nc);
    await expect(jsm.streams.info(`KV_${deviceBoard.bucket('UNODEVICES')}`)).rejects.toThrow(/stream not found/);
    board.stop();
  },
  T,
);

test(
  "the board holds the store's devices by protocol; moves, deletes and a resync keep it exact",
  async () => {
    const devices = new Devices();
    const pump = devices.set('pump-1', 'modbus', 2n);
    // devices written before any mapper watches: a mapper started later still gets them
    const board = new DeviceBoard({ nc, wireId: WIRE_ID, devices, log: silentLogger(), retryMs: 100 });
    board.changed(pump);
    devices.set('valve-1', 'modbus', 1n);
    board.changed(deviceKey({ namespace: 'plant', name: 'valve-1' }));
    const meter = devices.set('meter-1', 'opcua', 4n);
    board.changed(meter);
    await board.idle();
    expect(await mapperView('modbus')).toEqual({ 'modbus.plant.pump-1': 2n, 'modbus.plant.valve-1': 1n });
    expect(await mapperView('opcua')).toEqual({ 'opcua.plant.meter-1': 4n });

    // the same value again writes nothing; a new generation does
    const puts = board.stats.puts;
    board.changed(pump);
    await board.idle();
    expect(board.stats.puts).toBe(puts);
    devices.set('pump-1', 'modbus', 3n);
    board.changed(pump);
    await board.idle();
    expect((await mapperView('modbus'))['modbus.plant.pump-1']).toBe(3n);

    // a protocol change moves the entry; a removed device's entry goes
    devices.set('pump-1', 'opcua', 4n);
    board.changed(pump);
    devices.map.delete(meter);
    board.changed(meter);
    await board.idle();
    expect(await mapperView('modbus')).toEqual({ 'modbus.plant.valve-1': 1n });
    expect(await mapperView('opcua')).toEqual({ 'opcua.plant.pump-1': 4n });
    board.stop();

    // the agent restarts; valve-1 was deleted while it was down: the resync removes its entry
    devices.map.delete(deviceKey({ namespace: 'plant', name: 'valve-1' }));
    const again = new DeviceBoard({ nc, wireId: WIRE_ID, devices, log: silentLogger() });
    await again.resync();
    await waitFor('valve-1 gone', async () => Object.keys(await mapperView('modbus')).length === 0, 10_000);
    expect(await mapperView('opcua')).toEqual({ 'opcua.plant.pump-1': 4n });
    again.stop();
  },
  T,
);
