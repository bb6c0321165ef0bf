import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { DEVICE_LIMITS, DecodeError, decodeDeviceStatusReport, decodeEdgeDevice } from './codec.js';
import { DevicePropertySchema, DeviceStatusReportSchema, EdgeDeviceSchema, PropertyType } from './gen/edgefarm/v1/edge_pb.js';

type DeviceInit = MessageInitShape<typeof EdgeDeviceSchema>;

const device = (over: DeviceInit = {}): Uint8Array =>
  toBinary(
    EdgeDeviceSchema,
    create(EdgeDeviceSchema, {
      namespace: 'plant',
      name: 'pump-1',
      uid: 'u-1',
      generation: 3n,
      model: 'pump',
      protocol: 'modbus',
      protocolConfigJson: '{"address":"10.0.0.5:502","unitId":1}',
      properties: [
        {
          name: 'speed',
          type: PropertyType.INT,
          writable: true,
          desired: '1200',
          visitorConfigJson: '{"register":"HoldingRegister","offset":1}',
        },
        { name: 'temperature', type: PropertyType.DOUBLE, visitorConfigJson: '{}' },
      ],
      ...over,
    }),
  );
const prop = (over: MessageInitShape<typeof DevicePropertySchema>) => ({
  name: 'p',
  type: PropertyType.INT,
  visitorConfigJson: '{}',
  ...over,
});

describe('decodeEdgeDevice', () => {
  it('decodes a device with its resolved properties', () => {
    const d = decodeEdgeDevice(device(), 'ef.desired.n.device.plant.pump-1');
    expect(d.properties.map((p) => [p.name, p.desired])).toEqual([
      ['speed', '1200'],
      ['temperature', undefined],
    ]);
  });

  it.each<[string, DeviceInit, RegExp]>([
    ['no uid', { uid: '' }, /missing uid/],
    ['no protocol', { protocol: '' }, /missing protocol/],
    ['generation 0', { generation: 0n }, /generation must be positive/],
    ['a negative generation', { generation: -4n }, /generation must be positive/],
    ['protocol config that is not JSON', { protocolConfigJson: '{"a":' }, /protocol_config_json is not JSON/],
    ['protocol config that is an array', { protocolConfigJson: '[1,2]' }, /not a JSON object/],
    ['protocol config that is null', { protocolConfigJson: 'null' }, /not a JSON object/],
    ['empty protocol config', { protocolConfigJson: '' }, /not JSON/],
    ['huge protocol config', { protocolConfigJson: `{"a":"${'x'.repeat(DEVICE_LIMITS.configJsonChars)}"}` }, /more than/],
    ['a property named twice', { properties: [prop({ name: 'a' }), prop({ name: 'a' })] }, /named twice/],
    ['a property name with a dot', { properties: [prop({ name: 'a.b' })] }, /not a property name/],
    ['a property name of 64 characters', { properties: [prop({ name: 'a'.repeat(64) })] }, /not a property name/],
    ['a property of no type', { properties: [prop({ type: PropertyType.UNSPECIFIED })] }, /no known type/],
    ['a property of an unknown type', { properties: [prop({ type: 99 as PropertyType })] }, /no known type/],
    ['a desired value on a read-only property', { properties: [prop({ desired: '1' })] }, /read-only but has a desired value/],
    ['a desired value too long', { properties: [prop({ writable: true, desired: 'x'.repeat(4097) })] }, /more than 4096/],
    ['a visitor config that is not an object', { properties: [prop({ visitorConfigJson: '"r1"' })] }, /not a JSON object/],
    ['a negative cycle', { properties: [prop({ collectCycleMs: -1n })] }, /negative cycle/],
    [
      'too many properties',
      { properties: Array.from({ length: DEVICE_LIMITS.properties + 1 }, (_, i) => prop({ name: `p${i}` })) },
      /257 properties, more than 256/,
    ],
  ])('refuses %s with a DecodeError that says so', (_what, over, message) => {
    const err = (() => {
      try {
        decodeEdgeDevice(device(over), 'ef.desired.n.device.plant.pump-1');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toContain('ef.desired.n.device.plant.pump-1');
  });

  it('refuses garbage and oversized payloads', () => {
    expect(() => decodeEdgeDevice(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(DecodeError);
    expect(() => decodeEdgeDevice(new Uint8Array(1024 * 1024 + 1))).toThrow(/exceeds/);
  });
});

describe('decodeDeviceStatusReport', () => {
  const report = (over: MessageInitShape<typeof DeviceStatusReportSchema> = {}) =>
    toBinary(
      DeviceStatusReportSchema,
      create(DeviceStatusReportSchema, {
        uid: 'u-1',
        namespace: 'plant',
        name: 'pump-1',
        generation: 7n,
        observedGeneration: 3n,
        connected: true,
        twins: [{ name: 'speed', reported: '1200', reportedAtMs: 1n, observedDesired: '1200', observedDesiredGeneration: 3n }],
        ...over,
      }),
    );

  it('decodes a twin', () => expect(decodeDeviceStatusReport(report()).twins[0]?.reported).toBe('1200'));

  it.each<[string, Parameters<typeof report>[0], RegExp]>([
    ['no name', { name: '' }, /missing name/],
    ['generation 0', { generation: 0n }, /generation must be positive/],
    ['a negative observed generation', { observedGeneration: -1n }, /must not be negative/],
    ['a property twice', { twins: [{ name: 'a' }, { name: 'a' }] }, /named twice/],
    ['a reported value too long', { twins: [{ name: 'a', reported: 'x'.repeat(4097) }] }, /more than 4096/],
    ['a message too long', { message: 'm'.repeat(4097) }, /more than 4096/],
  ])('refuses %s', (_what, over, message) => {
    expect(() => decodeDeviceStatusReport(report(over))).toThrow(DecodeError);
    expect(() => decodeDeviceStatusReport(report(over))).toThrow(message);
  });
});
