/**
 * What a status or event message from the hub is, and for which node: the pure half of the bus's followers. The
 * subject names the node by its wire id; {@link WireIds.nodeOf} maps it back to the node's name, and a wire id no
 * EdgeNode has makes the message `unknown-node`. Everything from the wire is validated (codec.ts); nothing here
 * throws.
 */
import {
  decodeEdgeEvent,
  decodeNodeHeartbeat,
  decodeDeviceStatusReport,
  decodePodStatusReport,
  isDecodeError,
  isSubjectError,
  parseEventSubject,
  parseStatusSubject,
  type edge,
} from '@edgefarm/proto';
import type { WireIds } from '../membership/identities.js';

/** A message not handed on, and why (see DropReason in hub.ts). */
export interface Dropped {
  kind: 'dropped';
  reason: 'malformed' | 'unknown-node';
  /** What was wrong, for the log. */
  detail: string;
  /** The wire id of an `unknown-node` message. */
  wireId?: string;
}

export type StatusMessage =
  | { kind: 'pod'; node: string; report: edge.PodStatusReport }
  | { kind: 'heartbeat'; node: string; heartbeat: edge.NodeHeartbeat }
  | { kind: 'metrics'; node: string; text: string }
  | { kind: 'device'; node: string; report: edge.DeviceStatusReport }
  | Dropped;

export type EventMessage = { kind: 'event'; node: string; event: edge.EdgeEvent } | Dropped;

function unknown(wireId: string): Dropped {
  return { kind: 'dropped', reason: 'unknown-node', detail: `no EdgeNode has wire id ${wireId}`, wireId };
}

function malformed(err: unknown): Dropped {
  if (isDecodeError(err) || isSubjectError(err)) return { kind: 'dropped', reason: 'malformed', detail: err.message };
  throw err;
}

/** A message of the hub's EF_STATUS: a pod's report, a heartbeat or the agent's metrics text, of the named node. */
export function statusMessage(subject: string, data: Uint8Array, wireIds: WireIds): StatusMessage {
  try {
    const parsed = parseStatusSubject(subject);
    const node = wireIds.nodeOf(parsed.node);
    if (node === undefined) return unknown(parsed.node);
    if (parsed.key.kind === 'metrics') return { kind: 'metrics', node, text: new TextDecoder().decode(data) };
    if (parsed.key.kind === 'node') return { kind: 'heartbeat', node, heartbeat: decodeNodeHeartbeat(data, subject) };
    if (parsed.key.kind === 'device') {
      const twin = decodeDeviceStatusReport(data, subject);
      if (twin.uid !== parsed.key.uid)
        return { kind: 'dropped', reason: 'malformed', detail: `twin of device UID ${twin.uid} on the subject of UID ${parsed.key.uid}` };
      return { kind: 'device', node, report: twin };
    }
    const report = decodePodStatusReport(data, subject);
    if (report.uid !== parsed.key.uid)
      return { kind: 'dropped', reason: 'malformed', detail: `report of UID ${report.uid} on the subject of UID ${parsed.key.uid}` };
    return { kind: 'pod', node, report };
  } catch (err) {
    return malformed(err);
  }
}

/** A message of the hub's EF_EVENTS: an Event the agent of the named node recorded (and says it recorded). */
export function eventMessage(subject: string, data: Uint8Array, wireIds: WireIds): EventMessage {
  try {
    const parsed = parseEventSubject(subject);
    const node = wireIds.nodeOf(parsed.node);
    if (node === undefined) return unknown(parsed.node);
    const event = decodeEdgeEvent(data, subject);
    if (event.nodeName !== node)
      return { kind: 'dropped', reason: 'malformed', detail: `event of node ${event.nodeName} on a subject of node ${node}` };
    return { kind: 'event', node, event };
  } catch (err) {
    return malformed(err);
  }
}
