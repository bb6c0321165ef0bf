/**
 * NodeController: one Node per edge node this replica serves (nodes come and go with EdgeNodes and shard leases),
 * registered with the EdgeNode's labels and taints, its Lease in kube-node-lease renewed every 10 s (as a kubelet
 * does, so the node lifecycle controller sees a live node), and node status written from heartbeats: on any change,
 * and at least every `statusRefreshMs` (5 min, the kubelet's nodeStatusReportFrequency: the Lease tells liveness).
 *
 * The API writes of a node go through two keyed work queues (Node and status, 16 workers; Lease, 32), so a node is
 * never written by two requests at once, a burst of heartbeats costs one write, and a failed write is retried with
 * backoff. A scan every `tickMs` queues only the nodes that need something: connectivity flipped, a Lease or refresh
 * is due, a Node to register. A steady node costs one Lease write per 10 s and nothing else (docs/decisions/0007).
 *
 * A Node deleted by someone else is handled as Kubernetes handles a deleted kubelet's Node: the pod garbage
 * collector deletes its pods; the provider registers the Node again (its EdgeNode still exists) once no pod is bound
 * to it any more, or after `reregisterAfterMs` at the latest.
 */
import type { Logger } from 'pino';
import * as k8s from '@kubernetes/client-node';
import type { edge } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { KubeClient, Lease } from '../kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import {
  newNode,
  nodeStatus,
  nodeStatusChanged,
  nodeMetadataPatch,
  isConnected,
  silenced,
  edgeNodeStatus,
  type NodeView,
  type NodePolicy,
} from './node.js';
import { subtractReserved } from '../kube/quantity.js';

export interface NodeControllerOptions {
  kube: KubeClient;
  log: Logger;
  /** The kubelet port a node advertises: one for all, or per node (docs/decisions/0006-kubelet-api.md). */
  kubeletPort: number | ((node: string) => number);
  /** The address the apiserver uses to reach the provider's kubelet API (see NodeView.kubeletAddress). */
  kubeletAddress: string;
  leaseDurationSeconds?: number;
  leaseRenewMs?: number;
  /** How often the nodes are scanned for work (freshness, due Leases and refreshes). */
  tickMs?: number;
  /**
   * A heartbeat older than this (by the hub's storage time) makes the node disconnected. 12 s: the agent beats every 5 s,
   * so two lost beats plus slack; with tickMs 2 s a dead link shows as EdgeConnected=False within ~14 s.
   */
  heartbeatStaleMs?: number;
  /** Longest time between two writes of an unchanged node status (default 5 min, as the kubelet). */
  statusRefreshMs?: number;
  /** Node and status writes in flight at once (default 16). */
  workers?: number;
  /**
   * Lease renewals in flight at once (default 32). They must keep up with nodes / leaseRenewMs: at 1,000 nodes 100 per
   * second, and with the apiserver at ~0.2 s per write under a pod burst 8 workers fell behind (missed renewals).
   */
  leaseWorkers?: number;
  /** Hub sequence of the last desired-state message published for a node (EdgeNode status). */
  desiredSequence?: (node: string) => number | undefined;
  /** Called when a node's heartbeats turn fresh or stale. */
  onConnectivity?: (node: string, connected: boolean) => void;
  /** Pods the API still binds to a node (to re-register a deleted Node only once they are gone). */
  podsOnNode?: (node: string) => number;
  /** How often to look again for an EdgeNode that did not exist. */
  edgeNodeRetryMs?: number;
  /** Longest wait before a deleted Node is registered again although pods are still bound to it. */
  reregisterAfterMs?: number;
  now?: () => Date;
}

interface NodeState {
  view: NodeView;
  policy: NodePolicy;
  lease?: Lease;
  lastStatus?: k8s.V1NodeStatus;
  lastStatusWriteMs: number;
  /** Write the status even if unchanged (just registered). */
  forceStatus?: boolean;
  /** The policy changed: labels and taints to apply to the Node. */
  policyChanged?: boolean;
  /** When this process last renewed (or created) the Lease (ms). */
  leaseRenewedAtMs?: number;
  registered: boolean;
  /** Taken on, its last heartbeat still being read back: not registered or written yet. */
  adding?: boolean;
  /** When this process found the Node deleted (ms). */
  deletedAtMs?: number;
  lastEdgeStatus?: string;
  lastEdgeStatusWriteMs: number;
  /** The desired-state sequence in the last EdgeNode status written. */
  lastDesiredSequence?: number;
  /** Connectivity as last evaluated, to report changes. */
  connected?: boolean;
  /** Autonomy evict past its deadline, as last evaluated. */
  silenced?: boolean;
  /** When the last EdgeNode status patch found no EdgeNode (ms), so it is retried only every edgeNodeRetryMs. */
  edgeNodeMissingAtMs?: number;
}

