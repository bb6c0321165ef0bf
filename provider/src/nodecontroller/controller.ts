/**
 * NodeController: one Node per edge node this replica serves (nodes come and go with EdgeNodes and shard leases),
 * registered with the EdgeNode's labels and taints, its Lease in kube-node-lease renewed every 10 s (as a kubelet
 * does, so the node lifecycle controller sees a live node), and node status written from heartbeats: on any change,
 * and at least every `statusRefreshMs` (5 min, the kubelet's nodeStatusReportFrequency: the Lease tells liveness).
 *
 * The API writes of a node go through two keyed work queues (Node and status, 16 workers; Lease, 32, in
 * {@link NodeLeases}), so a node is
 * never written by two requests at once, a burst of heartbeats costs one write, and a failed write is retried with
 * backoff. A scan every `tickMs` queues only the nodes that need something: connectivity flipped, a Lease or refresh
 * is due, a Node to register. A steady node costs one Lease write per 10 s and nothing else (docs/decisions/0007).
 *
 * A Node deleted by someone else is handled as Kubernetes handles a deleted kubelet's Node: the pod garbage
 * collector deletes its pods; the provider registers the Node again (its EdgeNode still exists) once no pod is bound
 * to it any more, or after `reregisterAfterMs` at the latest.
 *
 * Which nodes it serves it learns from the membership ({@link MembershipListener}): a node taken on accepts
 * heartbeats at once but is registered and written only once `taken` (its last heartbeat read back); a node handed
 * over is forgotten with its Node and Lease left as they are; a node whose EdgeNode was deleted also has its Node
 * deleted (if the provider manages it). The heartbeats go into {@link NodeFacts}, of which it is the one writer, once
 * checked against the allow list of admission.ts: what is refused is counted (`rejected`) and told on the Node as a
 * Warning Event `HeartbeatRejected`, at most one per node every `rejectEventIntervalMs`.
 */
import type { Logger } from 'pino';
import type * as k8s from '@kubernetes/client-node';
import type { edge } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { KubeClient } from '../kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import type { MembershipListener, ReleaseReason, Takeover } from '../membership/membership.js';
import type { NodeFacts } from './facts.js';
import { admitHeartbeat, type HeartbeatRejectReason, type Refusal } from './admission.js';
import { NodeLeases } from './leases.js';
import {
  MANAGED_ANNOTATION,
  newNode,
  nodeStatus,
  nodeStatusChanged,
  nodeMetadataPatch,
  isConnected,
  nodeEvent,
  silenced,
  edgeNodeStatus,
  type NodeView,
  type NodePolicy,
} from './node.js';

export interface NodeControllerOptions {
  kube: KubeClient;
  log: Logger;
  /** The served nodes' heartbeats; written only here. Its heartbeatStaleMs says when a node is disconnected. */
  facts: NodeFacts;
  /**
   * The kubelet port a node advertises: one for all, or each node's own (the kubelet API server assigns it when the
   * node is taken on, before this controller hears of it; docs/decisions/0006-kubelet-api.md).
   */
  kubeletPort: number | { portOf(node: string): number };
  /** The address the apiserver uses to reach the provider's kubelet API (see NodeView.kubeletAddress). */
  kubeletAddress: string;
  leaseDurationSeconds?: number;
  leaseRenewMs?: number;
  /** How often the nodes are scanned for work (freshness, due Leases and refreshes). */
  tickMs?: number;
  /** Longest time between two writes of an unchanged node status (default 5 min, as the kubelet). */
  statusRefreshMs?: number;
  /** Node and status writes in flight at once (default 16). */
  workers?: number;
  /**
   * Lease renewals in flight at once (default 32). They must keep up with nodes / leaseRenewMs: at 1,000 nodes 100 per
   * second, and with the apiserver at ~0.2 s per write under a pod burst 8 workers fell behind (missed renewals).
   */
  leaseWorkers?: number;
  /** Hub sequence of the last desired-state message published for a node (EdgeNode status); none without it. */
  desired?: { sequence(node: string): number | undefined };
  /** Pods the API still binds to a node (to re-register a deleted Node only once they are gone); none without it. */
  pods?: { count(node: string): number };
  /** How often to look again for an EdgeNode that did not exist. */
  edgeNodeRetryMs?: number;
  /** Longest wait before a deleted Node is registered again although pods are still bound to it. */
  reregisterAfterMs?: number;
  /** Counts each part of a heartbeat refused (edgefarm_provider_heartbeat_rejected_total). */
  rejected?: (reason: HeartbeatRejectReason) => void;
  /** At most one HeartbeatRejected Event (and warning log) per node this often (default 10 min). */
  rejectEventIntervalMs?: number;
  now?: () => Date;
}

