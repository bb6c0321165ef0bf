/**
 * The Modbus TCP driver (protocol `modbus`; docs/devices.md), on `modbus-serial` (a maintained Modbus client for
 * Node; its serial-port support is an optional dependency this mapper does not use).
 *
 * Device configData: `{ address: "host:port", unitId?: 1..247 (1), timeoutMs?: 100..60000 (2000) }`.
 * Property visitor configData: `{ register: HoldingRegister | InputRegister | Coil | DiscreteInput, offset: 0..65535,
 * limit?: 1 | 2 (registers: 16 or 32 bits, default 1), scale?: number (value = raw × scale, default 1), signed?:
 * boolean, wordOrder?: "big" | "little" (of a 32-bit value, default big) }`.
 * Values are text as the property's type wants it: INT an integer, FLOAT/DOUBLE a number, BOOLEAN true/false.
 */
import { createRequire } from 'node:module';
import type { ModbusRTU as ModbusClient } from 'modbus-serial/ModbusRTU.js';
import { edge } from '@edgefarm/proto';
import type { Driver } from './runtime.js';

// A CommonJS package whose default export the type declarations name only as a module: load it as such.
const ModbusRTU = createRequire(import.meta.url)('modbus-serial') as new () => ModbusClient;

export const MODBUS_PROTOCOL = 'modbus';

type Register = 'HoldingRegister' | 'InputRegister' | 'Coil' | 'DiscreteInput';

interface Visitor {
  register: Register;
  offset: number;
  limit: 1 | 2;
  scale: number;
  signed: boolean;
  wordOrder: 'big' | 'little';
}

export class ModbusConfigError extends Error {
  override name = 'ModbusConfigError';
}

function object(json: string, what: string): Record<string, unknown> {
  const v = JSON.parse(json) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ModbusConfigError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

function int(v: unknown, what: string, min: number, max: number, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new ModbusConfigError(`${what} must be an integer from ${min} to ${max}`);
  return v;
}

/** The device's connection settings, or a ModbusConfigError saying what is wrong. */
export function modbusConnection(device: edge.EdgeDevice): { host: string; port: number; unitId: number; timeoutMs: number } {
  const c = object(device.protocolConfigJson, 'protocol configData');
  const address = c.address;
  const m = typeof address === 'string' ? /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(address) : null;
  if (!m) throw new ModbusConfigError('configData.address must be host:port');
  return {
    host: m[1]!.replace(/^\[|\]$/g, ''),
    port: int(Number(m[2]), 'the port of configData.address', 1, 65535),
    unitId: int(c.unitId, 'configData.unitId', 1, 247, 1),
    timeoutMs: int(c.timeoutMs, 'configData.timeoutMs', 100, 60_000, 2000),
  };
}

/** A property's place on the device, or a ModbusConfigError. */
export function modbusVisitor(p: edge.DeviceProperty): Visitor {
  const v = object(p.visitorConfigJson, `the visitor of ${p.name}`);
  const register = v.register;
  if (register !== 'HoldingRegister' && register !== 'InputRegister' && register !== 'Coil' && register !== 'DiscreteInput')
    throw new ModbusConfigError(`${p.name}: register must be HoldingRegister, InputRegister, Coil or DiscreteInput`);
  const limit = int(v.limit, `${p.name}: limit`, 1, 2, 1) as 1 | 2;
  const scale = v.scale === undefined ? 1 : v.scale;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale === 0)
    throw new ModbusConfigError(`${p.name}: scale must be a non-zero number`);
  const wordOrder = v.wordOrder === undefined ? 'big' : v.wordOrder;
  if (wordOrder !== 'big' && wordOrder !== 'little') throw new ModbusConfigError(`${p.name}: wordOrder must be big or little`);
  return { register, offset: int(v.offset, `${p.name}: offset`, 0, 65535), limit, scale, signed: v.signed === true, wordOrder };
}

