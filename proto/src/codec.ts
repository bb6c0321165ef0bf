/**
 * Decoding and encoding of the edge contract. Every decoder rejects bad input with a {@link DecodeError} that says
 * what was wrong; nothing is half-applied.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  DeviceStatusReportSchema,
  EdgeDeviceSchema,
  MapperReportSchema,
  EdgeEventSchema,
  EdgeObjectSchema,
  EventType,
  EdgePodSpecSchema,
  NodeConfigSchema,
  NodeHeartbeatSchema,
  PodStatusReportSchema,
  PropertyType,
  type DeviceStatusReport,
  type MapperReport,
  type EdgeDevice,
  type EdgeEvent,
  type EdgeObject,
  type EdgePodSpec,
  type NodeConfig,
  type NodeHeartbeat,
  type PodStatusReport,
} from './gen/edgefarm/v1/edge_pb.js';
import { allContainers } from './keys.js';

/** Largest payload we accept from the wire (NATS' default max_payload is 1 MiB). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

export class DecodeError extends Error {
  override name = 'DecodeError';
  constructor(
    message: string,
    readonly subject?: string,
    options?: { cause?: unknown },
  ) {
    super(subject ? `${message} (subject ${subject})` : message, options);
  }
}
export function isDecodeError(err: unknown): err is DecodeError {
  return err instanceof DecodeError;
}

function decode<D extends DescMessage>(schema: D, data: Uint8Array, subject?: string): MessageShape<D> {
  if (data.length > MAX_PAYLOAD_BYTES) {
    throw new DecodeError(`${schema.typeName}: payload of ${data.length} bytes exceeds ${MAX_PAYLOAD_BYTES}`, subject);
  }
  try {
    return fromBinary(schema, data);
  } catch (cause) {
    throw new DecodeError(`${schema.typeName}: malformed protobuf: ${(cause as Error).message}`, subject, { cause });
  }
}

function requireFields(typeName: string, subject: string | undefined, fields: Record<string, string>): void {
  for (const [field, value] of Object.entries(fields)) {
    if (!value) throw new DecodeError(`${typeName}: missing ${field}`, subject);
  }
}

/**
 * Ephemeral containers (kubectl debug) one pod may carry: the provider leaves out those beyond it (a Warning Event),
 * the agent refuses a spec with more. The API sets no bound; each one stays until the pod is deleted.
 */
export const MAX_EPHEMERAL_CONTAINERS = 32;

export function decodeEdgePodSpec(data: Uint8Array, subject?: string): EdgePodSpec {
  const m = decode(EdgePodSpecSchema, data, subject);
  requireFields(EdgePodSpecSchema.typeName, subject, {
    uid: m.uid,
    namespace: m.namespace,
    name: m.name,
    resource_version: m.resourceVersion,
  });
  if (!/^\d+$/.test(m.resourceVersion)) {
    throw new DecodeError(`${EdgePodSpecSchema.typeName}: resource_version "${m.resourceVersion}" is not a decimal`, subject);
  }
  if (m.containers.length === 0) throw new DecodeError(`${EdgePodSpecSchema.typeName}: no containers`, subject);
  if (m.ephemeralContainers.length > MAX_EPHEMERAL_CONTAINERS) {
    throw new DecodeError(
      `${EdgePodSpecSchema.typeName}: ${m.ephemeralContainers.length} ephemeral containers, more than ${MAX_EPHEMERAL_CONTAINERS}`,
      subject,
    );
  }
  for (const c of allContainers(m)) {
    requireFields(EdgePodSpecSchema.typeName, subject, { 'container name': c.name, [`image of ${c.name}`]: c.image });
  }
  // A group id the kernel accepts (0 .. 2^32-2; 2^32-1 is "unchanged" to chown): the agent chowns volumes to it.
  if (m.fsGroup !== undefined && (m.fsGroup < 0n || m.fsGroup > 0xfffffffen)) {
    throw new DecodeError(`${EdgePodSpecSchema.typeName}: fs_group ${m.fsGroup} is not a group id`, subject);
  }
  const regular = new Set([...m.initContainers, ...m.containers].map((c) => c.name));
  for (const c of m.ephemeralContainers) {
    if (c.targetContainerName && !regular.has(c.targetContainerName)) {
      throw new DecodeError(
        `${EdgePodSpecSchema.typeName}: ephemeral container ${c.name} targets "${c.targetContainerName}", not a container of the pod`,
        subject,
      );
    }
  }
  return m;
}

