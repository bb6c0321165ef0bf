/**
 * NodeMembership: which edge nodes this replica serves, decided in one place. A node is served while its EdgeNode
 * exists (not being deleted) and this replica holds the node's shard (docs/decisions/0002-provider-sharding.md).
 * Every change (EdgeNode watch event, shard acquired or lost, a resync every `resyncMs`, a retry `retryMs` after a
 * failure) asks for one reconcile; reconciles run one at a time, and the requests made while one runs coalesce into
 * the next. The served set is read through {@link ServedNodes}; the parts that keep per-node state subscribe
 * ({@link MembershipListener}) and are told in the order they subscribed.
 *
 * A reconcile computes, then acts:
 *
 * 1. Nodes to give up, each with its reason. An EdgeNode still in the watch cache and not being deleted means the
 *    shard moved: `handed-over`. One being deleted (a deletionTimestamp: finalizers or a foreground delete keep it
 *    in the API a while) is `deleted`: once it is really gone nobody serves it any more to stop its pods. One missing
 *    from the cache is asked of the API (`getEdgeNode`): there and not being deleted, `handed-over`; gone or being
 *    deleted, `deleted`. A node is never called deleted from a cache that lacks it alone. The node leaves the
 *    served set and every listener's `released` is called in the same tick (no await in between, so no pod sync can
 *    see the node unserved with its pods still known and tombstone them); then their promises are awaited.
 *    - handed-over: forget the node without touching anything (its desired state, its Node and Lease stay for the
 *      new owner).
 *    - deleted: tombstone its pods (the site stops them) and delete its managed Node.
 * 2. Nodes to take on, in this order:
 *    a. read their desired state back from the hub (`readDesired`), before anything else;
 *    b. add them to the served set and call every listener's `taking` with that state (synchronously: the pod side
 *       learns what is published, so it republishes and deletes nothing still wanted; the node side starts accepting
 *       heartbeats but writes nothing yet);
 *    c. read their last heartbeats and pod reports back from the hub (`readStatus`, delivered to the status
 *       handlers, which apply them since the nodes are served);
 *    d. call `taken`, also when (c) failed: only now are Nodes registered and written, so a takeover writes what is
 *       known of the node and never "no heartbeat yet" (which would flip a Ready node to False for a moment).
 * 3. Served nodes whose EdgeNode changed its policy (labels, taints, reserved resources, autonomy): `policyChanged`.
 * 4. Served nodes whose wire id changed (the node joined, or joined again with a new key): `rekeyed`. The wire ids
 *    themselves are in {@link NodeIdentities}, which this class fills from the EdgeNode watch as events arrive (so a
 *    report under the new key is taken at once), and again from the cache at every reconcile.
 *
 * A reconnecting node's pods are synced again by the pod controller (it follows the node facts' connectivity), not
 * here: membership is only about which nodes are served.
 */
import type { Logger } from 'pino';
import type { V1Taint } from '@kubernetes/client-node';
import type { EdgeNode, KubeClient, Watcher } from '../kube/client.js';
import type { DesiredRecord } from '../bus/hub.js';
import { policyOf, type NodePolicy } from '../nodecontroller/node.js';
import type { NodeIdentities } from './identities.js';

/** Why a node is no longer served. */
export type ReleaseReason = 'handed-over' | 'deleted';

/** Nodes being taken on, and the hub's desired state for them as read before anything else. */
export interface Takeover {
  nodes: readonly { name: string; policy: NodePolicy }[];
  desired: readonly DesiredRecord[];
}

/** A served node's wire id changed: `from` is what its subjects carried until now, `to` what they carry from now on. */
export interface Rekey {
  from: string;
  to: string;
}

/** What a part that keeps per-node state is told. Every method is optional. */
export interface MembershipListener {
  /** The nodes are served from now on; nothing may be written to the API for them before {@link taken}. */
  taking?(takeover: Takeover): void;
  /** Their last heartbeats and pod reports were read back from the hub (or reading them failed): write. */
  taken?(nodes: readonly string[]): void;
  /** A served node's EdgeNode changed what it asks of the Node. */
  policyChanged?(node: string, policy: NodePolicy): void;
  /**
   * A served node's wire id changed (provider/README.md: a node's wire id). The hub's subjects for the node are built
   * with `to` already: whatever the part published under `from` must be published again.
   */
  rekeyed?(node: string, change: Rekey): void;
  /**
   * The node is no longer served. Called synchronously for every listener before any is awaited: whatever forgets
   * state must do so before returning.
   */
  released?(node: string, reason: ReleaseReason): void | Promise<void>;
}

