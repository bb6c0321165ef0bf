/**
 * The site's device loop with real parts: a real Modbus TCP server (pymodbus, Debian's python3-pymodbus), a real site
 * nats-server (JetStream), the agent's DeviceBoard and DeviceTwins, and the Modbus mapper on the MapperRuntime.
 * A desired value reaches the holding register; a value changed on the device reaches the twin in the outbox; a new
 * generation's desired value is written again (the store keeps only the newest: DesiredStore); the mapper came up
 * before any device existed;
 * a cut link to the device is reported as not connected, and a value desired meanwhile is written
 * once it heals; the device gone from the board stops its worker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, create, decodeDeviceStatusReport, deviceKey, edge, outboxSubjects } from '@edgefarm/proto';
import { DeviceBoard, DeviceTwins, JetStreamOutbox, ensureSiteStreams } from '@edgefarm/edge-agent';
import { TcpProxy, TestSite, freePort, silentLogger, spawnLogged, waitFor, type ManagedProcess } from '@edgefarm/testing';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import { MapperRuntime } from './runtime.js';
import { MODBUS_PROTOCOL, modbusDriver } from './modbus.js';

const T = 120_000;
const NODE = 'edge-mb';
const WIRE = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const ModbusRTU = createRequire(import.meta.url)('modbus-serial') as new () => ModbusClient;
let dir: string;
let site: TestSite;
let nc: NatsConnection;
let mapperNc: NatsConnection;
let jsm: JetStreamManager;
let server: ManagedProcess;
let port: number;
let probe: ModbusClient;
/** The mapper's link to the device. */
let link: TcpProxy;

async function startServer(): Promise<void> {
  server = spawnLogged('modbus', '/usr/bin/python3', [path.join(import.meta.dirname, '../testdata/modbus-server.py'), String(port)], {
    logFile: path.join(dir, 'modbus.log'),
  });
  probe = await waitFor(
    'the Modbus server',
    async () => {
      if (!server.alive()) throw new Error(`modbus server exited: ${server.tail(10)}`);
      const c = new ModbusRTU(); // a fresh client each try: one whose connect failed stays unusable
      await c.connectTCP('127.0.0.1', { port });
      c.setID(1);
      return c;
    },
    20_000,
    200,
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-modbus-'));
  port = await freePort();
  await startServer();
  link = new TcpProxy(port);
  await link.start();
  site = await TestSite.start({ containerd: false });
  nc = await site.nats.connectSite();
  mapperNc = await site.nats.connectSite();
  jsm = await jetstreamManager(nc);
  await ensureSiteStreams(jsm, NODE, WIRE, silentLogger());
}, T);

afterAll(async () => {
  probe?.close(() => undefined);
  await link?.stop();
  await server?.stop();
  await mapperNc?.close();
  await nc?.close();
  await site?.stop();
  await rm(dir, { recursive: true, force: true });
}, T);

const pump = (generation: bigint, speed: string, address = `127.0.0.1:${link.port}`) =>
  create(edge.EdgeDeviceSchema, {
    namespace: 'plant',
    name: 'pump-1',
    uid: 'u-1',
    generation,
    model: 'pump',
    protocol: MODBUS_PROTOCOL,
    protocolConfigJson: JSON.stringify({ address, unitId: 1, timeoutMs: 1000 }),
    properties: [
      {
        name: 'speed',
        type: edge.PropertyType.INT,
        writable: true,
        desired: speed,
        visitorConfigJson: JSON.stringify({ register: 'HoldingRegister', offset: 1 }),
        collectCycleMs: 200n,
      },
      {
        name: 'temperature',
        type: edge.PropertyType.DOUBLE,
        visitorConfigJson: JSON.stringify({ register: 'HoldingRegister', offset: 4, limit: 2, scale: 0.1, signed: true }),
        collectCycleMs: 200n,
      },
      {
        name: 'running',
        type: edge.PropertyType.BOOLEAN,
        writable: true,
        desired: 'true',
        visitorConfigJson: JSON.stringify({ register: 'Coil', offset: 2 }),
        collectCycleMs: 200n,
      },
    ],
  });

