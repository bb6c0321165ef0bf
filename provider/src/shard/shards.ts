/**
 * Sharding of edge nodes across provider replicas with Kubernetes Leases.
 *
 * Nodes map to a fixed number of shards by a hash of their name (`shardOf`); each shard is a Lease
 * `edgefarm-shard-<i>` in the provider's namespace, held by one replica. Every replica also keeps a member Lease
 * `edgefarm-provider-<identity>` so the others know how many replicas share the work. One tick (every `renewMs`):
 *
 *  1. renew the member Lease; list all EdgeFarm Leases (one call, whatever the number of nodes);
 *  2. renew each shard held; a conflict means another replica took it: it is lost at once;
 *  3. count live replicas (a member Lease renewed within its duration whose holder has no expired shard) and the
 *     fair share `ceil(shards / replicas)`; above it, release the excess when some live replica is below its share;
 *  4. take free shards (never held, released, or expired): up to the fair share at once, and any that stayed free
 *     for two ticks (nobody else wants them).
 *
 * Expiry is judged as client-go's leader election does: from when this process saw the Lease's renewTime change,
 * never by comparing clocks across machines. A replica that cannot renew a shard within the lease duration (API
 * unreachable) stops serving it. On stop, a replica releases its shards and deletes its member Lease so the others
 * take over at their next tick rather than after the lease duration.
 */
import type { Logger } from 'pino';
import * as k8s from '@kubernetes/client-node';
import { shardOf } from '@edgefarm/proto';
import type { KubeClient, Lease } from '../kube/client.js';
import { isConflict, isAlreadyExists, isNotFound } from '../kube/errors.js';

/** FNV-1a (32 bit) of the name, modulo the shard count (@edgefarm/proto, shared with `edgefarm status`). */
export { shardOf };

export const LEASE_KIND_LABEL = 'edgefarm.io/provider-lease';
const SHARD_LABEL = 'edgefarm.io/shard';

export interface ShardLeasesOptions {
  kube: KubeClient;
  log: Logger;
  namespace: string;
  /** This replica's name: a DNS label, stable across restarts where possible (a pod name). */
  identity: string;
  shards: number;
  leaseDurationSeconds?: number;
  renewMs?: number;
  /** Called with the shards this replica now holds / no longer holds; awaited before the next tick. */
  onAcquired(shards: number[]): Promise<void>;
  onLost(shards: number[]): Promise<void>;
  now?: () => number;
}

interface Held {
  lease: Lease;
  renewedAtMs: number;
}

export class ShardLeases {
  private readonly held = new Map<number, Held>();
  /** Per Lease name: its last seen holder+renewTime and when this process first saw that value. */
  private readonly observed = new Map<string, { value: string; atMs: number }>();
  /** Per shard: since when this process has seen it free. */
  private readonly freeSince = new Map<number, number>();
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private readonly o: Required<ShardLeasesOptions>;

  constructor(options: ShardLeasesOptions) {
    this.o = { leaseDurationSeconds: 15, renewMs: 3_000, now: () => Date.now(), ...options };
  }

  shardOf(name: string): number {
    return shardOf(name, this.o.shards);
  }

  owns(shard: number): boolean {
    return this.held.has(shard);
  }

