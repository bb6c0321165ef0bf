/**
 * NodeController: one Node per edge node this replica serves (nodes come and go with EdgeNodes and shard leases),
 * registered with the EdgeNode's labels and taints, its Lease in kube-node-lease renewed every 10 s (as a kubelet
 * does, so the node lifecycle controller sees a live node), and node status written from heartbeats: on any change,
 * and at least every `statusRefreshMs`.
 *
 * A Node deleted by someone else is handled as Kubernetes handles a deleted kubelet's Node: the pod garbage
 * collector deletes its pods; the provider registers the Node again (its EdgeNode still exists) once no pod is bound
 * to it any more, or after `reregisterAfterMs` at the latest.
 */
import type { Logger } from 'pino';
import * as k8s from '@kubernetes/client-node';
import type { edge } from '@edgefarm/proto';
import type { KubeClient, Lease } from '../kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import { newNode, nodeStatus, nodeStatusChanged, nodeMetadataPatch, isConnected, silenced, edgeNodeStatus, type NodeView, type NodePolicy } from './node.js';
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
  /** How often freshness is evaluated. */
  tickMs?: number;
  /**
   * A heartbeat older than this (by the hub's storage time) makes the node disconnected. 12 s: the agent beats every 5 s,
   * so two lost beats plus slack; with tickMs 2 s a dead link shows as EdgeConnected=False within ~14 s.
   */
  heartbeatStaleMs?: number;
  statusRefreshMs?: number;
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
  registered: boolean;
  /** Taken on, its last heartbeat still being read back: not registered or written yet. */
  adding?: boolean;
  /** When this process found the Node deleted (ms). */
  deletedAtMs?: number;
  lastEdgeStatus?: string;
  lastEdgeStatusWriteMs: number;
  /** Connectivity as last evaluated, to report changes. */
  connected?: boolean;
  /** Autonomy evict past its deadline, as last evaluated. */
  silenced?: boolean;
  /** When the last EdgeNode status patch found no EdgeNode (ms), so it is retried only every edgeNodeRetryMs. */
  edgeNodeMissingAtMs?: number;
}

export class NodeController {
  private readonly state = new Map<string, NodeState>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly now: () => Date;
  private readonly o: Required<Omit<NodeControllerOptions, 'now' | 'desiredSequence' | 'onConnectivity'>> & Pick<NodeControllerOptions, 'desiredSequence' | 'onConnectivity'>;

  constructor(options: NodeControllerOptions) {
    this.now = options.now ?? (() => new Date());
    this.o = {
      leaseDurationSeconds: 40,
      leaseRenewMs: 10_000,
      tickMs: 2_000,
      heartbeatStaleMs: 12_000,
      statusRefreshMs: 60_000,
      edgeNodeRetryMs: 30_000,
      reregisterAfterMs: 300_000,
      podsOnNode: () => 0,
      ...options,
    };
  }

