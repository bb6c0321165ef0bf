/**
 * NodeFacts: what the served nodes' heartbeats say, for every part that needs it: the site's own address (pods'
 * hostIP), its allocatable resources (the agent's, minus the EdgeNode's reserved: what the Node reports too),
 * whether its link is up, and when it was last heard of.
 *
 * One writer, the NodeController: it records the heartbeats of the nodes it serves (never an older one over a newer
 * one, by the hub's storage time), the reserved resources of their policy, forgets a node given up, and announces a
 * connectivity flip when it observes one. Everything else reads, or listens to the flips.
 */
import type { edge } from '@edgefarm/proto';
import { subtractReserved } from '../kube/quantity.js';
import { isConnected } from './node.js';

/** A node's last heartbeat and the hub's storage time of it (ms). */
export interface LastHeartbeat {
  heartbeat: edge.NodeHeartbeat;
  atMs: number;
}

/** The read side of {@link NodeFacts}. */
export interface NodeFactsReader {
  /** The site's address as its agent reports it (pods' status.hostIP). */
  hostIP(node: string): string | undefined;
  /** Allocatable resources (the agent's minus the EdgeNode's reserved), once the node has reported. */
  allocatable(node: string): Record<string, string> | undefined;
  /** Whether the node's heartbeats are fresh now. */
  connected(node: string): boolean;
  /** Hub storage time of the last heartbeat and the desired-state sequence it reported applied. */
  lastHeartbeat(node: string): { atMs: number; appliedSequence: number } | undefined;
  /** Since when a disconnected node was last heard of (undefined while connected, or never heard of). */
  offlineSince(node: string): Date | undefined;
  /** Calls `listener` on every connectivity flip the NodeController observes (a reconnect: `connected` true). */
  onConnectivity(listener: (node: string, connected: boolean) => void): void;
  /** The unsafe sysctls pods on the node may set (its EdgeNode's spec.allowedUnsafeSysctls). */
  allowedUnsafeSysctls?(node: string): readonly string[];
}

export interface NodeFactsOptions {
  /**
   * A heartbeat older than this (by the hub's storage time) makes the node disconnected. 12 s: the agent beats every
   * 5 s, so two lost beats plus slack; with the NodeController's 2 s scan a dead link shows within ~14 s.
   */
  heartbeatStaleMs?: number;
  now?: () => Date;
}

interface Facts {
  last?: LastHeartbeat;
  reserved: Record<string, string | number>;
  allowedUnsafeSysctls?: readonly string[];
}

export class NodeFacts implements NodeFactsReader {
  readonly heartbeatStaleMs: number;
  private readonly now: () => Date;
  private readonly nodes = new Map<string, Facts>();
  private readonly listeners: ((node: string, connected: boolean) => void)[] = [];

  constructor(options: NodeFactsOptions = {}) {
    this.heartbeatStaleMs = options.heartbeatStaleMs ?? 12_000;
    this.now = options.now ?? (() => new Date());
  }

  /** Keeps the heartbeat unless the one held is newer; false when it was dropped as older. */
  record(node: string, heartbeat: edge.NodeHeartbeat, storedAtMs: number): boolean {
    const f = this.entry(node);
    if (f.last && storedAtMs < f.last.atMs) return false;
    f.last = { heartbeat, atMs: storedAtMs };
    return true;
  }

  setReserved(node: string, reserved: Record<string, string | number>): void {
    this.entry(node).reserved = reserved;
  }

  setAllowedUnsafeSysctls(node: string, sysctls: readonly string[]): void {
    this.entry(node).allowedUnsafeSysctls = sysctls;
  }

  allowedUnsafeSysctls(node: string): readonly string[] {
    return this.nodes.get(node)?.allowedUnsafeSysctls ?? [];
  }

  forget(node: string): void {
    this.nodes.delete(node);
  }

  /** Tells the listeners that the node's link went up or down. */
  connectivityChanged(node: string, connected: boolean): void {
    for (const l of this.listeners) l(node, connected);
  }

  onConnectivity(listener: (node: string, connected: boolean) => void): void {
    this.listeners.push(listener);
  }

  last(node: string): LastHeartbeat | undefined {
    return this.nodes.get(node)?.last;
  }

  hostIP(node: string): string | undefined {
    return this.last(node)?.heartbeat.addresses.find((a) => a.type === 'InternalIP')?.address;
  }

  allocatable(node: string): Record<string, string> | undefined {
    const f = this.nodes.get(node);
    return f?.last ? subtractReserved(f.last.heartbeat.allocatable, f.reserved) : undefined;
  }

  connected(node: string): boolean {
    return isConnected({ heartbeatAtMs: this.last(node)?.atMs }, this.now().getTime(), this.heartbeatStaleMs);
  }

  lastHeartbeat(node: string): { atMs: number; appliedSequence: number } | undefined {
    const last = this.last(node);
    return last ? { atMs: last.atMs, appliedSequence: Number(last.heartbeat.appliedSequence) } : undefined;
  }

  offlineSince(node: string): Date | undefined {
    if (this.connected(node)) return undefined;
    const last = this.last(node);
    return last ? new Date(last.atMs) : undefined;
  }

  private entry(node: string): Facts {
    let f = this.nodes.get(node);
    if (!f) this.nodes.set(node, (f = { reserved: {} }));
    return f;
  }
}