  ownedShards(): number[] {
    return [...this.held.keys()].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.tick();
    const loop = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.running = this.tick().finally(loop);
      }, this.o.renewMs);
    };
    loop();
  }

  /** Releases every shard (after the caller stopped serving them) and deletes the member Lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const shards = this.ownedShards();
    const leases = shards.map((i) => this.held.get(i)!.lease);
    this.held.clear();
    if (shards.length) await this.o.onLost(shards);
    await Promise.all(shards.map((i, n) => this.release(i, leases[n])));
    await this.o.kube.deleteLease(this.o.namespace, this.memberName()).catch(() => undefined);
  }

  private memberName(): string {
    return `edgefarm-provider-${this.o.identity}`;
  }

  /** One round of renew, rebalance, acquire. Exposed for tests. */
  async tick(): Promise<void> {
    const now = this.o.now();
    const durationMs = this.o.leaseDurationSeconds * 1000;
    await this.renewMember(now);
    let leases: Lease[];
    try {
      leases = await this.o.kube.listLeases(this.o.namespace, LEASE_KIND_LABEL);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'listing shard leases failed');
      await this.dropUnrenewed(now, durationMs);
      return;
    }
    const expired = (l: Lease) => {
      const name = l.metadata!.name!;
      const value = `${l.spec?.holderIdentity ?? ''}|${renewMs(l)}`;
      const seen = this.observed.get(name);
      if (!seen || seen.value !== value) this.observed.set(name, { value, atMs: now });
      const since = this.observed.get(name)!.atMs;
      return !l.spec?.holderIdentity || now - since > (l.spec.leaseDurationSeconds ?? this.o.leaseDurationSeconds) * 1000;
    };
    const shardLeases = new Map<number, Lease>();
    const members = new Set<string>([this.o.identity]);
    const dead = new Set<string>();
    for (const l of leases) {
      const kind = l.metadata?.labels?.[LEASE_KIND_LABEL];
      const isExpired = expired(l);
      if (kind === 'member' && !isExpired && l.spec?.holderIdentity) members.add(l.spec.holderIdentity);
      if (kind === 'shard') {
        const i = Number(l.metadata?.labels?.[SHARD_LABEL]);
        if (Number.isInteger(i) && i >= 0 && i < this.o.shards) shardLeases.set(i, l);
        if (isExpired && l.spec?.holderIdentity) dead.add(l.spec.holderIdentity);
      }
    }
    for (const d of dead) if (d !== this.o.identity) members.delete(d);

    // 2. renew what we hold
    const lost: number[] = [];
    for (const [i, h] of this.held) {
      const current = shardLeases.get(i);
      if (current && current.spec?.holderIdentity !== this.o.identity) {
        lost.push(i);
        continue;
      }
      try {
        h.lease = await this.o.kube.replaceLease({
          ...(current ?? h.lease),
          spec: { ...(current ?? h.lease).spec, holderIdentity: this.o.identity, renewTime: new k8s.V1MicroTime(now) },
        });
        h.renewedAtMs = now;
      } catch (err) {
        if (isConflict(err) || isNotFound(err) || now - h.renewedAtMs > durationMs - this.o.renewMs) lost.push(i);
        else this.o.log.warn({ shard: i, err: (err as Error).message }, 'shard lease renewal failed; will retry');
      }
    }
    if (lost.length) {
      for (const i of lost) this.held.delete(i);
      this.o.log.warn({ shards: lost }, 'shard leases lost');
      await this.o.onLost(lost);
    }

    // 3. fair share
    const counts = new Map<string, number>([...members].map((m) => [m, 0]));
    for (const l of shardLeases.values()) {
      const holder = l.spec?.holderIdentity;
      if (holder && counts.has(holder) && !expired(l)) counts.set(holder, counts.get(holder)! + 1);
    }
    counts.set(this.o.identity, this.held.size);
    const share = Math.ceil(this.o.shards / members.size);
    const someoneBelow = [...counts].some(([m, c]) => m !== this.o.identity && c < share);
    if (this.held.size > share && someoneBelow) {
      const excess = this.ownedShards().slice(share);
      const leases = excess.map((i) => this.held.get(i)!.lease);
      for (const i of excess) this.held.delete(i);
      await this.o.onLost(excess);
      await Promise.all(excess.map((i, n) => this.release(i, leases[n])));
      this.o.log.info({ shards: excess, share, replicas: members.size }, 'released shards to rebalance');
    }

    // 4. take free shards
    const acquired: number[] = [];
    for (let i = 0; i < this.o.shards; i++) {
      if (this.held.has(i)) continue;
      const l = shardLeases.get(i);
      if (l && !expired(l)) {
        this.freeSince.delete(i);
        continue;
      }
      if (!this.freeSince.has(i)) this.freeSince.set(i, now);
      const unwanted = now - this.freeSince.get(i)! >= 2 * this.o.renewMs;
      if (this.held.size >= share && !unwanted) continue;
      const lease = await this.acquire(i, l, now);
      if (lease) {
        this.held.set(i, { lease, renewedAtMs: now });
        this.freeSince.delete(i);
        acquired.push(i);
      }
    }
    if (acquired.length) {
      this.o.log.info({ shards: acquired, replicas: members.size, share }, 'shard leases acquired');
      await this.o.onAcquired(acquired);
    }
  }

  private async dropUnrenewed(now: number, durationMs: number): Promise<void> {
    const lost = [...this.held].filter(([, h]) => now - h.renewedAtMs > durationMs - this.o.renewMs).map(([i]) => i);
    if (!lost.length) return;
    for (const i of lost) this.held.delete(i);
    this.o.log.warn({ shards: lost }, 'shard leases not renewed within their duration: stopped serving them');
    await this.o.onLost(lost);
  }

  private async renewMember(now: number): Promise<void> {
    const name = this.memberName();
    try {
      const cur = await this.o.kube.getLease(this.o.namespace, name);
      const spec = {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: this.o.leaseDurationSeconds,
        renewTime: new k8s.V1MicroTime(now),
      };
      if (cur) await this.o.kube.replaceLease({ ...cur, spec: { ...cur.spec, ...spec } });
      else await this.o.kube.createLease(this.leaseObject(name, { [LEASE_KIND_LABEL]: 'member' }, spec));
    } catch (err) {
      // Written by someone else since the read (or created meanwhile): the next tick reads it again.
      if (!isConflict(err) && !isAlreadyExists(err)) this.o.log.warn({ err: (err as Error).message }, 'member lease renewal failed');
    }
  }

  private leaseObject(name: string, labels: Record<string, string>, spec: k8s.V1LeaseSpec): Lease {
    return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: this.o.namespace, labels }, spec };
  }

  private async acquire(i: number, current: Lease | undefined, now: number): Promise<Lease | undefined> {
    const time = new k8s.V1MicroTime(now);
    const spec: k8s.V1LeaseSpec = {
      holderIdentity: this.o.identity,
      leaseDurationSeconds: this.o.leaseDurationSeconds,
      acquireTime: time,
      renewTime: time,
      leaseTransitions: (current?.spec?.leaseTransitions ?? -1) + 1,
    };
    try {
      if (!current)
        return await this.o.kube.createLease(
          this.leaseObject(`edgefarm-shard-${i}`, { [LEASE_KIND_LABEL]: 'shard', [SHARD_LABEL]: String(i) }, spec),
        );
      return await this.o.kube.replaceLease({ ...current, spec });
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err))
        this.o.log.warn({ shard: i, err: (err as Error).message }, 'taking a shard lease failed');
      return undefined;
    }
  }

  private async release(i: number, lease: Lease | undefined): Promise<void> {
    if (!lease || lease.spec?.holderIdentity !== this.o.identity) return;
    await this.o.kube
      .replaceLease({ ...lease, spec: { ...lease.spec, holderIdentity: undefined, renewTime: new k8s.V1MicroTime(this.o.now()) } })
      .catch((err) => this.o.log.warn({ shard: i, err: (err as Error).message }, 'releasing a shard lease failed; it expires on its own'));
  }
}

function renewMs(l: Lease): number {
  const t = l.spec?.renewTime as unknown;
  return t === undefined || t === null ? 0 : new Date(t as string | number | Date).getTime();
}