interface NodeState {
  policy: NodePolicy;
  lastStatus?: k8s.V1NodeStatus;
  lastStatusWriteMs: number;
  /** Write the status even if unchanged (just registered). */
  forceStatus?: boolean;
  /** The policy changed: labels and taints to apply to the Node. */
  policyChanged?: boolean;
  registered: boolean;
  /** Taken on, its last heartbeat still being read back: not registered or written yet. */
  taking?: boolean;
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
  /** When the last HeartbeatRejected Event was recorded (ms). */
  rejectEventAtMs?: number;
}

export class NodeController implements MembershipListener {
  /** Per served node, what this controller wrote and when. */
  private readonly state = new Map<string, NodeState>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private readonly nodeQueue: WorkQueue;
  private readonly leases: NodeLeases;
  private readonly now: () => Date;
  private readonly staleMs: number;
  /** HeartbeatRejected Events being written (awaited by stop and drained). */
  private readonly eventWrites = new Set<Promise<void>>();
  private readonly o: Required<Omit<NodeControllerOptions, 'now'>>;

  constructor(options: NodeControllerOptions) {
    this.now = options.now ?? (() => new Date());
    this.staleMs = options.facts.heartbeatStaleMs;
    this.o = {
      leaseDurationSeconds: 40,
      leaseRenewMs: 10_000,
      tickMs: 2_000,
      statusRefreshMs: 300_000,
      workers: 16,
      leaseWorkers: 32,
      edgeNodeRetryMs: 30_000,
      reregisterAfterMs: 300_000,
      desired: { sequence: () => undefined },
      pods: { count: () => 0 },
      rejected: () => undefined,
      rejectEventIntervalMs: 600_000,
      ...options,
    };
    const onError = (node: string, err: unknown, attempt: number) =>
      this.o.log.warn({ node, attempt, err: (err as Error).message }, 'node write failed; will retry');
    this.nodeQueue = new WorkQueue((node) => this.syncNode(node), { workers: this.o.workers, onError });
    this.leases = new NodeLeases({
      kube: this.o.kube,
      log: this.o.log,
      leaseDurationSeconds: this.o.leaseDurationSeconds,
      workers: this.o.leaseWorkers,
      now: this.now,
      renewable: (node) => {
        const s = this.state.get(node);
        return !!s && s.registered && !this.isSilenced(node, s);
      },
    });
  }