/** The nodes this replica serves: the read side of {@link NodeMembership}. */
export interface ServedNodes {
  serves(node: string): boolean;
  served(): string[];
}

/** The hub reads a takeover needs (HubBus, with the provider's status handlers). */
export interface HubReads {
  readDesired(nodes: readonly string[]): Promise<DesiredRecord[]>;
  /** Delivers the last heartbeat and pod reports of the nodes to the status handlers. */
  readStatus(nodes: readonly string[]): Promise<void>;
}

/** Which shards this replica holds (ShardLeases). */
export interface ShardOwnership {
  shardOf(node: string): number;
  owns(shard: number): boolean;
}

export interface NodeMembershipOptions {
  /** `getEdgeNode` only: a deletion is confirmed with the API. */
  kube: Pick<KubeClient, 'getEdgeNode'>;
  /** The EdgeNode watch; started and stopped here. */
  edgeNodes: Watcher<EdgeNode>;
  /** The wire ids of the nodes, filled here from the watch (the one writer). */
  identities: NodeIdentities;
  shards: ShardOwnership;
  hub: HubReads;
  log: Logger;
  /** Taints every edge Node gets besides its EdgeNode's own. */
  defaultTaints: readonly V1Taint[];
  /** Reconcile this often even without events: a missed watch event costs at most this (default 30 s). */
  resyncMs?: number;
  /** After a failed reconcile, try again this much later (default 2 s). */
  retryMs?: number;
}

export class NodeMembership implements ServedNodes {
  /** The served nodes and the policy last announced for each. */
  private readonly policies = new Map<string, NodePolicy>();
  /** The wire id last announced for each served node. */
  private readonly wireIds = new Map<string, string>();
  private readonly listeners: MembershipListener[] = [];
  /** Serializes reconciles; `pending` coalesces the requests made while one waits to run. */
  private chain: Promise<void> = Promise.resolve();
  private pending = false;
  private stopped = false;
  private resyncTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** Per EdgeNode, the resourceVersion whose ignored spec parts were logged (each version logged once). */
  private readonly reportedProblems = new Map<string, string>();
  private readonly o: Required<NodeMembershipOptions>;

  constructor(options: NodeMembershipOptions) {
    this.o = { resyncMs: 30_000, retryMs: 2_000, ...options };
  }

  /** Listeners are told in the order they subscribed (see the module comment for why the order matters). */
  subscribe(listener: MembershipListener): void {
    this.listeners.push(listener);
  }

  serves(node: string): boolean {
    return this.policies.has(node);
  }

  served(): string[] {
    return [...this.policies.keys()];
  }

  /** Starts the EdgeNode watch and the periodic resync. Nodes are taken on once shards are held. */
  async start(): Promise<void> {
    await this.o.edgeNodes.start({
      changed: (en) => {
        this.o.identities.observe(en);
        void this.reconcile();
      },
      deleted: () => void this.reconcile(),
      error: (err) => this.o.log.warn({ err: (err as Error)?.message }, 'EdgeNode watch failed; restarting'),
    });
    this.resyncTimer = setInterval(() => void this.reconcile(), this.o.resyncMs);
  }

