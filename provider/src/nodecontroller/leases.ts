/**
 * NodeLeases: the Lease of each served node in kube-node-lease, created (owned by its Node) and renewed as a kubelet
 * renews its own, so the node lifecycle controller sees a live node. Renewals go through a keyed work queue: a
 * node's Lease is never written twice at once, and `workers` renewals are in flight at most. The Lease objects as
 * last written are kept here (a replace carries their resourceVersion); a failed renewal reads the Lease again next
 * time. When to renew is the NodeController's call ({@link renew}); whether a node's Lease may be renewed at all
 * (its Node registered, autonomy evict not silent) is asked right before each write ({@link NodeLeasesOptions.renewable}).
 */
import type { Logger } from 'pino';
import * as k8s from '@kubernetes/client-node';
import { WorkQueue } from '@edgefarm/workqueue';
import type { KubeClient, Lease } from '../kube/client.js';
import { isAlreadyExists, isConflict } from '../kube/errors.js';

export interface NodeLeasesOptions {
  kube: KubeClient;
  log: Logger;
  leaseDurationSeconds: number;
  /** Renewals in flight at once. */
  workers: number;
  now: () => Date;
  /** Whether the node's Lease may be written now. */
  renewable(node: string): boolean;
}

export class NodeLeases {
  private readonly leases = new Map<string, { lease?: Lease; renewedAtMs?: number }>();
  private readonly queue: WorkQueue;

  constructor(private readonly o: NodeLeasesOptions) {
    this.queue = new WorkQueue((node) => this.renewOne(node), { workers: o.workers });
  }

  /** When this process last renewed (or created) the node's Lease (ms). */
  renewedAtMs(node: string): number | undefined {
    return this.leases.get(node)?.renewedAtMs;
  }

  /** Queues a renewal of the node's Lease. */
  renew(node: string): void {
    this.queue.add(node);
  }

  /** The Lease went away with its Node: read (or create) it again next time. */
  lost(node: string): void {
    const l = this.leases.get(node);
    if (l) l.lease = undefined;
  }

  /** The node is no longer served: its Lease is left as it is. */
  forget(node: string): void {
    this.leases.delete(node);
  }

  /** Renewals queued or in flight. */
  get length(): number {
    return this.queue.length;
  }

  drained(): Promise<void> {
    return this.queue.drained();
  }

  stop(): Promise<void> {
    return this.queue.stop();
  }

  private async renewOne(name: string): Promise<void> {
    if (!this.o.renewable(name)) return;
    let l = this.leases.get(name);
    if (!l) this.leases.set(name, (l = {}));
    try {
      const renewTime = new k8s.V1MicroTime(this.o.now().getTime());
      if (!l.lease) l.lease = await this.o.kube.getLease('kube-node-lease', name);
      if (!l.lease) {
        const node = await this.o.kube.getNode(name);
        l.lease = await this.o.kube.createLease({
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
        l.lease = await this.o.kube.replaceLease({ ...l.lease, spec: { ...l.lease.spec, holderIdentity: name, renewTime } });
      }
      l.renewedAtMs = renewTime.getTime();
    } catch (err) {
      l.lease = undefined; // read again next time (a conflict, created meanwhile, or deleted with its Node)
      if (!isConflict(err) && !isAlreadyExists(err)) this.o.log.warn({ node: name, err: (err as Error).message }, 'lease renewal failed');
    }
  }
}