export function decodeEdgeObject(data: Uint8Array, subject?: string): EdgeObject {
  const m = decode(EdgeObjectSchema, data, subject);
  requireFields(EdgeObjectSchema.typeName, subject, { namespace: m.namespace, name: m.name, resource_version: m.resourceVersion });
  if (!/^\d+$/.test(m.resourceVersion)) {
    throw new DecodeError(`${EdgeObjectSchema.typeName}: resource_version "${m.resourceVersion}" is not a decimal`, subject);
  }
  return m;
}

export function decodePodStatusReport(data: Uint8Array, subject?: string): PodStatusReport {
  const m = decode(PodStatusReportSchema, data, subject);
  requireFields(PodStatusReportSchema.typeName, subject, { uid: m.uid, namespace: m.namespace, name: m.name });
  if (m.generation <= 0n) throw new DecodeError(`${PodStatusReportSchema.typeName}: generation must be positive`, subject);
  return m;
}

/** Bounds of a device on the wire: as the Device CRD's schema sets them (manifests/crds/devices-crd.yaml). */
export const DEVICE_LIMITS = {
  properties: 256,
  /** A desired or reported value, a bound, a unit. */
  valueChars: 4096,
  /** A protocol's or a visitor's configData, as JSON. */
  configJsonChars: 64 * 1024,
  nameChars: 63,
} as const;

function deviceError(typeName: string, subject: string | undefined, what: string): DecodeError {
  return new DecodeError(`${typeName}: ${what}`, subject);
}