test(
  "desired values reach the registers, the device's values reach the twin, a new generation writes again",
  async () => {
    const KEY = deviceKey({ namespace: 'plant', name: 'pump-1' });
    const devices = new Map<string, edge.EdgeDevice>();
    const source = { device: (k: string) => devices.get(k), deviceKeys: () => [...devices.keys()] };
    const board = new DeviceBoard({ nc, wireId: WIRE, devices: source, log: silentLogger() });
    const twins = new DeviceTwins({
      nc,
      wireId: WIRE,
      devices: source,
      outbox: new JetStreamOutbox(jetstream(nc), NODE),
      clock: { now: () => Date.now() },
      log: silentLogger(),
      minWriteMs: 0,
    });
    twins.start();
    // the mapper starts first: no device, no board yet
    const mapper = new MapperRuntime({
      nc: mapperNc,
      wireId: WIRE,
      protocol: MODBUS_PROTOCOL,
      driver: modbusDriver,
      log: silentLogger(),
      defaultReportMs: 200,
      retryMs: { first: 100, max: 500 },
    });
    mapper.start();
    const set = async (d: edge.EdgeDevice) => {
      devices.set(KEY, d);
      board.changed(KEY);
      twins.deviceChanged(KEY);
      await board.idle();
    };
    const twin = async () => {
      const m = await jsm.streams
        .getMessage(Streams.outbox(NODE), { last_by_subj: outboxSubjects.of(WIRE, { kind: 'device', uid: 'u-1' }) })
        .catch(() => null);
      return m ? decodeDeviceStatusReport(m.data) : undefined;
    };
    const reported = async (name: string) => (await twin())?.twins.find((t) => t.name === name)?.reported;

    const t0 = Date.now();
    await set(pump(3n, '1200'));
    await waitFor('speed 1200 in holding register 1', async () => (await probe.readHoldingRegisters(1, 1)).data[0] === 1200, 20_000, 50);
    const toRegister = Date.now() - t0;
    expect((await probe.readCoils(2, 1)).data[0]).toBe(true);
    await waitFor(
      'the twin reports speed 1200 at generation 3',
      async () => {
        const t = await twin();
        const s = t?.twins.find((x) => x.name === 'speed');
        return t?.connected && s?.reported === '1200' && s.observedDesiredGeneration === 3n;
      },
      20_000,
    );

    // the device changes on its own (someone at the machine): the twin follows; -12.5 °C as a signed 32-bit value × 0.1
    const t1 = Date.now();
    await probe.writeRegisters(4, [0xffff, 0xff83]);
    await waitFor('temperature -12.5 in the twin', async () => (await reported('temperature')) === '-12.5', 20_000, 50);
    const toTwin = Date.now() - t1;

    // a new generation writes again, even the same value after the device drifted
    await probe.writeRegister(1, 900);
    await set(pump(4n, '1200'));
    await waitFor(
      'speed written back to 1200 for generation 4',
      async () => (await probe.readHoldingRegisters(1, 1)).data[0] === 1200,
      20_000,
      50,
    );
    await set(pump(5n, '1500'));
    await waitFor('speed 1500', async () => (await probe.readHoldingRegisters(1, 1)).data[0] === 1500, 20_000, 50);

    // the link to the device is cut (the mapper dials it through a TCP proxy): the twin says not connected, with
    // why; meanwhile a new desired value; the link heals: connected again, and the value written
    link.sever();
    await waitFor('not connected', async () => (await twin())?.connected === false, 20_000);
    expect((await twin())?.message).not.toBe('');
    await set(pump(6n, '1700'));
    link.heal();
    await waitFor('connected again', async () => (await twin())?.connected === true, 20_000);
    await waitFor(
      'the value desired while cut is written',
      async () => (await probe.readHoldingRegisters(1, 1)).data[0] === 1700,
      20_000,
      50,
    );

    // the device leaves the board: its worker stops
    devices.delete(KEY);
    board.changed(KEY);
    await board.idle();
    await waitFor('worker stopped', () => mapper.devices.size === 0, 10_000);

    console.log(
      `[mapper] desired -> register ${toRegister} ms (incl. the board, the watch and the connect); register -> twin in the outbox ${toTwin} ms (collect cycle 200 ms)`,
    );
    await mapper.stop();
    twins.stop();
    board.stop();
  },
  T,
);
