/**
 * A hand-written membership for unit tests: serves the nodes a test names and tells its listeners as
 * {@link NodeMembership} does (same calls, same order), without EdgeNodes, shards or a hub.
 */
import type { DesiredRecord } from '../bus/hub.js';
import { DEFAULT_TAINT, policyOf, type NodePolicy } from '../nodecontroller/node.js';
import type { MembershipListener, ReleaseReason, Rekey, ServedNodes } from './membership.js';

/** The policy of an EdgeNode without a spec. */
export const defaultPolicy = (name: string): NodePolicy => policyOf({ metadata: { name, uid: `uid-en-${name}` } }, [DEFAULT_TAINT]).policy;

export class FakeMembership implements ServedNodes {
  private readonly policies = new Map<string, NodePolicy>();
  private readonly listeners: MembershipListener[] = [];

  subscribe(listener: MembershipListener): void {
    this.listeners.push(listener);
  }

  serves(node: string): boolean {
    return this.policies.has(node);
  }

  served(): string[] {
    return [...this.policies.keys()];
  }

  /**
   * Takes nodes on: `taking` with the hub's `desired` state, then `readStatus` (what the hub would deliver while
   * their last status is read back), then `taken`.
   */
  async take(
    nodes: readonly (string | { name: string; policy: NodePolicy })[],
    desired: readonly DesiredRecord[] = [],
    readStatus: () => void | Promise<void> = () => undefined,
  ): Promise<void> {
    const taken = nodes.map((n) => (typeof n === 'string' ? { name: n, policy: defaultPolicy(n) } : n));
    for (const n of taken) this.policies.set(n.name, n.policy);
    for (const l of this.listeners) l.taking?.({ nodes: taken, desired });
    try {
      await readStatus();
    } finally {
      for (const l of this.listeners) l.taken?.(taken.map((n) => n.name));
    }
  }

  changePolicy(node: string, policy: NodePolicy): void {
    this.policies.set(node, policy);
    for (const l of this.listeners) l.policyChanged?.(node, policy);
  }

  rekey(node: string, change: Rekey): void {
    for (const l of this.listeners) l.rekeyed?.(node, change);
  }

  async release(node: string, reason: ReleaseReason): Promise<void> {
    this.policies.delete(node);
    await Promise.all(this.listeners.map((l) => Promise.resolve(l.released?.(node, reason))));
  }
}
