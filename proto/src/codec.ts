/**
 * Decoding and encoding of the edge contract. Every decoder rejects bad input with a {@link DecodeError} that says
 * what was wrong; nothing is half-applied.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import {
  EdgeEventSchema,
  EdgeObjectSchema,
  EventType,
  EdgePodSpecSchema,
  NodeConfigSchema,
  NodeHeartbeatSchema,
  PodStatusReportSchema,
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
