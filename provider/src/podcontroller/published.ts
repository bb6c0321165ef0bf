/**
 * PublishedPods: what this process knows to be on the hub per pod key: the node, the pod UID and a fingerprint of
 * the spec last published, and the objects (ConfigMaps, Secrets, tokens) that spec uses. Seeded from the hub's
 * desired state when a node is taken over, so nothing still wanted is published again.
 *
 * One writer, the PodController (the pod publisher). The object managers' callers read it to decide when an object
 * on a node is no longer used by any pod there, and which pods to sync when an object changes.
 */
import type { ObjectKey } from '@edgefarm/proto';

export interface PublishedPod {
  node: string;
  uid: string;
  fingerprint: string;
  /** Objects the published spec refers to. */
  refs: ObjectKey[];
}

export class PublishedPods {
  private readonly pods = new Map<string, PublishedPod>();

  get(podKey: string): PublishedPod | undefined {
    return this.pods.get(podKey);
  }

  set(podKey: string, p: PublishedPod): void {
    this.pods.set(podKey, p);
  }

  delete(podKey: string): void {
    this.pods.delete(podKey);
  }

  /** Keys of every pod published (to any node). */
  keys(): string[] {
    return [...this.pods.keys()];
  }

  /** Keys of the pods published to the node. */
  onNode(node: string): string[] {
    const keys: string[] = [];
    for (const [key, p] of this.pods) if (p.node === node) keys.push(key);
    return keys;
  }

  /** Keys of the pods whose published spec uses the object (on any node). */
  using(ref: ObjectKey): string[] {
    const keys: string[] = [];
    for (const [key, p] of this.pods) if (p.refs.includes(ref)) keys.push(key);
    return keys;
  }

  /** Whether a pod published to the node uses the object. */
  usedOn(node: string, ref: ObjectKey): boolean {
    for (const p of this.pods.values()) if (p.node === node && p.refs.includes(ref)) return true;
    return false;
  }

  /** Forgets the pods of a node given up. */
  forgetNode(node: string): void {
    for (const [key, p] of this.pods) if (p.node === node) this.pods.delete(key);
  }
}