export class NodeController {
  private readonly state = new Map<string, NodeState>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly nodeQueue: WorkQueue;
  private readonly leaseQueue: WorkQueue;
  private readonly now: () => Date;
  private readonly o: Required<Omit<NodeControllerOptions, 'now' | 'desiredSequence' | 'onConnectivity'>> &
    Pick<NodeControllerOptions, 'desiredSequence' | 'onConnectivity'>;

  constructor(options: NodeControllerOptions) {
    this.now = options.now ?? (() => new Date());
    this.o = {
      leaseDurationSeconds: 40,
      leaseRenewMs: 10_000,
      tickMs: 2_000,
      heartbeatStaleMs: 12_000,
      statusRefreshMs: 300_000,
      workers: 16,
      leaseWorkers: 32,
      edgeNodeRetryMs: 30_000,
      reregisterAfterMs: 300_000,
      podsOnNode: () => 0,
      ...options,
    };
    const onError = (node: string, err: unknown, attempt: number) =>
      this.o.log.warn({ node, attempt, err: (err as Error).message }, 'node write failed; will retry');
    this.nodeQueue = new WorkQueue((node) => this.syncNode(node), { workers: this.o.workers, onError });
    this.leaseQueue = new WorkQueue((node) => this.renewLease(node), { workers: this.o.leaseWorkers });
  }

