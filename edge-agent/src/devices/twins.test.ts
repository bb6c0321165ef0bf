import { create, decodeDeviceStatusReport, deviceKey, edge, encode, mapperSubjects, outboxSubjects } from '@edgefarm/proto';
import { edgeDevice, silentLogger } from '@edgefarm/testing';
import type { NatsConnection } from '@nats-io/transport-node';
import { FakeOutbox } from '../bus/outbox.js';
import { DeviceTwins, ReportRefused } from './twins.js';

const WIRE = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const KEY = deviceKey({ namespace: 'plant', name: 'pump-1' });
const SUBJECT = mapperSubjects.report(WIRE, 'modbus', { namespace: 'plant', name: 'pump-1' });

function setup() {
  const devices = new Map<string, edge.EdgeDevice>([[KEY, edgeDevice(3n)]]);
  const outbox = new FakeOutbox();
  let now = 1_000_000;
  const twins = new DeviceTwins({
    nc: {} as NatsConnection,
    wireId: WIRE,
    devices: { device: (k) => devices.get(k), deviceKeys: () => [...devices.keys()] },
    outbox,
    clock: { now: () => now },
    log: silentLogger(),
    minWriteMs: 5000,
  });
  const report = (over: Parameters<typeof create<typeof edge.MapperReportSchema>>[1]) =>
    encode(edge.MapperReportSchema, create(edge.MapperReportSchema, { generation: 3n, connected: true, ...over }));
  const written = () => outbox.published.map((p) => ({ subject: p.subject, twin: decodeDeviceStatusReport(p.data) }));
  return { twins, outbox, devices, report, written, tick: (ms: number) => (now += ms) };
}

describe('DeviceTwins', () => {
  it("merges a mapper's report into the twin and writes it to the outbox under the device's UID", async () => {
    const { twins, report, written } = setup();
    await twins.merge(
      SUBJECT,
      report({ twins: [{ name: 'speed', reported: '1190', reportedAtMs: 10n, observedDesired: '1200', observedDesiredGeneration: 3n }] }),
    );
    const [w] = written();
    expect(w?.subject).toBe(outboxSubjects.of(WIRE, { kind: 'device', uid: 'u-1' }));
    expect(w?.twin).toMatchObject({
      uid: 'u-1',
      namespace: 'plant',
      name: 'pump-1',
      observedGeneration: 3n,
      connected: true,
      lastSeenMs: 1_000_000n,
    });
    expect(w?.twin.twins.map((p) => [p.name, p.reported, p.observedDesiredGeneration])).toEqual([['speed', '1190', 3n]]);
    expect(w?.twin.generation).toBe(1_000_000_000n);
  });

  it('merges properties one by one; an older read never takes a value back; the observed generation only grows', async () => {
    const { twins, report, written, tick } = setup();
    await twins.merge(SUBJECT, report({ twins: [{ name: 'speed', reported: '1200', reportedAtMs: 20n }] }));
    tick(1);
    await twins.merge(
      SUBJECT,
      report({
        generation: 2n,
        twins: [
          { name: 'temperature', reported: '41.5', reportedAtMs: 21n },
          { name: 'speed', reported: '900', reportedAtMs: 5n },
        ],
      }),
    );
    const last = written().at(-1)!.twin;
    expect(last.twins.map((p) => [p.name, p.reported])).toEqual([
      ['speed', '1200'],
      ['temperature', '41.5'],
    ]);
    expect(last.observedGeneration).toBe(3n);
    expect(written().map((w) => w.twin.generation)).toEqual([1_000_000_000n, 1_000_001_000n]);
  });

  it('writes a twin whose values did not change at most every minWriteMs', async () => {
    const { twins, report, outbox, tick } = setup();
    const same = () => report({ twins: [{ name: 'speed', reported: '1200', reportedAtMs: BigInt(Date.now()) }] });
    await twins.merge(SUBJECT, same());
    tick(1000);
    await twins.merge(SUBJECT, same());
    expect(outbox.published).toHaveLength(1);
    tick(5000);
    await twins.merge(SUBJECT, same());
    expect(outbox.published).toHaveLength(2);
  });

  it.each<[string, string, Parameters<typeof create<typeof edge.MapperReportSchema>>[1], RegExp]>([
    [
      'a device the node does not have',
      mapperSubjects.report(WIRE, 'modbus', { namespace: 'plant', name: 'other' }),
      {},
      /no device plant\/other/,
    ],
    [
      'another protocol than the device is served by',
      mapperSubjects.report(WIRE, 'opcua', { namespace: 'plant', name: 'pump-1' }),
      {},
      /served by protocol modbus, not opcua/,
    ],
    ['another node', mapperSubjects.report('UOTHER', 'modbus', { namespace: 'plant', name: 'pump-1' }), {}, /another node/],
    ['a property the device does not declare', SUBJECT, { twins: [{ name: 'pressure', reported: '1' }] }, /has no property pressure/],
    ['a property named twice', SUBJECT, { twins: [{ name: 'speed' }, { name: 'speed' }] }, /named twice/],
    ['a value over 4096 characters', SUBJECT, { twins: [{ name: 'speed', reported: 'x'.repeat(4097) }] }, /more than 4096/],
    ['a negative generation', SUBJECT, { generation: -1n }, /must not be negative/],
  ])('refuses a report of %s, writing nothing', async (_what, subject, over, message) => {
    const { twins, report, outbox } = setup();
    await expect(twins.merge(subject, report(over))).rejects.toThrow(message);
    expect(outbox.published).toHaveLength(0);
  });

  it('refuses a report under a subject that is not a mapper report', async () => {
    const { twins, report } = setup();
    await expect(twins.merge('ef.mapper.x.report', report({}))).rejects.toThrow(/not a mapper report subject/);
    await expect(twins.merge(SUBJECT, new Uint8Array([0xff, 0xff]))).rejects.toThrow(/malformed protobuf/);
  });

  it('forgets the twin of a removed device; a failed outbox write is not remembered as written', async () => {
    const { twins, report, outbox, devices } = setup();
    outbox.failNext();
    await expect(twins.merge(SUBJECT, report({ twins: [{ name: 'speed', reported: '1', reportedAtMs: 1n }] }))).rejects.toThrow(/injected/);
    await twins.merge(SUBJECT, report({ twins: [{ name: 'speed', reported: '1', reportedAtMs: 1n }] }));
    expect(outbox.published).toHaveLength(1);
    devices.delete(KEY);
    twins.deviceChanged(KEY);
    expect(twins.twin(KEY)).toBeUndefined();
    await expect(twins.merge(SUBJECT, report({}))).rejects.toBeInstanceOf(ReportRefused);
  });
});
