/**
 * A Device with its DeviceModel resolved into the EdgeDevice its node's site gets (docs/decisions/0012-devices.md),
 * and what the CRD schema cannot judge, as problems the device controller turns into Warning Events on the Device:
 *
 * - DeviceModelNotFound: no model of that name in the device's namespace; nothing is sent.
 * - UnknownProperty: the device names a property its model lacks; that property is left out.
 * - ReadOnlyProperty: a desired value on a ReadOnly property; the desired value is left out.
 * - InvalidDesiredValue: a desired value that is not of the property's type (INT: an integer; FLOAT and DOUBLE: a
 *   finite number; BOOLEAN: true or false) or is outside the model's minimum and maximum; the desired value is left out.
 *
 * Pure: no I/O, the same input gives the same EdgeDevice (configData as JSON with sorted keys), so its encoding is a
 * fingerprint of what is on the hub.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { Device, DeviceModel, ModelProperty, ModelPropertyType } from './types.js';

/** InvalidDevice: the EdgeDevice built is one a site would refuse (decodeEdgeDevice), so it is not sent. */
export type DeviceProblemReason = 'DeviceModelNotFound' | 'UnknownProperty' | 'ReadOnlyProperty' | 'InvalidDesiredValue' | 'InvalidDevice';

export interface DeviceProblem {
  reason: DeviceProblemReason;
  message: string;
}

export type DesiredDevice = { device?: edge.EdgeDevice; problems: DeviceProblem[] };

const TYPES: Record<ModelPropertyType, edge.PropertyType> = {
  INT: edge.PropertyType.INT,
  FLOAT: edge.PropertyType.FLOAT,
  DOUBLE: edge.PropertyType.DOUBLE,
  STRING: edge.PropertyType.STRING,
  BOOLEAN: edge.PropertyType.BOOLEAN,
  BYTES: edge.PropertyType.BYTES,
};

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;
const INTEGER = /^[-+]?\d+$/;
const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

/** JSON of a configData object with its keys sorted at every level ("{}" when there is none). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v ?? {}));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(
    Object.keys(v)
      .sort()
      .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
  );
}

/** Nanoseconds (the CRD's cycles) to whole milliseconds, rounded. */
function toMs(ns: number | undefined): bigint {
  return ns && ns > 0 ? BigInt(Math.round(ns / 1e6)) : 0n;
}

/** Why a desired value is not one of the property's, or undefined when it is. */
export function desiredValueProblem(p: ModelProperty, value: string): string | undefined {
  switch (p.type) {
    case 'BOOLEAN':
      return value === 'true' || value === 'false' ? undefined : `${JSON.stringify(value)} is not true or false`;
    case 'INT':
      if (!INTEGER.test(value)) return `${JSON.stringify(value)} is not an integer`;
      return boundsProblem(p, value, true);
    case 'FLOAT':
    case 'DOUBLE': {
      const n = Number(value);
      if (!DECIMAL.test(value.trim()) || !Number.isFinite(n)) return `${JSON.stringify(value)} is not a finite number`;
      if (p.type === 'FLOAT' && Math.abs(n) > FLOAT32_MAX) return `${JSON.stringify(value)} is out of the range of a FLOAT`;
      return boundsProblem(p, value, false);
    }
    default:
      return undefined;
  }
}

/** Compares a valid value with a bound: < 0, 0, > 0; undefined when the bound is not a number. */
function compare(value: string, bound: string, integer: boolean): number | undefined {
  const b = bound.trim();
  if (integer && INTEGER.test(b)) {
    const d = BigInt(value) - BigInt(b);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  }
  if (!DECIMAL.test(b) || !Number.isFinite(Number(b))) return undefined;
  return Number(value) - Number(b);
}

function boundsProblem(p: ModelProperty, value: string, integer: boolean): string | undefined {
  for (const [which, bound, bad] of [
    ['minimum', p.minimum, (c: number) => c < 0],
    ['maximum', p.maximum, (c: number) => c > 0],
  ] as const) {
    if (bound === undefined || bound === '') continue;
    const c = compare(value, bound, integer);
    if (c === undefined) return `the model's ${which} ${JSON.stringify(bound)} is not a number`;
    if (bad(c)) return `${value} is ${which === 'minimum' ? 'below the minimum' : 'above the maximum'} ${bound}`;
  }
  return undefined;
}

/**
 * The EdgeDevice of a Device (namespace, name, uid and generation set), with `model` the DeviceModel of
 * spec.deviceModelRef.name in the device's namespace (undefined: not found).
 */
export function desiredDevice(d: Device, model: DeviceModel | undefined): DesiredDevice {
  const meta = d.metadata!;
  const spec = d.spec!;
  const modelName = spec.deviceModelRef?.name ?? '';
  if (!model)
    return {
      problems: [
        {
          reason: 'DeviceModelNotFound',
          message: `DeviceModel ${JSON.stringify(modelName)} not found in namespace ${meta.namespace}: the device is not sent to node ${spec.nodeName}`,
        },
      ],
    };
  const problems: DeviceProblem[] = [];
  const declared = new Map((model.spec?.properties ?? []).map((p) => [p.name, p]));
  const given = new Map((spec.properties ?? []).map((p) => [p.name, p]));
  for (const name of given.keys())
    if (!declared.has(name))
      problems.push({
        reason: 'UnknownProperty',
        message: `property ${JSON.stringify(name)} is not one of DeviceModel ${modelName}'s: left out`,
      });

  const properties = [...declared.values()].map((mp) => {
    const dp = given.get(mp.name);
    const writable = mp.accessMode === 'ReadWrite';
    let desired: string | undefined;
    const value = dp?.desired?.value;
    if (value !== undefined) {
      if (!writable)
        problems.push({
          reason: 'ReadOnlyProperty',
          message: `property ${mp.name} is ReadOnly in DeviceModel ${modelName}: its desired value is ignored`,
        });
      else {
        const why = desiredValueProblem(mp, value);
        if (why)
          problems.push({
            reason: 'InvalidDesiredValue',
            message: `desired value of ${mp.type} property ${mp.name}: ${why}; it is not sent`,
          });
        else desired = value;
      }
    }
    return create(edge.DevicePropertySchema, {
      name: mp.name,
      type: TYPES[mp.type] ?? edge.PropertyType.UNSPECIFIED,
      writable,
      minimum: mp.minimum ?? '',
      maximum: mp.maximum ?? '',
      unit: mp.unit ?? '',
      desired,
      visitorConfigJson: canonicalJson(dp?.visitors?.configData),
      collectCycleMs: toMs(dp?.collectCycle),
      reportCycleMs: toMs(dp?.reportCycle),
      reportToCloud: dp?.reportToCloud ?? true,
    });
  });

  const device = create(edge.EdgeDeviceSchema, {
    namespace: meta.namespace ?? '',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    generation: BigInt(meta.generation ?? 0),
    model: modelName,
    protocol: spec.protocol?.protocolName ?? '',
    protocolConfigJson: canonicalJson(spec.protocol?.configData),
    properties,
  });
  return { device, problems };
}
