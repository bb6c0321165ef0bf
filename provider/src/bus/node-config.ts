/**
 * NodeConfigs: keeps every served node's NodeConfig on the hub (ef.desired.<wire id>.node.config): the tombstone TTL
 * the bus uses, which the agent's compaction check needs and may not read from the hub's stream metadata (a node has
 * no STREAM.INFO: it would list every node's subjects). The site stream sources it like the rest of the node's
 * desired state, so the site has it offline too.
 *
 * Level-triggered, one owner of what it knows to be on the hub per node: a keyed queue of node names, whose sync
 * publishes the config of a served node unless the hub already has this one, and tombstones the config of a node
 * whose EdgeNode was deleted. Taking a node over seeds what the hub has (from the desired state read back); a new
 * wire id publishes it again under the new one; a node handed over is forgotten.
 */
import { create } from '@bufbuild/protobuf';
import type { Logger } from 'pino';
import { edge } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { MembershipListener, ReleaseReason, ServedNodes, Takeover } from '../membership/membership.js';
import type { DesiredPublisher } from './hub.js';

export interface NodeConfigsDeps {
  bus: Pick<DesiredPublisher, 'publishNodeConfig' | 'tombstoneNodeConfig'>;
  served: ServedNodes;
  log: Logger;
  /** What every node is told: the bus's tombstone TTL. */
  tombstoneTtlSeconds: number;
}

export class NodeConfigs implements MembershipListener {
  /** Per served node, the TTL its config on the hub carries. */
  private readonly onHub = new Map<string, bigint>();
  /** Per node, how often its wire id changed (a publish begun before a change does not count as on the hub). */
  private readonly rekeys = new Map<string, number>();
  /** Nodes whose EdgeNode was deleted, whose config is still to be tombstoned. */
  private readonly deleted = new Set<string>();
  private readonly queue: WorkQueue;
  private readonly ttl: bigint;

  constructor(private readonly deps: NodeConfigsDeps) {
    this.ttl = BigInt(deps.tombstoneTtlSeconds);
    this.queue = new WorkQueue((node) => this.sync(node), {
      onError: (node, err, attempt) =>
        deps.log.warn({ node, attempt, err: (err as Error).message }, 'publishing the node config failed; will retry'),
    });
  }

  taking({ nodes, desired }: Takeover): void {
    for (const r of desired) if (r.kind === 'node' && r.config) this.onHub.set(r.node, r.config.tombstoneTtlSeconds);
    for (const n of nodes) {
      this.deleted.delete(n.name);
      this.queue.add(n.name);
    }
  }

  rekeyed(node: string): void {
    this.rekeys.set(node, (this.rekeys.get(node) ?? 0) + 1);
    this.onHub.delete(node);
    this.queue.add(node);
  }

  released(node: string, reason: ReleaseReason): void {
    if (reason === 'deleted') {
      this.deleted.add(node);
      this.queue.add(node);
    } else {
      this.onHub.delete(node);
      this.rekeys.delete(node);
    }
  }

  /** Resolves once nothing is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
  }

  private async sync(node: string): Promise<void> {
    if (this.deps.served.serves(node)) {
      if (this.onHub.get(node) === this.ttl) return;
      const rekeys = this.rekeys.get(node);
      await this.deps.bus.publishNodeConfig(node, create(edge.NodeConfigSchema, { tombstoneTtlSeconds: this.ttl }));
      if (this.rekeys.get(node) === rekeys) this.onHub.set(node, this.ttl);
      return;
    }
    if (!this.deleted.has(node)) return;
    await this.deps.bus.tombstoneNodeConfig(node);
    this.deleted.delete(node);
    this.onHub.delete(node);
    this.rekeys.delete(node);
  }
}
