/** Test fixtures shared by unit, int and e2e tests: pod specs and loggers. */
import { Writable } from 'node:stream';
import { create, edge } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { pino, type Logger } from 'pino';

export const BUSYBOX = 'docker.io/edgefarm/busybox:1.35';

let uidCounter = 0;

/** The fields of a spec without its message type tag, to spread into {@link podSpec} with overrides. */
export function fieldsOf(spec: edge.EdgePodSpec): Omit<edge.EdgePodSpec, '$typeName' | '$unknown'> {
  const { $typeName: _t, $unknown: _u, ...fields } = spec;
  return fields;
}

/**
 * A valid EdgePodSpec with one busybox container sleeping forever; override anything. `init` may spread another
 * spec (`{ ...spec, deleting: true }`): its message type tag is dropped so plain nested objects are converted.
 */
export function podSpec(init: MessageInitShape<typeof edge.EdgePodSpecSchema> = {}): edge.EdgePodSpec {
  const { $typeName: _typeName, ...fields } = init as MessageInitShape<typeof edge.EdgePodSpecSchema> & { $typeName?: string };
  uidCounter++;
  return create(edge.EdgePodSpecSchema, {
    uid: `00000000-0000-4000-8000-${String(uidCounter).padStart(12, '0')}`,
    namespace: 'default',
    name: `pod-${uidCounter}`,
    resourceVersion: '100',
    restartPolicy: edge.RestartPolicy.ALWAYS,
    terminationGracePeriodSeconds: 1n,
    containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'] }],
    ...fields,
  });
}

/** An EdgeObject (ConfigMap, Secret or token data) with string or byte values. */
export function edgeObject(
  name: string,
  resourceVersion: string,
  data: Record<string, string | Uint8Array>,
  over: { namespace?: string; expiresAtMs?: bigint; podUid?: string } = {},
): edge.EdgeObject {
  const enc = new TextEncoder();
  return create(edge.EdgeObjectSchema, {
    namespace: 'default',
    name,
    resourceVersion,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, typeof v === 'string' ? enc.encode(v) : v])),
    ...over,
  });
}

/** A pino logger that writes nowhere. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** A pino logger that keeps every record (parsed JSON) for assertions. */
export function recordingLogger(level = 'trace'): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level }, sink), records };
}

/** Pino's numeric levels. */
export const LEVEL = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** A settable clock. */
export class ManualClock {
  constructor(public ms = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/**
 * A desired device (docs/devices.md): plant/pump-1 of protocol modbus at `generation`, with a writable INT speed
 * whose desired value is `speed`, and a read-only DOUBLE temperature.
 */
export function edgeDevice(
  generation: bigint,
  over: { name?: string; uid?: string; protocol?: string; speed?: string; protocolConfigJson?: string } = {},
): edge.EdgeDevice {
  return create(edge.EdgeDeviceSchema, {
    namespace: 'plant',
    name: over.name ?? 'pump-1',
    uid: over.uid ?? 'u-1',
    generation,
    model: 'pump',
    protocol: over.protocol ?? 'modbus',
    protocolConfigJson: over.protocolConfigJson ?? '{}',
    properties: [
      { name: 'speed', type: edge.PropertyType.INT, writable: true, desired: over.speed ?? '1200', visitorConfigJson: '{}' },
      { name: 'temperature', type: edge.PropertyType.DOUBLE, visitorConfigJson: '{}' },
    ],
  });
}
