/**
 * What of a heartbeat the provider believes: a site is not trusted to describe itself beyond what a Node needs. The
 * pure check of one decoded heartbeat against an allow list, before it reaches the node facts and the Node:
 *
 * - `node_name` must be the node whose subject it came on, or the whole heartbeat is refused (a site speaks only for
 *   itself).
 * - capacity and allocatable: only cpu, memory, pods, ephemeral-storage and hugepages-<size>, each a quantity within
 *   sane bounds ({@link RESOURCE_BOUNDS}). Extended resources (example.com/gpu) are refused unless the node's policy
 *   allows them by name (`extendedResources`; the EdgeNode has no field for it yet, so none is: an extended resource
 *   draws pods, and their Secrets, to the site that claims it).
 * - conditions: the standard types (Ready, MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable), each once,
 *   status True/False/Unknown, a CamelCase reason; the message is cut to {@link LIMITS}.messageLength.
 * - addresses: InternalIP and ExternalIP must be IPs, Hostname/InternalDNS/ExternalDNS DNS names; at most 16.
 * - node info and agent version: bounded, printable; images: the first 50, 8 names each (cut silently, as the kubelet
 *   cuts), names bounded.
 *
 * A refused field is dropped (a refused resource or condition keeps the value last accepted for the node, so a bad
 * beat loses nothing already accepted) and reported as a {@link Refusal}: a bounded reason for the metric and the
 * field's path (raw input, escaped and cut) for the Event and the log. Never throws.
 */
import { isIP } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { parseQuantity } from '../kube/quantity.js';

/** Why part of a heartbeat was refused (edgefarm_provider_heartbeat_rejected_total{reason}). */
export const HEARTBEAT_REJECT_REASONS = [
  /** The whole heartbeat: its node_name is not the node of its subject. */
  'node-name',
  /** A resource name not allowed (an extended resource, anything unknown). */
  'resource-name',
  /** A resource value that is no quantity, negative or past its bound. */
  'resource-value',
  /** A condition of an unknown type, a second one of a type, a bad status or reason. */
  'condition',
  /** An address of an unknown type or not an IP / DNS name. */
  'address',
  /** Addresses past the cap. */
  'too-many',
  /** A string too long or with control characters (node info, agent version, an image name, a message cut). */
  'string',
  /** A number out of range (pod count, applied sequence, image size). */
  'number',
] as const;
export type HeartbeatRejectReason = (typeof HEARTBEAT_REJECT_REASONS)[number];

export interface Refusal {
  reason: HeartbeatRejectReason;
  /** The field refused, e.g. `capacity["example.com/gpu"]` (input escaped and cut: for Events and logs, never labels). */
  field: string;
}

export const LIMITS = {
  addresses: 16,
  images: 50,
  imageNames: 8,
  imageNameLength: 512,
  /** Node info fields, agent version. */
  infoLength: 256,
  agentVersionLength: 64,
  reasonLength: 128,
  messageLength: 1024,
  hostnameLength: 253,
} as const;

/** The most of each standard resource a node may claim (base units: cores, bytes, pods). */
export const RESOURCE_BOUNDS: Record<string, number> = {
  cpu: 4096,
  memory: 2 ** 50, // 1 PiB
  pods: 10_000,
  'ephemeral-storage': 2 ** 60, // 1 EiB
};
const HUGEPAGES = /^hugepages-[0-9]+(Ki|Mi|Gi)$/;
const QUANTITY_LENGTH = 64;

export const CONDITION_TYPES = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'] as const;
const CONDITION_STATUSES = new Set(['True', 'False', 'Unknown']);
const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

export const ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname', 'InternalDNS', 'ExternalDNS'] as const;
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const AGENT_VERSION = /^[A-Za-z0-9][A-Za-z0-9.+_~-]*$/;

export interface AdmissionOptions {
  /** The last heartbeat accepted for the node: what a refused resource or condition falls back to. */
  previous?: edge.NodeHeartbeat;
  /** Extended resources the node's policy allows by name (none by default). */
  extendedResources?: readonly string[];
}

export interface Admitted {
  /** The heartbeat within the allow list; undefined when refused whole. */
  heartbeat?: edge.NodeHeartbeat;
  refusals: Refusal[];
}

/** A piece of input for an Event or a log: JSON-escaped, cut to 64 characters. */
export function shown(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function printable(s: string, max: number): boolean {
  if (s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return false;
  }
  return true;
}

function isDnsName(s: string): boolean {
  return s.length <= LIMITS.hostnameLength && s.split('.').every((l) => DNS_LABEL.test(l));
}

function validAddress(type: string, address: string): boolean {
  if (!(ADDRESS_TYPES as readonly string[]).includes(type)) return false;
  if (type === 'InternalIP' || type === 'ExternalIP') return address.length <= 45 && !address.includes('%') && isIP(address) !== 0;
  return isDnsName(address);
}

function resources(
  field: 'capacity' | 'allocatable',
  claimed: Record<string, string>,
  previous: Record<string, string> | undefined,
  extended: ReadonlySet<string>,
  refuse: (reason: HeartbeatRejectReason, field: string) => void,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(claimed)) {
    const path = `${field}[${shown(name)}]`;
    const bound = RESOURCE_BOUNDS[name] ?? (HUGEPAGES.test(name) ? RESOURCE_BOUNDS.memory : extended.has(name) ? 1e6 : undefined);
    if (bound === undefined) {
      refuse('resource-name', path);
      continue;
    }
    let ok = false;
    if (value.length <= QUANTITY_LENGTH) {
      try {
        const v = parseQuantity(value);
        ok = v >= 0 && v <= bound && (name !== 'pods' || Number.isInteger(v));
      } catch {
        ok = false;
      }
    }
    if (ok) out[name] = value;
    else {
      refuse('resource-value', path);
      const last = previous?.[name];
      if (last !== undefined) out[name] = last;
    }
  }
  return out;
}