  /** Stops the watch and the timers and waits for a reconcile in flight. Served nodes are given up by losing shards. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    await this.o.edgeNodes.stop();
    await this.chain;
  }

  /** Brings the served nodes in line with the EdgeNodes and the shards held. Serialized and coalesced; never rejects. */
  reconcile(): Promise<void> {
    if (this.pending) return this.chain;
    this.pending = true;
    this.chain = this.chain.then(async () => {
      this.pending = false;
      try {
        await this.reconcileOnce();
      } catch (err) {
        this.o.log.warn({ err: (err as Error).message }, 'node membership reconcile failed; will retry');
        if (!this.stopped) {
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => void this.reconcile(), this.o.retryMs);
          this.retryTimer.unref();
        }
      }
    });
    return this.chain;
  }

  private async reconcileOnce(): Promise<void> {
    const want = new Map<string, EdgeNode>();
    for (const en of this.o.edgeNodes.list()) {
      this.o.identities.observe(en);
      const name = en.metadata?.name;
      if (name && !en.metadata?.deletionTimestamp && this.o.shards.owns(this.o.shards.shardOf(name))) want.set(name, en);
    }
    const leaving: [string, ReleaseReason][] = [];
    for (const name of this.policies.keys()) if (!want.has(name)) leaving.push([name, await this.releaseReason(name)]);
    for (const [name, reason] of leaving) await this.release(name, reason);

    const kept = new Set(this.policies.keys());
    const added = [...want.keys()].filter((n) => !kept.has(n));
    if (added.length) await this.take(added.map((name) => ({ name, policy: this.policy(want.get(name)!) })));

    for (const name of kept) {
      const policy = this.policy(want.get(name)!);
      if (JSON.stringify(policy) === JSON.stringify(this.policies.get(name))) continue;
      this.policies.set(name, policy);
      for (const l of this.listeners) l.policyChanged?.(name, policy);
    }

    for (const name of kept) {
      const from = this.wireIds.get(name)!;
      const to = this.o.identities.wireId(name);
      if (to === from) continue;
      this.wireIds.set(name, to);
      this.o.log.info({ node: name, from, to }, 'node has a new wire id: its desired state is published again under it');
      for (const l of this.listeners) l.rekeyed?.(name, { from, to });
    }
  }

  /**
   * deleted when the EdgeNode is being deleted (the cache or the API shows a deletionTimestamp) or the API confirms
   * it is gone; otherwise handed-over (a cache that lacks it alone never decides a deletion).
   */
  private async releaseReason(name: string): Promise<ReleaseReason> {
    const cached = this.o.edgeNodes.get('', name);
    if (cached) return cached.metadata?.deletionTimestamp ? 'deleted' : 'handed-over';
    const found = await this.o.kube.getEdgeNode(name);
    return found && !found.metadata?.deletionTimestamp ? 'handed-over' : 'deleted';
  }

  private async release(name: string, reason: ReleaseReason): Promise<void> {
    this.policies.delete(name);
    this.wireIds.delete(name);
    this.reportedProblems.delete(name);
    const pending = this.listeners.map((l) => Promise.resolve(l.released?.(name, reason)));
    await Promise.all(pending);
    if (reason === 'handed-over') this.o.log.info({ node: name }, 'node handed over to another replica');
    else this.o.log.warn({ node: name }, 'EdgeNode deleted or being deleted: its pods were tombstoned and its Node deleted');
  }

  private async take(nodes: Takeover['nodes']): Promise<void> {
    const names = nodes.map((n) => n.name);
    // The wire ids the read below uses: one that changes meanwhile is a rekey at the next reconcile.
    const ids = new Map(names.map((n) => [n, this.o.identities.wireId(n)]));
    const desired = await this.o.hub.readDesired(names);
    for (const n of nodes) {
      this.policies.set(n.name, n.policy);
      this.wireIds.set(n.name, ids.get(n.name)!);
    }
    for (const l of this.listeners) l.taking?.({ nodes, desired });
    try {
      await this.o.hub.readStatus(names);
    } finally {
      for (const l of this.listeners) l.taken?.(names);
    }
    this.o.log.info({ nodes: names, desired: desired.length }, 'serving nodes');
  }

  private policy(en: EdgeNode): NodePolicy {
    const { policy, problems } = policyOf(en, this.o.defaultTaints);
    const name = en.metadata?.name ?? '';
    const version = en.metadata?.resourceVersion ?? '';
    if (problems.length && this.reportedProblems.get(name) !== version) {
      this.reportedProblems.set(name, version);
      this.o.log.warn({ node: name, problems }, 'parts of the EdgeNode spec were ignored');
    }
    return policy;
  }
}
