/**
 * NodeController: registers one Node per served edge node, renews its Lease in kube-node-lease every 10 s (as a
 * kubelet does, so the node lifecycle controller sees a live node), and writes node status from heartbeats:
 * on any change, and at least every `statusRefreshMs`.
 */
import type { Logger } from 'pino';
import * as k8s from '@kubernetes/client-node';
import type { edge } from '@edgefarm/proto';
import type { KubeClient, Lease } from '../kube/client.js';
import { isAlreadyExists, isConflict } from '../kube/errors.js';
import { newNode, nodeStatus, nodeStatusChanged, isConnected, edgeNodeStatus, type NodeView } from './node.js';

export interface NodeControllerOptions {
  kube: KubeClient;
  log: Logger;
  nodes: readonly string[];
  kubeletPort: number;
  /** The address the apiserver uses to reach the provider's kubelet API (see NodeView.kubeletAddress). */
  kubeletAddress: string;
  leaseDurationSeconds?: number;
  leaseRenewMs?: number;
  /** How often freshness is evaluated. */
  tickMs?: number;
  /** A heartbeat older than this makes the node disconnected. */
  heartbeatStaleMs?: number;
  statusRefreshMs?: number;
  /** Hub sequence of the last desired-state message published for a node (EdgeNode status). */
  desiredSequence?: (node: string) => number | undefined;
  /** How often to look again for an EdgeNode that did not exist. */
  edgeNodeRetryMs?: number;
  now?: () => Date;
}

interface NodeState {
  view: NodeView;
  lease?: Lease;
  lastStatus?: k8s.V1NodeStatus;
  lastStatusWriteMs: number;
  registered: boolean;
  lastEdgeStatus?: string;
  lastEdgeStatusWriteMs: number;
  /** When the last EdgeNode status patch found no EdgeNode (ms), so it is retried only every edgeNodeRetryMs. */
  edgeNodeMissingAtMs?: number;
}

export class NodeController {
  private readonly state = new Map<string, NodeState>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly now: () => Date;
  private readonly o: Required<Omit<NodeControllerOptions, 'now' | 'desiredSequence'>> & Pick<NodeControllerOptions, 'desiredSequence'>;

  constructor(options: NodeControllerOptions) {
    this.now = options.now ?? (() => new Date());
    this.o = {
      leaseDurationSeconds: 40,
      leaseRenewMs: 10_000,
      tickMs: 2_000,
      heartbeatStaleMs: 25_000,
      statusRefreshMs: 60_000,
      edgeNodeRetryMs: 30_000,
      ...options,
    };
    for (const name of options.nodes) {
      this.state.set(name, { view: { name, everReady: false, kubeletPort: options.kubeletPort, kubeletAddress: options.kubeletAddress }, lastStatusWriteMs: 0, lastEdgeStatusWriteMs: 0, registered: false });
    }
  }

  async start(): Promise<void> {
    for (const name of this.state.keys()) await this.register(name).catch((err) => this.o.log.warn({ node: name, err: (err as Error).message }, 'node registration failed; will retry'));
    await this.renewLeases();
    this.timers.push(setInterval(() => void this.renewLeases(), this.o.leaseRenewMs));
    this.timers.push(setInterval(() => void this.tick(), this.o.tickMs));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.length = 0;
  }

  /** `storedAtMs`: the hub's storage time of the heartbeat. */
  onHeartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void {
    const s = this.state.get(node);
    if (!s) return;
    if (s.view.heartbeatAtMs !== undefined && storedAtMs < s.view.heartbeatAtMs) return;
    s.view.heartbeat = hb;
    s.view.heartbeatAtMs = storedAtMs;
    void this.writeStatus(node, s);
  }

  /** The site's own address as its agent reports it (pods' hostIP). */
  hostIP(node: string): string | undefined {
    return this.state.get(node)?.view.heartbeat?.addresses.find((a) => a.type === 'InternalIP')?.address;
  }

  connected(node: string): boolean {
    const s = this.state.get(node);
    return !!s && isConnected(s.view, this.now().getTime(), this.o.heartbeatStaleMs);
  }

  private async register(name: string): Promise<void> {
    const s = this.state.get(name)!;
    const existing = await this.o.kube.getNode(name);
    if (existing) {
      s.lastStatus = existing.status;
    } else {
      try {
        const created = await this.o.kube.createNode(newNode(name, this.o.kubeletPort));
        s.lastStatus = created.status;
        this.o.log.info({ node: name }, 'node registered');
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
    }
    s.registered = true;
    await this.writeStatus(name, s, true);
  }

  private async tick(): Promise<void> {
    for (const [name, s] of this.state) {
      if (!s.registered) {
        await this.register(name).catch(() => undefined);
        continue;
      }
      await this.writeStatus(name, s);
    }
  }

  private async writeStatus(name: string, s: NodeState, force = false): Promise<void> {
    if (!s.registered) return;
    const now = this.now();
    await this.writeEdgeNodeStatus(name, s, now);
    const status = nodeStatus(s.view, s.lastStatus, now, this.o.heartbeatStaleMs);
    const due = now.getTime() - s.lastStatusWriteMs >= this.o.statusRefreshMs;
    if (!force && !due && !nodeStatusChanged(s.lastStatus, status)) return;
    try {
      const node = await this.o.kube.patchNodeStatus(name, { status });
      s.lastStatus = node.status;
      s.lastStatusWriteMs = now.getTime();
    } catch (err) {
      this.o.log.warn({ node: name, err: (err as Error).message }, 'node status update failed; will retry');
    }
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
    await Promise.all([...this.state.keys()].map((name) => this.renewLease(name)));
  }

  private async renewLease(name: string): Promise<void> {
    const s = this.state.get(name)!;
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