/** Checks `hb`, which arrived on the subject of `node`, against the allow list (see the module comment). */
export function admitHeartbeat(node: string, hb: edge.NodeHeartbeat, options: AdmissionOptions = {}): Admitted {
  const refusals: Refusal[] = [];
  const refuse = (reason: HeartbeatRejectReason, field: string) => refusals.push({ reason, field });
  if (hb.nodeName !== node) {
    refuse('node-name', `node_name ${shown(hb.nodeName)}`);
    return { refusals };
  }
  const { previous } = options;
  const extended = new Set(options.extendedResources ?? []);

  const conditions: edge.NodeCondition[] = [];
  const seen = new Set<string>();
  for (const c of hb.conditions) {
    const path = `conditions[${shown(c.type)}]`;
    const known = (CONDITION_TYPES as readonly string[]).includes(c.type);
    if (!known || seen.has(c.type)) {
      refuse('condition', path);
      continue;
    }
    seen.add(c.type);
    if (!CONDITION_STATUSES.has(c.status) || (c.reason !== '' && (c.reason.length > LIMITS.reasonLength || !REASON.test(c.reason)))) {
      refuse('condition', path);
      const last = previous?.conditions.find((p) => p.type === c.type);
      if (last) conditions.push(last);
      continue;
    }
    let message = c.message;
    if (message.length > LIMITS.messageLength) {
      refuse('string', `${path}.message`);
      message = `${message.slice(0, LIMITS.messageLength - 1)}…`;
    }
    conditions.push(create(edge.NodeConditionSchema, { type: c.type, status: c.status, reason: c.reason, message }));
  }

  const addresses: edge.NodeAddress[] = [];
  const pairs = new Set<string>();
  let tooManyAddresses = false;
  for (const a of hb.addresses) {
    if (!validAddress(a.type, a.address)) {
      refuse('address', `addresses[${shown(a.type)}]`);
      continue;
    }
    const pair = `${a.type} ${a.address}`;
    if (pairs.has(pair)) continue;
    if (addresses.length >= LIMITS.addresses) {
      tooManyAddresses = true;
      continue;
    }
    pairs.add(pair);
    addresses.push(create(edge.NodeAddressSchema, { type: a.type, address: a.address }));
  }
  if (tooManyAddresses) refuse('too-many', `addresses (over ${LIMITS.addresses})`);

  const info = hb.systemInfo;
  const systemInfo = info && create(edge.NodeSystemInfoSchema);
  if (info && systemInfo) {
    for (const key of [
      'machineId',
      'bootId',
      'kernelVersion',
      'osImage',
      'containerRuntimeVersion',
      'operatingSystem',
      'architecture',
    ] as const) {
      if (printable(info[key], LIMITS.infoLength)) systemInfo[key] = info[key];
      else refuse('string', `systemInfo.${key}`);
    }
  }
  let agentVersion = hb.agentVersion;
  if (agentVersion !== '' && (agentVersion.length > LIMITS.agentVersionLength || !AGENT_VERSION.test(agentVersion))) {
    refuse('string', 'agentVersion');
    agentVersion = '';
  }

  // Past 50 images, or 8 names an image, the rest is left out without a word, as the kubelet reports at most 50
  // (nodeStatusMaxImages): a site with many images is no hostile one.
  const images: edge.NodeImage[] = [];
  for (const image of hb.images) {
    if (images.length >= LIMITS.images) break;
    const names: string[] = [];
    for (const name of image.names) {
      if (names.length >= LIMITS.imageNames) break;
      if (name !== '' && printable(name, LIMITS.imageNameLength) && !name.includes(' ')) names.push(name);
      else refuse('string', 'images[].names[]');
    }
    if (names.length === 0) continue;
    let sizeBytes = image.sizeBytes;
    if (sizeBytes < 0n || sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
      refuse('number', 'images[].sizeBytes');
      sizeBytes = 0n;
    }
    images.push(create(edge.NodeImageSchema, { names, sizeBytes }));
  }

  let podCount = hb.podCount;
  if (podCount < 0 || podCount > RESOURCE_BOUNDS.pods!) {
    refuse('number', 'podCount');
    podCount = previous?.podCount ?? 0;
  }
  let appliedSequence = hb.appliedSequence;
  if (appliedSequence > BigInt(Number.MAX_SAFE_INTEGER)) {
    refuse('number', 'appliedSequence');
    appliedSequence = previous?.appliedSequence ?? 0n;
  }

  const heartbeat = create(edge.NodeHeartbeatSchema, {
    nodeName: hb.nodeName,
    sentAtMs: hb.sentAtMs,
    agentVersion,
    capacity: resources('capacity', hb.capacity, previous?.capacity, extended, refuse),
    allocatable: resources('allocatable', hb.allocatable, previous?.allocatable, extended, refuse),
    conditions,
    images,
    systemInfo,
    addresses,
    appliedSequence,
    podCount,
  });
  return { heartbeat, refusals };
}
