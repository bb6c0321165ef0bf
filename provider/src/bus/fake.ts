/**
 * A hand-written {@link Hub} for unit tests: records every publish and read, keeps what the hub would hold for a
 * takeover to read back (`desired`, `lastStatus`), and hands status messages and Events to the handlers followed
 * (`heartbeat`, `report`, `event`).
 */
import { encode, edge, type ObjectKind, type PodKey } from '@edgefarm/proto';
import type { DesiredRecord, DropReason, EventHandlers, Hub, StatusHandlers } from './hub.js';

/** One stored status message: a node's heartbeat (with the hub's storage time) or a pod's report. */
export type StoredStatus = { node: string; heartbeat: edge.NodeHeartbeat; atMs: number } | { node: string; report: edge.PodStatusReport };

export class FakeBus implements Hub {
  readonly published: { node: string; spec: edge.EdgePodSpec }[] = [];
  readonly tombstones: { node: string; key: PodKey }[] = [];
  readonly forgotten: string[] = [];
  readonly objects: { node: string; kind: ObjectKind; object: edge.EdgeObject }[] = [];
  readonly objectTombstones: { node: string; kind: ObjectKind; key: PodKey }[] = [];
  /** NodeConfigs published, by node (last value). */
  readonly nodeConfigs = new Map<string, edge.NodeConfig>();
  /** Desired devices published, in order. */
  readonly devices: { node: string; device: edge.EdgeDevice }[] = [];
  readonly deviceTombstones: { node: string; key: PodKey }[] = [];
  /** Wire ids retired, in order. */
  readonly retired: string[] = [];
  /**
   * Every publish in order: `pod <node> <ns>/<name>`, `-pod ...`, `<kind> <node> <ns>/<name>@<version>`, `-<kind> ...`,
   * `node <node> ttl=<seconds>`, `-node <node>`, `device <node> <ns>/<name>@<generation>`, `-device ...`, `retire <wire id>`.
   */
  readonly log: string[] = [];
  /** Every read in order: `readDesired <nodes>`, `readStatus <nodes>`. */
  readonly reads: string[] = [];
  /** The hub's desired state, as readDesired finds it. */
  readonly desired: DesiredRecord[] = [];
  /** The hub's last status messages, as readStatus delivers them. */
  readonly lastStatus: StoredStatus[] = [];
  private statusHandlers?: StatusHandlers;
  private eventHandlers?: EventHandlers;
  private seq = 0;
  failNextPublish?: Error;

  async publishPod(node: string, spec: edge.EdgePodSpec) {
    if (this.failNextPublish) {
      const e = this.failNextPublish;
      this.failNextPublish = undefined;
      throw e;
    }
    this.published.push({ node, spec });
    this.log.push(`pod ${node} ${spec.namespace}/${spec.name}`);
    return ++this.seq;
  }
  async tombstonePod(node: string, key: PodKey) {
    this.tombstones.push({ node, key });
    this.log.push(`-pod ${node} ${key.namespace}/${key.name}`);
    return ++this.seq;
  }
  async publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject) {
    encode(edge.EdgeObjectSchema, object); // the size check the real bus makes
    this.objects.push({ node, kind, object });
    this.log.push(`${kind} ${node} ${object.namespace}/${object.name}@${object.resourceVersion}`);
    return ++this.seq;
  }
  async tombstoneObject(node: string, kind: ObjectKind, key: PodKey) {
    this.objectTombstones.push({ node, kind, key });
    this.log.push(`-${kind} ${node} ${key.namespace}/${key.name}`);
    return ++this.seq;
  }
  async publishNodeConfig(node: string, config: edge.NodeConfig) {
    this.nodeConfigs.set(node, config);
    this.log.push(`node ${node} ttl=${config.tombstoneTtlSeconds}`);
    return ++this.seq;
  }
  async tombstoneNodeConfig(node: string) {
    this.nodeConfigs.delete(node);
    this.log.push(`-node ${node}`);
    return ++this.seq;
  }
  async publishDevice(node: string, device: edge.EdgeDevice) {
    if (this.failNextPublish) {
      const e = this.failNextPublish;
      this.failNextPublish = undefined;
      throw e;
    }
    encode(edge.EdgeDeviceSchema, device);
    this.devices.push({ node, device });
    this.log.push(`device ${node} ${device.namespace}/${device.name}@${device.generation}`);
    return ++this.seq;
  }
  async tombstoneDevice(node: string, key: PodKey) {
    this.deviceTombstones.push({ node, key });
    this.log.push(`-device ${node} ${key.namespace}/${key.name}`);
    return ++this.seq;
  }
  async retireWireId(wireId: string) {
    if (this.failNextPublish) {
      const e = this.failNextPublish;
      this.failNextPublish = undefined;
      throw e;
    }
    this.retired.push(wireId);
    this.log.push(`retire ${wireId}`);
    return 0;
  }
  async forgetPodStatus(node: string, uid: string) {
    this.forgotten.push(`${node}/${uid}`);
  }
  async forgetDeviceStatus(node: string, uid: string) {
    this.forgotten.push(`device ${node}/${uid}`);
  }

  async ensureStreams() {}
  async followStatus(handlers: StatusHandlers) {
    this.statusHandlers = handlers;
  }
  async readStatus(nodes: readonly string[], handlers: StatusHandlers) {
    this.reads.push(`readStatus ${nodes.join(',')}`);
    for (const s of this.lastStatus) {
      if (!nodes.includes(s.node)) continue;
      if ('heartbeat' in s) handlers.heartbeat(s.node, s.heartbeat, s.atMs);
      else handlers.pod(s.node, s.report);
    }
  }
  async readDesired(nodes: readonly string[]) {
    this.reads.push(`readDesired ${nodes.join(',')}`);
    return this.desired.filter((r) => nodes.includes(r.node));
  }
  async followEvents(handlers: EventHandlers) {
    this.eventHandlers = handlers;
  }
  async stop() {
    this.statusHandlers = undefined;
    this.eventHandlers = undefined;
  }

  /** A heartbeat arriving on the status stream followed. */
  heartbeat(node: string, heartbeat: edge.NodeHeartbeat, atMs: number): void {
    this.statusHandlers?.heartbeat(node, heartbeat, atMs);
  }
  /** A status message the real bus drops (malformed, or under a wire id no EdgeNode has). */
  dropStatus(reason: DropReason): void {
    this.statusHandlers?.dropped?.(reason);
  }
  /** A pod status report arriving on the status stream followed. */
  report(node: string, report: edge.PodStatusReport): void {
    this.statusHandlers?.pod(node, report);
  }
  /** An Event arriving on the event stream followed; resolves once handled. */
  async event(node: string, event: edge.EdgeEvent): Promise<void> {
    await this.eventHandlers?.event(node, event);
  }
}
