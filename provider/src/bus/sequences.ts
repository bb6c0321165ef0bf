/**
 * DesiredSequences: per served node, the hub stream sequence of the last desired-state message published for it
 * (the EdgeNode status's `desiredSequence` and the `desired_sequence` metric; the agent reports the sequence it has
 * applied, so the two give its lag).
 *
 * It is the publisher the pod side publishes through: every acknowledged publish for a served node raises that
 * node's sequence. Taking a node over seeds it from the hub's desired state as read back (the highest sequence
 * there); giving a node up forgets it. It writes its state itself; everything else reads {@link sequence}.
 */
import type { edge, ObjectKind, PodKey } from '@edgefarm/proto';
import type { DesiredRecord } from './hub.js';
import type { PodBus } from './instrumented.js';

export class DesiredSequences implements PodBus {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly inner: PodBus,
    /** The nodes served now (membership): publishes for others (a deleted node's tombstones) are not kept. */
    private readonly served: { serves(node: string): boolean },
  ) {}

  /** Hub sequence of the last desired-state message known published for the node. */
  sequence(node: string): number | undefined {
    return this.last.get(node);
  }

  /** Membership: the nodes' desired state as read from the hub at takeover. */
  taking(takeover: { desired: readonly DesiredRecord[] }): void {
    for (const r of takeover.desired) this.note(r.node, r.seq);
  }

  /** Membership: the node is no longer served. */
  released(node: string): void {
    this.last.delete(node);
  }

  async publishPod(node: string, spec: edge.EdgePodSpec): Promise<number> {
    return this.note(node, await this.inner.publishPod(node, spec));
  }

  async tombstonePod(node: string, key: PodKey): Promise<number> {
    return this.note(node, await this.inner.tombstonePod(node, key));
  }

  async publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject): Promise<number> {
    return this.note(node, await this.inner.publishObject(node, kind, object));
  }

  async tombstoneObject(node: string, kind: ObjectKind, key: PodKey): Promise<number> {
    return this.note(node, await this.inner.tombstoneObject(node, kind, key));
  }

  async publishNodeConfig(node: string, config: edge.NodeConfig): Promise<number> {
    return this.note(node, await this.inner.publishNodeConfig(node, config));
  }

  async tombstoneNodeConfig(node: string): Promise<number> {
    return this.note(node, await this.inner.tombstoneNodeConfig(node));
  }

  async publishDevice(node: string, device: edge.EdgeDevice): Promise<number> {
    return this.note(node, await this.inner.publishDevice(node, device));
  }

  async tombstoneDevice(node: string, key: PodKey): Promise<number> {
    return this.note(node, await this.inner.tombstoneDevice(node, key));
  }

  forgetPodStatus(node: string, uid: string): Promise<void> {
    return this.inner.forgetPodStatus(node, uid);
  }

  forgetDeviceStatus(node: string, uid: string): Promise<void> {
    return this.inner.forgetDeviceStatus(node, uid);
  }

  private note(node: string, seq: number): number {
    if (this.served.serves(node)) this.last.set(node, Math.max(seq, this.last.get(node) ?? 0));
    return seq;
  }
}
