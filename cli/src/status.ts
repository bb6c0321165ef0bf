/**
 * `edgefarm status [NODE...]`: the fleet at a glance, from the EdgeNodes (what the provider and the registrar write)
 * and their Nodes. {@link statusRows} computes the rows (pure); {@link status} reads, prints, and fails with
 * EXIT.unhealthy when a listed node is disconnected or not Ready, so a script can act on it.
 */
import { shardOf } from '@edgefarm/proto';
import { identityOf } from '@edgefarm/registrar';
import { kube, nodeArg, type AdminContext } from './admin.js';
import { CliError, EXIT } from './errors.js';
import type { EdgeNodeView, LeaseView, NodeView } from './kube.js';
import { age, structured, table, type Format } from './output.js';

export interface StatusRow {
  name: string;
  connected: boolean;
  lastHeartbeatTime: string | null;
  /** Milliseconds since the last heartbeat; null without one. */
  heartbeatAgeMs: number | null;
  desiredSequence: number | null;
  appliedSequence: number | null;
  /** desired - applied; null when either is unknown. */
  lag: number | null;
  pods: number | null;
  agentVersion: string | null;
  publicKey: string | null;
  credentialsExpireAt: string | null;
  /** The Node's Ready condition: True, False, Unknown, or null when there is no Node. */
  ready: string | null;
  nodeIp: string | null;
  /** The provider replica holding the node's shard Lease (-o wide, when the shard Leases tell). */
  provider?: string | null;
  /** Connected and Ready. */
  healthy: boolean;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** One row per EdgeNode (sorted by name), joined with the Node of the same name. */
export function statusRows(edgeNodes: EdgeNodeView[], nodes: NodeView[], now: number): StatusRow[] {
  const byName = new Map(nodes.map((n) => [n.metadata?.name ?? '', n]));
  return edgeNodes
    .map((en): StatusRow => {
      const name = en.metadata?.name ?? '';
      const node = byName.get(name);
      const s = en.status ?? {};
      const id = identityOf(en);
      const beat = typeof s.lastHeartbeatTime === 'string' ? Date.parse(s.lastHeartbeatTime) : NaN;
      const desired = num(s.desiredSequence);
      const applied = num(s.appliedSequence);
      const ready = node ? (node.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? 'Unknown') : null;
      const connected = s.connected === true;
      return {
        name,
        connected,
        lastHeartbeatTime: Number.isNaN(beat) ? null : s.lastHeartbeatTime!,
        heartbeatAgeMs: Number.isNaN(beat) ? null : Math.max(0, now - beat),
        desiredSequence: desired,
        appliedSequence: applied,
        lag: desired !== null && applied !== null ? desired - applied : null,
        pods: num(s.podCount),
        agentVersion: (s.agentVersion || node?.status?.nodeInfo?.kubeletVersion) ?? null,
        publicKey: id?.publicKey ?? null,
        credentialsExpireAt: id?.expiresAt ?? null,
        ready,
        nodeIp: node?.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? null,
        healthy: connected && ready === 'True',
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The provider's shard Leases: `edgefarm-shard-<i>` labelled so (provider/src/shard/shards.ts). */
export const SHARD_LEASE_SELECTOR = 'edgefarm.io/provider-lease=shard';
const SHARD_LABEL = 'edgefarm.io/shard';

/**
 * Per node name, the holder of its shard Lease; undefined when the Leases do not tell (none, or not exactly shards
 * 0..n-1, so the shard count is unknown).
 */
export function providerOf(leases: LeaseView[]): ((node: string) => string | null) | undefined {
  const holders = new Map<number, string | null>();
  for (const l of leases) {
    const i = Number(l.metadata?.labels?.[SHARD_LABEL]);
    if (!Number.isInteger(i) || i < 0 || holders.has(i)) return undefined;
    holders.set(i, l.spec?.holderIdentity || null);
  }
  const n = holders.size;
  if (n === 0 || [...holders.keys()].some((i) => i >= n)) return undefined;
  return (node) => holders.get(shardOf(node, n)) ?? null;
}

/** "in 3d", "expired", "not joined". */
export function expiryText(expiresAt: string | null, now: number): string {
  if (!expiresAt) return 'not joined';
  const left = Date.parse(expiresAt) - now;
  if (Number.isNaN(left)) return '?';
  return left <= 0 ? 'expired' : `in ${age(left)}`;
}

export function statusTable(rows: StatusRow[], now: number, wide: boolean): string {
  const headers = ['NAME', 'CONNECTED', 'LAST HEARTBEAT', 'LAG', 'PODS', 'AGENT VERSION', 'CREDENTIALS', 'READY'];
  if (wide) headers.push('NODE IP', 'PROVIDER', 'KEY');
  const dash = (v: string | number | null) => (v === null ? '-' : String(v));
  return table(
    headers,
    rows.map((r) => [
      r.name,
      String(r.connected),
      r.heartbeatAgeMs === null ? '-' : `${age(r.heartbeatAgeMs)} ago`,
      dash(r.lag),
      dash(r.pods),
      dash(r.agentVersion),
      expiryText(r.credentialsExpireAt, now),
      dash(r.ready),
      ...(wide ? [dash(r.nodeIp), dash(r.provider ?? null), dash(r.publicKey)] : []),
    ]),
  );
}

/**
 * Prints the rows of `names` (all EdgeNodes when empty). Fails with EXIT.notFound when a named node has no EdgeNode
 * (after printing the others), else EXIT.unhealthy when a printed node is disconnected or not Ready.
 */
export async function status(ctx: AdminContext, names: string[], format: Format): Promise<void> {
  names.forEach(nodeArg);
  const [edgeNodes, nodes] = await Promise.all([
    kube('listing EdgeNodes', () => ctx.kube.listEdgeNodes()),
    kube('listing Nodes', () => ctx.kube.listNodes()),
  ]);
  const now = ctx.now();
  const want = new Set(names);
  const rows = statusRows(edgeNodes, nodes, now).filter((r) => want.size === 0 || want.has(r.name));
  if (format !== 'table') {
    // which replica serves a node, when the shard Leases can be read (an admin may not be allowed to): else unknown
    const holder = providerOf(await ctx.kube.listLeases(ctx.namespace, SHARD_LEASE_SELECTOR).catch(() => []));
    for (const r of rows) r.provider = holder ? holder(r.name) : null;
  }
  const missing = names.filter((n) => !rows.some((r) => r.name === n));
  const data = structured(format, rows);
  ctx.out(data ?? (rows.length > 0 ? statusTable(rows, now, format === 'wide') : 'no edge nodes\n'));
  if (missing.length > 0) throw new CliError(EXIT.notFound, `no EdgeNode ${missing.join(', ')}`);
  const sick = rows.filter((r) => !r.healthy);
  if (sick.length > 0)
    throw new CliError(
      EXIT.unhealthy,
      `${sick.length} of ${rows.length} node(s) disconnected or not Ready: ${sick.map((r) => r.name).join(', ')}`,
    );
}