  start(): void {
    this.timer ??= setInterval(() => this.scan(), this.o.tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await Promise.all([this.nodeQueue.stop(), this.leases.stop(), ...this.eventWrites]);
  }

  /** Resolves once no node write or Lease renewal is queued or in flight (tests). */
  async drained(): Promise<void> {
    while (!this.stopped && this.nodeQueue.length + this.leases.length + this.eventWrites.size > 0)
      await Promise.all([this.nodeQueue.drained(), this.leases.drained(), ...this.eventWrites]);
  }

  private kubeletPortOf(node: string): number {
    const p = this.o.kubeletPort;
    return typeof p === 'number' ? p : p.portOf(node);
  }

  /** What the node functions need to know of a node: its last heartbeat and where its kubelet API is. */
  private view(name: string): NodeView {
    const last = this.o.facts.last(name);
    return {
      name,
      heartbeat: last?.heartbeat,
      heartbeatAtMs: last?.atMs,
      kubeletPort: this.kubeletPortOf(name),
      kubeletAddress: this.o.kubeletAddress,
    };
  }

  /** Membership: starts serving the nodes. Heartbeats are accepted from now on; nothing is written before {@link taken}. */
  taking({ nodes }: Takeover): void {
    for (const { name, policy } of nodes) {
      if (this.state.has(name)) continue;
      this.state.set(name, { policy, lastStatusWriteMs: 0, lastEdgeStatusWriteMs: 0, registered: false, taking: true });
      this.o.facts.setReserved(name, policy.reserved);
      this.o.facts.setAllowedUnsafeSysctls(name, policy.allowedUnsafeSysctls ?? []);
    }
  }

  /** Membership: the nodes' last heartbeats were read back: register (or adopt) their Nodes, then their Leases. */
  taken(nodes: readonly string[]): void {
    for (const name of nodes) {
      const s = this.state.get(name);
      if (!s?.taking) continue;
      s.taking = false;
      this.nodeQueue.add(name);
    }
  }

  /** Membership: the node's EdgeNode changed: apply labels, taints, reserved resources and the autonomy policy. */
  policyChanged(name: string, policy: NodePolicy): void {
    const s = this.state.get(name);
    if (!s) return;
    s.policy = policy;
    s.policyChanged = true;
    this.o.facts.setReserved(name, policy.reserved);
    this.o.facts.setAllowedUnsafeSysctls(name, policy.allowedUnsafeSysctls ?? []);
    this.nodeQueue.add(name);
  }

  /**
   * Membership: stops serving the node. Handed over: its Node and Lease are left as they are for the new owner.
   * Deleted (its EdgeNode is gone): its Node is deleted too, if the provider manages it (the garbage collector would
   * as well, the Node being owned by the EdgeNode); the pod garbage collector then deletes the pods bound to it.
   */
  async released(name: string, reason: ReleaseReason): Promise<void> {
    this.state.delete(name);
    this.leases.forget(name);
    this.o.facts.forget(name);
    if (reason !== 'deleted') return;
    const node = await this.o.kube.getNode(name);
    if (node?.metadata?.uid && node.metadata.annotations?.[MANAGED_ANNOTATION] !== undefined) {
      await this.o.kube.deleteNode(name, node.metadata.uid);
    }
  }

  /**
   * A heartbeat from the hub, of the node its subject names; `storedAtMs`: the hub's storage time of it. Ignored for
   * nodes not served; only what the allow list admits is kept (admission.ts).
   */
  onHeartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void {
    const s = this.state.get(node);
    if (!s) return;
    // Extended resources: none, as the EdgeNode has no field to allow them yet (admission.ts).
    const admitted = admitHeartbeat(node, hb, { previous: this.o.facts.last(node)?.heartbeat });
    if (admitted.refusals.length > 0) this.refused(node, s, admitted.refusals);
    if (!admitted.heartbeat || !this.o.facts.record(node, admitted.heartbeat, storedAtMs)) return;
    // Back from autonomy evict's silence: renew the Lease now, not at the next interval.
    if (s.silenced && !this.isSilenced(node, s)) this.leases.renew(node);
    this.nodeQueue.add(node);
  }

  /** Counts the refusals; logs them and records a Warning Event on the Node, at most once per rejectEventIntervalMs. */
  private refused(node: string, s: NodeState, refusals: readonly Refusal[]): void {
    for (const r of refusals) this.o.rejected(r.reason);
    const now = this.now();
    if (s.rejectEventAtMs !== undefined && now.getTime() - s.rejectEventAtMs < this.o.rejectEventIntervalMs) return;
    s.rejectEventAtMs = now.getTime();
    const whole = refusals.some((r) => r.reason === 'node-name');
    const fields = [...new Set(refusals.map((r) => r.field))];
    const listed = fields.slice(0, 5).join(', ') + (fields.length > 5 ? ` and ${fields.length - 5} more` : '');
    const message = whole
      ? `heartbeat refused: its ${listed} is not this node's (a site speaks only for itself)`
      : `heartbeat fields refused and dropped (not allowed or out of bounds): ${listed}`;
    this.o.log.warn({ node, refused: fields.slice(0, 5), count: refusals.length }, message);
    const write = this.o.kube
      .createEvent(nodeEvent(node, 'Warning', 'HeartbeatRejected', message, now))
      .catch((err: unknown) => this.o.log.warn({ node, err: (err as Error).message }, 'could not record the HeartbeatRejected Event'))
      .finally(() => this.eventWrites.delete(write));
    this.eventWrites.add(write);
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
    if (first) this.leases.renew(name);
  }

  /** Queues the nodes that need a write now; everything else waits for a heartbeat or an EdgeNode change. */
  private scan(): void {
    const nowMs = this.now().getTime();
    for (const [name, s] of this.state) {
      if (s.taking) continue;
      if (!s.registered || s.policyChanged) {
        this.nodeQueue.add(name);
        continue;
      }
      const view = this.view(name);
      const silent = silenced(view, s.policy, nowMs, this.staleMs);
      if (
        isConnected(view, nowMs, this.staleMs) !== s.connected ||
        silent !== !!s.silenced ||
        // A silenced node's Node status is not written (writeStatus): only its EdgeNode status can be due.
        (!silent && nowMs - s.lastStatusWriteMs >= this.o.statusRefreshMs) ||
        nowMs - s.lastEdgeStatusWriteMs >= this.o.statusRefreshMs ||
        this.o.desired.sequence(name) !== s.lastDesiredSequence
      ) {
        this.nodeQueue.add(name);
      }
      if (!silent && nowMs - (this.leases.renewedAtMs(name) ?? 0) >= this.o.leaseRenewMs) this.leases.renew(name);
    }
  }

  /** A node's queued work: register the Node or apply a changed policy, then write its status if it changed. */
  private async syncNode(name: string): Promise<void> {
    const s = this.state.get(name);
    if (!s || s.taking) return;
    if (!s.registered || s.policyChanged) {
      // A Node someone deleted comes back only once the pod garbage collector has dealt with its pods.
      const nowMs = this.now().getTime();
      if (!s.registered && s.deletedAtMs !== undefined && this.o.pods.count(name) > 0 && nowMs - s.deletedAtMs < this.o.reregisterAfterMs)
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
    const view = this.view(name);
    const connected = isConnected(view, now.getTime(), this.staleMs);
    if (connected !== s.connected) {
      s.connected = connected;
      this.o.log.info({ node: name, connected }, connected ? 'edge node connected' : 'edge node disconnected');
      this.o.facts.connectivityChanged(name, connected);
    }
    // A failing EdgeNode write (its CRD's status, say) must not hold the Node's status back: both are tried.
    let edgeNodeErr: Error | undefined;
    await this.writeEdgeNodeStatus(view, s, now).catch(
      (err: unknown) => (edgeNodeErr = err instanceof Error ? err : new Error(String(err))),
    );
    if (!this.isSilenced(name, s)) {
      const status = nodeStatus(view, s.lastStatus, now, this.staleMs, s.policy);
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
    this.leases.lost(name);
    this.o.log.warn(
      { node: name },
      'Node was deleted: its pods are left to the pod garbage collector; the Node is registered again once they are gone',
    );
  }

  private async writeEdgeNodeStatus(view: NodeView, s: NodeState, now: Date): Promise<void> {
    const { name } = view;
    const desired = this.o.desired.sequence(name);
    const status = edgeNodeStatus(view, now.getTime(), this.staleMs, desired);
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
    for (const name of this.state.keys()) this.leases.renew(name);
    await this.leases.drained();
  }

  private isSilenced(name: string, s: NodeState): boolean {
    const silent = silenced({ heartbeatAtMs: this.o.facts.last(name)?.atMs }, s.policy, this.now().getTime(), this.staleMs);
    if (silent && !s.silenced)
      this.o.log.warn(
        { node: name, evictAfterSeconds: s.policy.autonomy.evictAfterSeconds },
        'autonomy evict: edge silent past the deadline; no more Lease renewals or status, the node lifecycle controller takes over',
      );
    // Back from silence: the node lifecycle controller has written the Node's status meanwhile (Ready Unknown), so
    // what the provider last wrote says nothing of what is there now; write it whatever it looks like.
    if (!silent && s.silenced) s.forceStatus = true;
    s.silenced = silent;
    return silent;
  }
}
