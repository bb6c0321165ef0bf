import { create, edge } from '@edgefarm/proto';
import { ModbusConfigError, fromWords, modbusConnection, modbusVisitor, toWords } from './modbus.js';

const device = (config: unknown) =>
  create(edge.EdgeDeviceSchema, {
    namespace: 'n',
    name: 'd',
    uid: 'u',
    generation: 1n,
    model: 'm',
    protocol: 'modbus',
    protocolConfigJson: JSON.stringify(config),
  });
const prop = (visitor: unknown) =>
  create(edge.DevicePropertySchema, { name: 'p', type: edge.PropertyType.INT, visitorConfigJson: JSON.stringify(visitor) });

describe('Modbus configuration', () => {
  it('reads an address, a unit and a timeout, with defaults', () => {
    expect(modbusConnection(device({ address: '10.0.0.5:502' }))).toEqual({ host: '10.0.0.5', port: 502, unitId: 1, timeoutMs: 2000 });
    expect(modbusConnection(device({ address: '[fd00::5]:1502', unitId: 17, timeoutMs: 500 }))).toMatchObject({
      host: 'fd00::5',
      port: 1502,
      unitId: 17,
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['no address', {}, /address must be host:port/],
    ['an address without a port', { address: 'plc.local' }, /host:port/],
    ['a URL', { address: 'tcp://plc:502' }, /host:port/],
    ['port 0', { address: 'plc:0' }, /port .* from 1 to 65535/],
    ['port 70000', { address: 'plc:70000' }, /from 1 to 65535/],
    ['unit 0', { address: 'plc:502', unitId: 0 }, /unitId must be an integer from 1 to 247/],
    ['a unit as text', { address: 'plc:502', unitId: '1' }, /unitId/],
    ['a timeout of 5 ms', { address: 'plc:502', timeoutMs: 5 }, /timeoutMs/],
    ['an array', [1], /not an object/],
  ])('refuses a device with %s', (_what, config, message) => {
    expect(() => modbusConnection(device(config))).toThrow(ModbusConfigError);
    expect(() => modbusConnection(device(config))).toThrow(message);
  });

  it.each<[string, unknown, RegExp]>([
    ['an unknown register', { register: 'Holding', offset: 1 }, /register must be/],
    ['no offset', { register: 'Coil' }, /offset must be an integer from 0 to 65535/],
    ['offset 65536', { register: 'Coil', offset: 65536 }, /offset/],
    ['limit 3', { register: 'HoldingRegister', offset: 0, limit: 3 }, /limit must be an integer from 1 to 2/],
    ['scale 0', { register: 'HoldingRegister', offset: 0, scale: 0 }, /non-zero number/],
    ['a word order of its own', { register: 'HoldingRegister', offset: 0, wordOrder: 'middle' }, /wordOrder/],
  ])('refuses a property with %s', (_what, visitor, message) => {
    expect(() => modbusVisitor(prop(visitor))).toThrow(message);
  });
});

describe('register words', () => {
  it.each<[number[], { limit: 1 | 2; signed: boolean; wordOrder: 'big' | 'little' }, number]>([
    [[1200], { limit: 1, signed: false, wordOrder: 'big' }, 1200],
    [[0xffff], { limit: 1, signed: true, wordOrder: 'big' }, -1],
    [[0xffff], { limit: 1, signed: false, wordOrder: 'big' }, 65535],
    [[0x0001, 0x0002], { limit: 2, signed: false, wordOrder: 'big' }, 0x10002],
    [[0x0002, 0x0001], { limit: 2, signed: false, wordOrder: 'little' }, 0x10002],
    [[0xffff, 0xff83], { limit: 2, signed: true, wordOrder: 'big' }, -125],
    [[0xffff, 0xffff], { limit: 2, signed: false, wordOrder: 'big' }, 0xffffffff],
  ])('%j (%j) is %d, and back', (words, v, n) => {
    expect(fromWords(words, v)).toBe(n);
    expect(toWords(n, v)).toEqual(words);
  });

  it('refuses a value that does not fit the register', () => {
    expect(() => toWords(65536, { limit: 1, signed: false, wordOrder: 'big' })).toThrow(RangeError);
    expect(() => toWords(-1, { limit: 1, signed: false, wordOrder: 'big' })).toThrow(/does not fit an unsigned 16-bit/);
    expect(() => toWords(40000, { limit: 1, signed: true, wordOrder: 'big' })).toThrow(/signed 16-bit/);
    expect(() => toWords(1.5, { limit: 2, signed: false, wordOrder: 'big' })).toThrow(RangeError);
  });
});