  start(): void {
    this.timers.push(setInterval(() => void this.renewLeases(), this.o.leaseRenewMs));
    this.timers.push(setInterval(() => void this.tick(), this.o.tickMs));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
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
   * Starts serving a node: registers (or adopts) its Node and renews its Lease at once. `readLast` runs first, with
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
        await this.register(name, s).catch((err) => this.o.log.warn({ node: name, err: (err as Error).message }, 'node registration failed; will retry'));
        await this.renewLease(name, s);
      }
    }
  }

  /** The node's EdgeNode changed: apply labels, taints, reserved resources and the autonomy policy. */
  async update(name: string, policy: NodePolicy): Promise<void> {
    const s = this.state.get(name);
    if (!s || JSON.stringify(s.policy) === JSON.stringify(policy)) return;
    s.policy = policy;
    if (s.registered) await this.register(name, s).catch((err) => this.o.log.warn({ node: name, err: (err as Error).message }, 'node update failed; will retry'));
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
    if (s.silenced && !this.isSilenced(s)) void this.renewLease(node, s);
    void this.writeStatus(node, s);
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
    return v?.heartbeat && v.heartbeatAtMs !== undefined ? { atMs: v.heartbeatAtMs, appliedSequence: Number(v.heartbeat.appliedSequence) } : undefined;
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
    s.registered = true;
    s.deletedAtMs = undefined;
    await this.writeStatus(name, s, true);
  }

  private async tick(): Promise<void> {
    const nowMs = this.now().getTime();
    for (const [name, s] of this.state) {
      if (s.adding) continue;
      if (!s.registered) {
        // A Node someone deleted comes back only once the pod garbage collector has dealt with its pods.
        if (s.deletedAtMs !== undefined && this.o.podsOnNode(name) > 0 && nowMs - s.deletedAtMs < this.o.reregisterAfterMs) continue;
        await this.register(name, s).catch((err) => this.o.log.warn({ node: name, err: (err as Error).message }, 'node registration failed; will retry'));
        continue;
      }
      await this.writeStatus(name, s);
    }
  }

  private async writeStatus(name: string, s: NodeState, force = false): Promise<void> {
    if (!s.registered) return;
    const now = this.now();
    const connected = isConnected(s.view, now.getTime(), this.o.heartbeatStaleMs);
    if (connected !== s.connected) {
      s.connected = connected;
      this.o.onConnectivity?.(name, connected);
    }
    await this.writeEdgeNodeStatus(name, s, now);
    if (this.isSilenced(s)) return;
    const status = nodeStatus(s.view, s.lastStatus, now, this.o.heartbeatStaleMs, s.policy);
    const due = now.getTime() - s.lastStatusWriteMs >= this.o.statusRefreshMs;
    if (!force && !due && !nodeStatusChanged(s.lastStatus, status)) return;
    try {
      const node = await this.o.kube.patchNodeStatus(name, { status });
      s.lastStatus = node.status;
      s.lastStatusWriteMs = now.getTime();
    } catch (err) {
      if (isNotFound(err)) return this.nodeDeleted(name, s);
      this.o.log.warn({ node: name, err: (err as Error).message }, 'node status update failed; will retry');
    }
  }

  private nodeDeleted(name: string, s: NodeState): void {
    if (!s.registered) return;
    s.registered = false;
    s.deletedAtMs = this.now().getTime();
    s.lease = undefined;
    this.o.log.warn({ node: name }, 'Node was deleted: its pods are left to the pod garbage collector; the Node is registered again once they are gone');
  }

  private async writeEdgeNodeStatus(name: string, s: NodeState, now: Date): Promise<void> {
    const status = edgeNodeStatus(s.view, now.getTime(), this.o.heartbeatStaleMs, this.o.desiredSequence?.(name));
    // As for the Node: write on a change other than the heartbeat time, and refresh at least every statusRefreshMs,
    // so a steady node costs no API write per heartbeat.
    const json = JSON.stringify({ ...status, lastHeartbeatTime: undefined });
    const due = now.getTime() - s.lastEdgeStatusWriteMs >= this.o.statusRefreshMs;
    if (json === s.lastEdgeStatus && !due) return;
    if (s.edgeNodeMissingAtMs !== undefined && now.getTime() - s.edgeNodeMissingAtMs < this.o.edgeNodeRetryMs) return;
    try {
      const found = await this.o.kube.patchEdgeNodeStatus(name, status);
      s.edgeNodeMissingAtMs = found ? undefined : now.getTime();
      if (found) {
        s.lastEdgeStatus = json;
        s.lastEdgeStatusWriteMs = now.getTime();
      }
    } catch (err) {
      this.o.log.warn({ node: name, err: (err as Error).message }, 'EdgeNode status update failed; will retry');
    }
  }

  private async renewLeases(): Promise<void> {
    await Promise.all([...this.state].map(([name, s]) => this.renewLease(name, s)));
  }

  private isSilenced(s: NodeState): boolean {
    const silent = silenced(s.view, s.policy, this.now().getTime(), this.o.heartbeatStaleMs);
    if (silent && !s.silenced) this.o.log.warn({ node: s.view.name, evictAfterSeconds: s.policy.autonomy.evictAfterSeconds }, 'autonomy evict: edge silent past the deadline; no more Lease renewals or status, the node lifecycle controller takes over');
    s.silenced = silent;
    return silent;
  }

  private async renewLease(name: string, s: NodeState): Promise<void> {
    if (!s.registered || this.isSilenced(s)) return;
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
        return;
      }
      s.lease = await this.o.kube.replaceLease({ ...s.lease, spec: { ...s.lease.spec, holderIdentity: name, renewTime } });
    } catch (err) {
      s.lease = undefined; // re-read next time (conflict, or deleted with its Node)
      if (!isConflict(err)) this.o.log.warn({ node: name, err: (err as Error).message }, 'lease renewal failed');
    }
  }
}