  start(): void {
    this.timer ??= setInterval(() => this.scan(), this.o.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([this.nodeQueue.stop(), this.leaseQueue.stop()]);
  }

  /** Resolves once no node write or Lease renewal is queued or in flight (tests). */
  async drained(): Promise<void> {
    while (!this.stopped && this.nodeQueue.length + this.leaseQueue.length > 0)
      await Promise.all([this.nodeQueue.drained(), this.leaseQueue.drained()]);
  }

  private kubeletPortOf(node: string): number {
    const p = this.o.kubeletPort;
    return typeof p === 'number' ? p : p(node);
  }

  served(): string[] {
    return [...this.state.keys()];
  }

  serves(name: string): boolean {
    return this.state.has(name);
  }

  /**
   * Starts serving a node: queues its Node's registration (or adoption), then its Lease. `readLast` runs first, with
   * the node already accepting heartbeats: the caller reads the node's last heartbeat back from the hub there, so a
   * node taken over from another replica is written with what is known of it (never as "no heartbeat yet", which
   * would flip a Ready node to False for the moment of the takeover).
   */
  async add(names: readonly { name: string; policy: NodePolicy }[], readLast: () => Promise<void>): Promise<void> {
    const added: [string, NodeState][] = [];
    for (const { name, policy } of names) {
      if (this.state.has(name)) {
        await this.update(name, policy);
        continue;
      }
      const s: NodeState = {
        view: { name, everReady: false, kubeletPort: this.kubeletPortOf(name), kubeletAddress: this.o.kubeletAddress },
        policy,
        lastStatusWriteMs: 0,
        lastEdgeStatusWriteMs: 0,
        registered: false,
        adding: true,
      };
      this.state.set(name, s);
      added.push([name, s]);
    }
    try {
      await readLast();
    } finally {
      for (const [name, s] of added) {
        s.adding = false;
        this.nodeQueue.add(name);
      }
    }
  }

  /** The node's EdgeNode changed: apply labels, taints, reserved resources and the autonomy policy. */
  async update(name: string, policy: NodePolicy): Promise<void> {
    const s = this.state.get(name);
    if (!s || JSON.stringify(s.policy) === JSON.stringify(policy)) return;
    s.policy = policy;
    s.policyChanged = true;
    this.nodeQueue.add(name);
  }

  /** Stops serving a node (another replica takes it over); its Node and Lease are left as they are. */
  remove(name: string): void {
    this.state.delete(name);
  }

  /** `storedAtMs`: the hub's storage time of the heartbeat. */
  onHeartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void {
    const s = this.state.get(node);
    if (!s) return;
    if (s.view.heartbeatAtMs !== undefined && storedAtMs < s.view.heartbeatAtMs) return;
    s.view.heartbeat = hb;
    s.view.heartbeatAtMs = storedAtMs;
    // Back from autonomy evict's silence: renew the Lease now, not at the next interval.
    if (s.silenced && !this.isSilenced(s)) this.leaseQueue.add(node);
    this.nodeQueue.add(node);
  }

  /** The site's own address as its agent reports it (pods' hostIP). */
  hostIP(node: string): string | undefined {
    return this.state.get(node)?.view.heartbeat?.addresses.find((a) => a.type === 'InternalIP')?.address;
  }

  /** The node's allocatable resources (the agent's, minus the EdgeNode's reserved), once it has reported. */
  allocatable(node: string): Record<string, string> | undefined {
    const s = this.state.get(node);
    const hb = s?.view.heartbeat;
    return hb && s ? subtractReserved(hb.allocatable, s.policy.reserved) : undefined;
  }

  connected(node: string): boolean {
    const s = this.state.get(node);
    return !!s && isConnected(s.view, this.now().getTime(), this.o.heartbeatStaleMs);
  }

  /** Hub storage time of the node's last heartbeat and the desired-state sequence it reported applied (metrics). */
  lastHeartbeat(node: string): { atMs: number; appliedSequence: number } | undefined {
    const v = this.state.get(node)?.view;
    return v?.heartbeat && v.heartbeatAtMs !== undefined
      ? { atMs: v.heartbeatAtMs, appliedSequence: Number(v.heartbeat.appliedSequence) }
      : undefined;
  }

  /** Creates the Node, or brings an existing one's labels, taints and owner in line with the policy. */
  private async register(name: string, s: NodeState): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const existing = await this.o.kube.getNode(name);
      if (!existing) {
        try {
          const created = await this.o.kube.createNode(newNode(name, this.kubeletPortOf(name), s.policy));
          s.lastStatus = created.status;
          this.o.log.info({ node: name }, 'node registered');
          break;
        } catch (err) {
          if (!isAlreadyExists(err) || attempt >= 3) throw err;
          continue;
        }
      }
      s.lastStatus = existing.status;
      const patch = nodeMetadataPatch(existing, s.policy);
      if (!patch) break;
      try {
        await this.o.kube.patchNode(name, patch);
        this.o.log.info({ node: name }, 'node labels/taints updated from its EdgeNode');
        break;
      } catch (err) {
        if (!isConflict(err) || attempt >= 3) throw err;
      }
    }
    const first = !s.registered;
    s.registered = true;
    s.deletedAtMs = undefined;
    s.forceStatus = true;
    if (first) this.leaseQueue.add(name);
  }

  /** Queues the nodes that need a write now; everything else waits for a heartbeat or an EdgeNode change. */
  private scan(): void {
    const nowMs = this.now().getTime();
    for (const [name, s] of this.state) {
      if (s.adding) continue;
      if (!s.registered || s.policyChanged) {
        this.nodeQueue.add(name);
        continue;
      }
      const silent = silenced(s.view, s.policy, nowMs, this.o.heartbeatStaleMs);
      if (
        isConnected(s.view, nowMs, this.o.heartbeatStaleMs) !== s.connected ||
        silent !== !!s.silenced ||
        // A silenced node's Node status is not written (writeStatus): only its EdgeNode status can be due.
        (!silent && nowMs - s.lastStatusWriteMs >= this.o.statusRefreshMs) ||
        nowMs - s.lastEdgeStatusWriteMs >= this.o.statusRefreshMs ||
        this.o.desiredSequence?.(name) !== s.lastDesiredSequence
      ) {
        this.nodeQueue.add(name);
      }
      if (!silent && nowMs - (s.leaseRenewedAtMs ?? 0) >= this.o.leaseRenewMs) this.leaseQueue.add(name);
    }
  }

  /** A node's queued work: register the Node or apply a changed policy, then write its status if it changed. */
  private async syncNode(name: string): Promise<void> {
    const s = this.state.get(name);
    if (!s || s.adding) return;
    if (!s.registered || s.policyChanged) {
      // A Node someone deleted comes back only once the pod garbage collector has dealt with its pods.
      const nowMs = this.now().getTime();
      if (!s.registered && s.deletedAtMs !== undefined && this.o.podsOnNode(name) > 0 && nowMs - s.deletedAtMs < this.o.reregisterAfterMs)
        return;
      s.policyChanged = false;
      try {
        await this.register(name, s);
      } catch (err) {
        if (s.registered) s.policyChanged = true;
        throw err;
      }
    }
    await this.writeStatus(name, s);
  }

  /** Writes the EdgeNode status and the Node status when changed or due; throws (to be retried) when a write fails. */
  private async writeStatus(name: string, s: NodeState): Promise<void> {
    if (!s.registered) return;
    const now = this.now();
    const connected = isConnected(s.view, now.getTime(), this.o.heartbeatStaleMs);
    if (connected !== s.connected) {
      s.connected = connected;
      this.o.onConnectivity?.(name, connected);
    }
    // A failing EdgeNode write (its CRD's status, say) must not hold the Node's status back: both are tried.
    let edgeNodeErr: Error | undefined;
    await this.writeEdgeNodeStatus(name, s, now).catch(
      (err: unknown) => (edgeNodeErr = err instanceof Error ? err : new Error(String(err))),
    );
    if (!this.isSilenced(s)) {
      const status = nodeStatus(s.view, s.lastStatus, now, this.o.heartbeatStaleMs, s.policy);
      const due = now.getTime() - s.lastStatusWriteMs >= this.o.statusRefreshMs;
      if (s.forceStatus || due || nodeStatusChanged(s.lastStatus, status)) {
        try {
          const node = await this.o.kube.patchNodeStatus(name, { status });
          s.lastStatus = node.status;
          s.lastStatusWriteMs = now.getTime();
          s.forceStatus = false;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          this.nodeDeleted(name, s);
        }
      }
    }
    if (edgeNodeErr !== undefined) throw edgeNodeErr;
  }

  private nodeDeleted(name: string, s: NodeState): void {
    if (!s.registered) return;
    s.registered = false;
    s.deletedAtMs = this.now().getTime();
    s.lease = undefined;
    this.o.log.warn(
      { node: name },
      'Node was deleted: its pods are left to the pod garbage collector; the Node is registered again once they are gone',
    );
  }

  private async writeEdgeNodeStatus(name: string, s: NodeState, now: Date): Promise<void> {
    const desired = this.o.desiredSequence?.(name);
    const status = edgeNodeStatus(s.view, now.getTime(), this.o.heartbeatStaleMs, desired);
    // As for the Node: write on a change other than the heartbeat time, and refresh at least every statusRefreshMs,
    // so a steady node costs no API write per heartbeat.
    const json = JSON.stringify({ ...status, lastHeartbeatTime: undefined });
    const due = now.getTime() - s.lastEdgeStatusWriteMs >= this.o.statusRefreshMs;
    if (json === s.lastEdgeStatus && !due) return;
    if (s.edgeNodeMissingAtMs !== undefined && now.getTime() - s.edgeNodeMissingAtMs < this.o.edgeNodeRetryMs) return;
    const found = await this.o.kube.patchEdgeNodeStatus(name, status);
    s.edgeNodeMissingAtMs = found ? undefined : now.getTime();
    if (found) {
      s.lastEdgeStatus = json;
      s.lastEdgeStatusWriteMs = now.getTime();
      s.lastDesiredSequence = desired;
    }
  }

  /** Renews every served node's Lease now (tests; the scan renews each 10 s after its own last renewal). */
  private async renewLeases(): Promise<void> {
    for (const name of this.state.keys()) this.leaseQueue.add(name);
    await this.leaseQueue.drained();
  }

  private isSilenced(s: NodeState): boolean {
    const silent = silenced(s.view, s.policy, this.now().getTime(), this.o.heartbeatStaleMs);
    if (silent && !s.silenced)
      this.o.log.warn(
        { node: s.view.name, evictAfterSeconds: s.policy.autonomy.evictAfterSeconds },
        'autonomy evict: edge silent past the deadline; no more Lease renewals or status, the node lifecycle controller takes over',
      );
    // Back from silence: the node lifecycle controller has written the Node's status meanwhile (Ready Unknown), so
    // what the provider last wrote says nothing of what is there now; write it whatever it looks like.
    if (!silent && s.silenced) s.forceStatus = true;
    s.silenced = silent;
    return silent;
  }

  private async renewLease(name: string): Promise<void> {
    const s = this.state.get(name);
    if (!s || !s.registered || this.isSilenced(s)) return;
    try {
      const renewTime = new k8s.V1MicroTime(this.now().getTime());
      if (!s.lease) s.lease = await this.o.kube.getLease('kube-node-lease', name);
      if (!s.lease) {
        const node = await this.o.kube.getNode(name);
        s.lease = await this.o.kube.createLease({
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name,
            namespace: 'kube-node-lease',
            ownerReferences: node ? [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata!.uid! }] : undefined,
          },
          spec: { holderIdentity: name, leaseDurationSeconds: this.o.leaseDurationSeconds, renewTime },
        });
      } else {
        s.lease = await this.o.kube.replaceLease({ ...s.lease, spec: { ...s.lease.spec, holderIdentity: name, renewTime } });
      }
      s.leaseRenewedAtMs = renewTime.getTime();
    } catch (err) {
      s.lease = undefined; // re-read next time (conflict, created meanwhile, or deleted with its Node)
      if (!isConflict(err) && !isAlreadyExists(err)) this.o.log.warn({ node: name, err: (err as Error).message }, 'lease renewal failed');
    }
  }
}