/** Register words to a number (raw, before the scale). */
export function fromWords(words: number[], v: Pick<Visitor, 'limit' | 'signed' | 'wordOrder'>): number {
  if (v.limit === 1) {
    const w = words[0]! & 0xffff;
    return v.signed && w >= 0x8000 ? w - 0x10000 : w;
  }
  const [hi, lo] = v.wordOrder === 'big' ? [words[0]!, words[1]!] : [words[1]!, words[0]!];
  const u = ((hi & 0xffff) * 0x10000 + (lo & 0xffff)) >>> 0;
  return v.signed && u >= 0x80000000 ? u - 0x100000000 : u;
}

/** A number (raw, after dividing by the scale) to register words; a RangeError when it does not fit. */
export function toWords(raw: number, v: Pick<Visitor, 'limit' | 'signed' | 'wordOrder'>): number[] {
  const bits = v.limit * 16;
  const [min, max] = v.signed ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
  if (!Number.isInteger(raw) || raw < min || raw > max)
    throw new RangeError(`${raw} does not fit ${v.signed ? 'a signed' : 'an unsigned'} ${bits}-bit register value`);
  const u = raw < 0 ? raw + 2 ** bits : raw;
  if (v.limit === 1) return [u];
  const hi = Math.floor(u / 0x10000);
  const lo = u % 0x10000;
  return v.wordOrder === 'big' ? [hi, lo] : [lo, hi];
}

/** A read number as the property's type's text. */
function text(p: edge.DeviceProperty, value: number): string {
  if (p.type === edge.PropertyType.INT) return String(Math.round(value));
  if (p.type === edge.PropertyType.BOOLEAN) return value !== 0 ? 'true' : 'false';
  return String(Number(value.toPrecision(12)));
}

export class ModbusDriver implements Driver {
  private readonly client = new ModbusRTU();
  private readonly conn: ReturnType<typeof modbusConnection>;
  private readonly visitors = new Map<string, Visitor>();

  constructor(device: edge.EdgeDevice) {
    this.conn = modbusConnection(device);
    for (const p of device.properties) this.visitors.set(p.name, modbusVisitor(p));
  }

  async connect(): Promise<void> {
    await this.client.connectTCP(this.conn.host, { port: this.conn.port });
    this.client.setID(this.conn.unitId);
    this.client.setTimeout(this.conn.timeoutMs);
  }

  private visitor(p: edge.DeviceProperty): Visitor {
    const v = this.visitors.get(p.name);
    if (!v) throw new ModbusConfigError(`${p.name}: no visitor`);
    return v;
  }

  async read(p: edge.DeviceProperty): Promise<string> {
    const v = this.visitor(p);
    switch (v.register) {
      case 'Coil':
        return (await this.client.readCoils(v.offset, 1)).data[0] ? 'true' : 'false';
      case 'DiscreteInput':
        return (await this.client.readDiscreteInputs(v.offset, 1)).data[0] ? 'true' : 'false';
      case 'HoldingRegister':
        return text(p, fromWords((await this.client.readHoldingRegisters(v.offset, v.limit)).data, v) * v.scale);
      case 'InputRegister':
        return text(p, fromWords((await this.client.readInputRegisters(v.offset, v.limit)).data, v) * v.scale);
    }
  }

  async write(p: edge.DeviceProperty, value: string): Promise<void> {
    const v = this.visitor(p);
    if (v.register === 'Coil') {
      if (value !== 'true' && value !== 'false')
        throw new ModbusConfigError(`${p.name}: a coil takes true or false, not ${JSON.stringify(value)}`);
      await this.client.writeCoil(v.offset, value === 'true');
      return;
    }
    if (v.register !== 'HoldingRegister') throw new ModbusConfigError(`${p.name}: an ${v.register} cannot be written`);
    const n = p.type === edge.PropertyType.BOOLEAN ? (value === 'true' ? 1 : 0) : Number(value);
    if (!Number.isFinite(n)) throw new ModbusConfigError(`${p.name}: ${JSON.stringify(value)} is not a number`);
    const words = toWords(Math.round(n / v.scale), v);
    if (words.length === 1) await this.client.writeRegister(v.offset, words[0]!);
    else await this.client.writeRegisters(v.offset, words);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.client.close(() => resolve()));
  }
}

export const modbusDriver = (device: edge.EdgeDevice): ModbusDriver => new ModbusDriver(device);
