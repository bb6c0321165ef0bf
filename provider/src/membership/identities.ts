/**
 * NodeIdentities: the read model of which wire id names which node on the hub (decision 0008). A node that joined is
 * named in every subject by its NATS user public key, `status.identity.publicKey` of its EdgeNode (written by the
 * registrar); a node that never joined by its name (proto nodeWireId). Every subject the provider builds for a node
 * goes through {@link WireIds.wireId}; every subject it parses goes back through {@link WireIds.nodeOf}, and a wire id
 * no EdgeNode has is not a node's.
 *
 * One writer: NodeMembership, which owns the EdgeNode watch and observes every EdgeNode it sees. Read by the hub bus
 * and the kubelet transport. Rules:
 * - A key claimed by two EdgeNodes names neither (each falls back to its name): a status write must not let one node
 *   read another's desired state. The conflict is logged each time it appears.
 * - A deleted EdgeNode keeps its entry, so what the provider still sends after the deletion (the tombstones that stop
 *   its pods) goes to the wire id the node had. An EdgeNode of the same name replaces it.
 * - A node's name names it only while it has no key: once joined, reports under its name are not its own.
 */
import { isUserPublicKey, nodeWireId } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { EdgeNode } from '../kube/client.js';

/** Node name to wire id and back: what the parts that build or parse subjects read. */
export interface WireIds {
  /** The token the node's subjects carry: its user public key once it joined, otherwise its name. */
  wireId(node: string): string;
  /** The node a wire id names; undefined when no EdgeNode has it (an old key, a key claimed twice, a stranger). */
  nodeOf(wireId: string): string | undefined;
}

/** Every node named by its name (no EdgeNode carries a key): unit tests and parts that run without EdgeNodes. */
export const NAME_WIRE_IDS: WireIds = { wireId: (node) => node, nodeOf: (wireId) => wireId };

export class NodeIdentities implements WireIds {
  /** The key each EdgeNode claims (undefined: none, or not a user public key). */
  private readonly keys = new Map<string, string | undefined>();
  /** The EdgeNodes claiming each key. */
  private readonly claims = new Map<string, Set<string>>();

  constructor(private readonly log: Logger) {}

  /** An EdgeNode as the watch sees it (added or changed). */
  observe(en: EdgeNode): void {
    const name = en.metadata?.name;
    if (!name) return;
    const claimed = en.status?.identity?.publicKey;
    const key = claimed !== undefined && nodeWireId({ name, publicKey: claimed }) === claimed ? claimed : undefined;
    if (claimed !== undefined && key === undefined)
      this.log.warn(
        { node: name },
        'EdgeNode status.identity.publicKey is not a NATS user public key; the node keeps its name on the wire',
      );
    const had = this.keys.get(name);
    if (this.keys.has(name) && had === key) return;
    if (had !== undefined) this.unclaim(had, name);
    this.keys.set(name, key);
    if (key === undefined) return;
    const names = this.claims.get(key) ?? new Set<string>();
    names.add(name);
    this.claims.set(key, names);
    if (names.size > 1)
      this.log.error({ key, nodes: [...names] }, 'one NATS key is claimed by several EdgeNodes: it names none of them until that is fixed');
  }

  wireId(node: string): string {
    const key = this.keys.get(node);
    return key !== undefined && this.claims.get(key)?.size === 1 ? key : node;
  }

  nodeOf(wireId: string): string | undefined {
    if (isUserPublicKey(wireId)) {
      const names = this.claims.get(wireId);
      return names?.size === 1 ? names.values().next().value : undefined;
    }
    return this.keys.has(wireId) && this.wireId(wireId) === wireId ? wireId : undefined;
  }

  private unclaim(key: string, name: string): void {
    const names = this.claims.get(key);
    names?.delete(name);
    if (names?.size === 0) this.claims.delete(key);
  }
}