/** A JSON object (configData), or a DecodeError. */
function configObject(typeName: string, subject: string | undefined, field: string, json: string): void {
  if (json.length > DEVICE_LIMITS.configJsonChars)
    throw deviceError(typeName, subject, `${field}: ${json.length} characters, more than ${DEVICE_LIMITS.configJsonChars}`);
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    throw deviceError(typeName, subject, `${field} is not JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw deviceError(typeName, subject, `${field} is not a JSON object`);
}

/** Property names: unique, at most {@link DEVICE_LIMITS.properties}, each a CRD property name. */
function propertyNames(typeName: string, subject: string | undefined, names: string[]): void {
  if (names.length > DEVICE_LIMITS.properties)
    throw deviceError(typeName, subject, `${names.length} properties, more than ${DEVICE_LIMITS.properties}`);
  const seen = new Set<string>();
  for (const n of names) {
    if (n.length > DEVICE_LIMITS.nameChars || !/^[A-Za-z0-9]([-_A-Za-z0-9]*[A-Za-z0-9])?$/.test(n))
      throw deviceError(typeName, subject, `property name ${JSON.stringify(n.slice(0, 80))} is not a property name`);
    if (seen.has(n)) throw deviceError(typeName, subject, `property ${n} is named twice`);
    seen.add(n);
  }
}

function boundedValue(typeName: string, subject: string | undefined, field: string, value: string): void {
  if (value.length > DEVICE_LIMITS.valueChars)
    throw deviceError(typeName, subject, `${field}: ${value.length} characters, more than ${DEVICE_LIMITS.valueChars}`);
}

/** A desired device: named, of a positive generation, its configuration JSON objects, desired values only on writable properties. */
export function decodeEdgeDevice(data: Uint8Array, subject?: string): EdgeDevice {
  const t = EdgeDeviceSchema.typeName;
  const m = decode(EdgeDeviceSchema, data, subject);
  requireFields(t, subject, { uid: m.uid, namespace: m.namespace, name: m.name, model: m.model, protocol: m.protocol });
  if (m.generation <= 0n) throw deviceError(t, subject, 'generation must be positive');
  configObject(t, subject, 'protocol_config_json', m.protocolConfigJson);
  propertyNames(
    t,
    subject,
    m.properties.map((p) => p.name),
  );
  for (const p of m.properties) {
    if (p.type === PropertyType.UNSPECIFIED || PropertyType[p.type] === undefined)
      throw deviceError(t, subject, `property ${p.name} has no known type`);
    if (p.desired !== undefined && !p.writable) throw deviceError(t, subject, `property ${p.name} is read-only but has a desired value`);
    for (const [field, v] of [
      ['desired', p.desired ?? ''],
      ['minimum', p.minimum],
      ['maximum', p.maximum],
      ['unit', p.unit],
    ] as const)
      boundedValue(t, subject, `property ${p.name} ${field}`, v);
    configObject(t, subject, `property ${p.name} visitor_config_json`, p.visitorConfigJson);
    if (p.collectCycleMs < 0n || p.reportCycleMs < 0n) throw deviceError(t, subject, `property ${p.name}: a negative cycle`);
  }
  return m;
}

/** A twin's message and properties (a DeviceStatusReport's, a MapperReport's): bounded, properties unique. */
function boundedTwins(
  t: string,
  subject: string | undefined,
  m: { message: string; twins: { name: string; reported: string; observedDesired: string }[] },
): void {
  boundedValue(t, subject, 'message', m.message);
  propertyNames(
    t,
    subject,
    m.twins.map((p) => p.name),
  );
  for (const p of m.twins) {
    boundedValue(t, subject, `property ${p.name} reported`, p.reported);
    boundedValue(t, subject, `property ${p.name} observed_desired`, p.observedDesired);
  }
}

/** A device's twin from a site: named, of a positive generation, its properties bounded and unique. */
export function decodeDeviceStatusReport(data: Uint8Array, subject?: string): DeviceStatusReport {
  const t = DeviceStatusReportSchema.typeName;
  const m = decode(DeviceStatusReportSchema, data, subject);
  requireFields(t, subject, { uid: m.uid, namespace: m.namespace, name: m.name });
  if (m.generation <= 0n) throw deviceError(t, subject, 'generation must be positive');
  if (m.observedGeneration < 0n) throw deviceError(t, subject, 'observed_generation must not be negative');
  boundedTwins(t, subject, m);
  return m;
}

/** A mapper's report of one device: its properties bounded and unique, a generation that is not negative. */
export function decodeMapperReport(data: Uint8Array, subject?: string): MapperReport {
  const t = MapperReportSchema.typeName;
  const m = decode(MapperReportSchema, data, subject);
  if (m.generation < 0n) throw deviceError(t, subject, 'generation must not be negative');
  boundedTwins(t, subject, m);
  return m;
}

export function decodeNodeHeartbeat(data: Uint8Array, subject?: string): NodeHeartbeat {
  const m = decode(NodeHeartbeatSchema, data, subject);
  requireFields(NodeHeartbeatSchema.typeName, subject, { node_name: m.nodeName });
  return m;
}

/** Longest tombstone TTL a NodeConfig may carry: ten years (anything longer is a mistake, not a horizon). */
export const MAX_TOMBSTONE_TTL_SECONDS = 10 * 365 * 24 * 3600;

/** A node's NodeConfig; its tombstone TTL must be positive and at most {@link MAX_TOMBSTONE_TTL_SECONDS}. */
export function decodeNodeConfig(data: Uint8Array, subject?: string): NodeConfig {
  const m = decode(NodeConfigSchema, data, subject);
  if (m.tombstoneTtlSeconds <= 0n || m.tombstoneTtlSeconds > BigInt(MAX_TOMBSTONE_TTL_SECONDS)) {
    throw new DecodeError(
      `${NodeConfigSchema.typeName}: tombstone_ttl_seconds must be between 1 and ${MAX_TOMBSTONE_TTL_SECONDS}, not ${m.tombstoneTtlSeconds}`,
      subject,
    );
  }
  return m;
}

export function decodeEdgeEvent(data: Uint8Array, subject?: string): EdgeEvent {
  const t = EdgeEventSchema.typeName;
  const m = decode(EdgeEventSchema, data, subject);
  requireFields(t, subject, {
    id: m.id,
    key: m.key,
    pod_uid: m.podUid,
    pod_namespace: m.podNamespace,
    pod_name: m.podName,
    reason: m.reason,
    node_name: m.nodeName,
  });
  if (m.type !== EventType.NORMAL && m.type !== EventType.WARNING) throw new DecodeError(`${t}: type must be Normal or Warning`, subject);
  if (m.count < 1) throw new DecodeError(`${t}: count must be positive`, subject);
  if (m.firstTimestampMs <= 0n || m.lastTimestampMs < m.firstTimestampMs) {
    throw new DecodeError(`${t}: timestamps must be positive with first <= last`, subject);
  }
  return m;
}

/** A message too large for one NATS message ({@link MAX_PAYLOAD_BYTES}): it cannot be carried at all. */
export class PayloadTooLargeError extends Error {
  override name = 'PayloadTooLargeError';
  constructor(
    readonly typeName: string,
    readonly bytes: number,
  ) {
    super(`${typeName}: encoded size ${bytes} exceeds ${MAX_PAYLOAD_BYTES}`);
  }
}
export function isPayloadTooLarge(err: unknown): err is PayloadTooLargeError {
  return err instanceof PayloadTooLargeError;
}

/** Encodes a message for the wire; a {@link PayloadTooLargeError} when it is larger than one message may be. */
export function encode<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  const bytes = toBinary(schema, message);
  if (bytes.length > MAX_PAYLOAD_BYTES) throw new PayloadTooLargeError(schema.typeName, bytes.length);
  return bytes;
}

/** Resource versions are opaque strings in Kubernetes, but etcd-backed ones are decimal revisions: compare as such. */
export function compareResourceVersions(a: string, b: string): number {
  const x = BigInt(a || '0');
  const y = BigInt(b || '0');
  return x < y ? -1 : x > y ? 1 : 0;
}

export { create };
