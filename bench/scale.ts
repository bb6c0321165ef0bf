/**
 * Benchmark 3, scale with hollow sites: the fleet grows step by step (e.g. 100, 1,000, 3,000 hollow nodes); at each
 * step the new nodes' EdgeNodes are created, their hollow sites started, their pods created (bound to the node), and
 * then, once every node is EdgeConnected and every pod Ready, the provider and the wire are measured over an idle
 * window. See bench/README.md for each figure.
 */
import { cpus } from 'node:os';
import { hollowNodeName, type HollowFleet } from './fleet.js';
import type { Cluster } from './cluster.js';
import { addSamples, machineCpuS, pidOf, pidsOf, procSample, procSum, wireSample, type ProcSample } from './probes.js';
import { nowMs, sleep } from './stats.js';

export interface ScaleStep {
  nodes: number;
  podsPerNode: number;
}

export interface ScaleContext {
  fleet: HollowFleet;
  cluster: Cluster;
  state: string;
  hubMonitorUrl: string;
  label: string;
  idleS: number;
  log: (line: string) => void;
}

export interface ScalePoint {
  nodes: number;
  pods: number;
  hollowSites: number;
  /** From the first new EdgeNode created to every hollow node EdgeConnected=True (s); NaN when not reached. */
  nodesConnectedS: number;
  notConnected: number;
  /** From the first new pod created to every pod of the fleet Ready (s). */
  podsReadyS: number;
  podsNotReady: number;
  idleWindowS: number;
  provider: { rssMiB: number; rssKiBPerNodeAboveBaseline: number; cpuSPerMin: number; cpuMsPerNodePerMin: number };
  wire: { bytesPerNodePerS: number; leavesBytesPerNodePerS: number; providerBytesPerNodePerS: number };
  /**
   * Lease renewals seen by the bench's watch: nodes with a gap over the lease duration, the largest gap, how often
   * the watch itself ended (a gap across one may be the watch's), and nodes the node lifecycle controller marked
   * Ready=Unknown (a Lease that really expired).
   */
  lease: { missed: number; maxGapS: number; renewals: number; watchEnds: number; nodesLost: number };
  /** The hollow sites themselves (every hollow-site process and leaf nats-server), for context. */
  hollow: { rssMiB: number; cpuSPerMin: number };
  /**
   * Where the machine's CPU went over the idle window (CPU s per minute of each group of processes): what decides
   * how many hollow nodes fit on it. `hollowAgents` and `hollowLeaves` split `hollow`; `controlPlane` is etcd and
   * kube-apiserver; `machine` is /proc/stat's busy time of every CPU (everything, the bench itself included);
   * `steal` the time the host did not run the machine's virtual CPUs while they had work (machineCpuS).
   */
  cpu: { hollowAgents: number; hollowLeaves: number; hub: number; provider: number; controlPlane: number; machine: number; steal: number };
  /** What the apiserver served over the idle window: requests per second by "VERB resource", the busiest first. */
  apiRequestsPerS: Record<string, number>;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Each group of processes the scale point reports besides the provider (absent pid files leave a group empty). */
async function processGroups(ctx: ScaleContext): Promise<[agents: number[], leaves: number[], hub: number[], controlPlane: number[]]> {
  const pids = (names: string[]) => pidsOf(ctx.state, names);
  return Promise.all([
    pids(ctx.fleet.sites.map((s) => `agent-${s}`)),
    pids(ctx.fleet.sites.map((s) => `nats-${s}`)),
    pids(['hub', 'hub-1', 'hub-2', 'hub-3']),
    pids(['etcd', 'kube-apiserver']),
  ]);
}

/** Provider RSS (KiB) before any hollow node: the baseline the per-node RSS is computed above. */
export async function providerBaseline(state: string): Promise<ProcSample | undefined> {
  return procSample(await pidOf(state, 'provider-1'));
}

export async function scaleStep(ctx: ScaleContext, step: ScaleStep, baseline: ProcSample | undefined): Promise<ScalePoint> {
  const { fleet, cluster, log } = ctx;
  const before = fleet.nodes;
  const added = Array.from({ length: step.nodes - before }, (_, i) => hollowNodeName(before + i + 1));
  const t0 = nowMs();
  log(`scale ${step.nodes}: ${added.length} EdgeNodes, hollow sites`);
  await cluster.createEdgeNodes(added);
  await fleet.grow(step.nodes);
  const nodes = fleet.nodeNames();
  const allConnected = () => nodes.every((n) => cluster.connected.get(n) === 'True');
  const connected = await cluster.until(allConnected, 120_000 + step.nodes * 100);
  const nodesConnectedS = connected ? round((nowMs() - t0) / 1000) : NaN;
  log(`scale ${step.nodes}: nodes connected ${connected ? `after ${nodesConnectedS} s` : 'NOT all'}`);

  const newPods = added.flatMap((node) => Array.from({ length: step.podsPerNode }, (_, j) => ({ name: `hp-${node}-${j}`, node })));
  const t1 = nowMs();
  const failed = await cluster.createPods(newPods, ctx.label);
  if (failed) log(`scale ${step.nodes}: ${failed} pod creates failed`);
  const pods = [...cluster.pods].filter(([, p]) => p.gone === undefined).map(([name]) => name);
  const expected = new Set([...pods, ...newPods.map((p) => p.name)]);
  const notReady = () => [...expected].filter((n) => cluster.pods.get(n)?.ready === undefined).length;
  const ready = await cluster.until(() => notReady() === 0, 120_000 + newPods.length * 60);
  const podsReadyS = newPods.length === 0 ? 0 : ready ? round((nowMs() - t1) / 1000) : NaN;
  log(`scale ${step.nodes}: ${expected.size} pods, ${ready ? `all Ready after ${podsReadyS} s` : `${notReady()} NOT Ready`}`);

  await sleep(10_000); // settle: the last status writes, EdgeNode status refreshes
  const provider = await pidOf(ctx.state, 'provider-1');
  const groups = await processGroups(ctx);
  const isHollowLeaf = (name: string) => fleet.sites.includes(name);
  const sampleGroups = () => Promise.all(groups.map((pids) => procSum(pids)));
  const apiRequests = () => cluster.apiRequests().catch(() => new Map<string, number>());
  const [p0, w0, g0, m0, r0] = await Promise.all([
    procSample(provider),
    wireSample(ctx.hubMonitorUrl, isHollowLeaf),
    sampleGroups(),
    machineCpuS(),
    apiRequests(),
  ]);
  const w = nowMs();
  await sleep(ctx.idleS * 1000);
  const [p1, w1, g1, m1, r1] = await Promise.all([
    procSample(provider),
    wireSample(ctx.hubMonitorUrl, isHollowLeaf),
    sampleGroups(),
    machineCpuS(),
    apiRequests(),
  ]);
  const windowS = (nowMs() - w) / 1000;
  const apiRequestsPerS = Object.fromEntries(
    [...r1]
      .map(([k, v]) => [k, round((v - (r0.get(k) ?? 0)) / windowS, 1)] as const)
      .filter(([, rate]) => rate >= 0.1)
      .sort((a, b) => b[1] - a[1]),
  );
  const perMin = (cpuS: number) => round((cpuS / windowS) * 60, 2);
  const [agentsS, leavesS, hubS, controlPlaneS] = g1.map((x, i) => perMin(x.cpuS - g0[i]!.cpuS));
  // The hollow sites: their agent processes and leaf servers together.
  const h0 = addSamples(g0[0]!, g0[1]!);
  const h1 = addSamples(g1[0]!, g1[1]!);
  const n = nodes.length;
  const cpu = p0 && p1 ? p1.cpuS - p0.cpuS : NaN;
  const leaves = w1.leafBytes - w0.leafBytes;
  const providerBytes = w1.totalBytes - w1.allLeafBytes - (w0.totalBytes - w0.allLeafBytes);
  return {
    nodes: n,
    pods: expected.size,
    hollowSites: fleet.sites.length,
    nodesConnectedS,
    notConnected: nodes.filter((x) => cluster.connected.get(x) !== 'True').length,
    podsReadyS,
    podsNotReady: notReady(),
    idleWindowS: round(windowS),
    provider: {
      rssMiB: round((p1?.rssKiB ?? NaN) / 1024),
      rssKiBPerNodeAboveBaseline: round(((p1?.rssKiB ?? NaN) - (baseline?.rssKiB ?? NaN)) / n),
      cpuSPerMin: round((cpu / windowS) * 60, 2),
      cpuMsPerNodePerMin: round(((cpu / windowS) * 60 * 1000) / n, 2),
    },
    wire: {
      bytesPerNodePerS: round((w1.totalBytes - w0.totalBytes) / windowS / n),
      leavesBytesPerNodePerS: round(leaves / windowS / n),
      providerBytesPerNodePerS: round(providerBytes / windowS / n),
    },
    lease: cluster.leaseGaps(nodes),
    hollow: { rssMiB: round(h1.rssKiB / 1024), cpuSPerMin: perMin(h1.cpuS - h0.cpuS) },
    cpu: {
      hollowAgents: agentsS!,
      hollowLeaves: leavesS!,
      hub: hubS!,
      provider: perMin(cpu),
      controlPlane: controlPlaneS!,
      machine: perMin(m1.busyS - m0.busyS),
      steal: perMin(m1.stealS - m0.stealS),
    },
    apiRequestsPerS,
  };
}

export function scaleTable(points: readonly ScalePoint[]): string {
  const cols: [string, (p: ScalePoint) => string | number][] = [
    ['nodes', (p) => p.nodes],
    ['pods', (p) => p.pods],
    ['connect s', (p) => p.nodesConnectedS],
    ['ready s', (p) => p.podsReadyS],
    ['prov RSS MiB', (p) => p.provider.rssMiB],
    ['KiB/node', (p) => p.provider.rssKiBPerNodeAboveBaseline],
    ['prov CPU s/min', (p) => p.provider.cpuSPerMin],
    ['CPU ms/node/min', (p) => p.provider.cpuMsPerNodePerMin],
    ['B/node/s', (p) => p.wire.bytesPerNodePerS],
    ['leaf B/node/s', (p) => p.wire.leavesBytesPerNodePerS],
    ['prov B/node/s', (p) => p.wire.providerBytesPerNodePerS],
    ['lease missed', (p) => p.lease.missed],
    ['max gap s', (p) => p.lease.maxGapS],
    ['nodes lost', (p) => p.lease.nodesLost],
  ];
  return table(cols, points);
}

/** Where the CPU went over each point's idle window (CPU s per minute; the machine has cpus x 60 of them). */
export function cpuTable(points: readonly ScalePoint[]): string {
  const cols: [string, (p: ScalePoint) => string | number][] = [
    ['nodes', (p) => p.nodes],
    ['hollow agents', (p) => p.cpu.hollowAgents],
    ['hollow leaves', (p) => p.cpu.hollowLeaves],
    ['hub', (p) => p.cpu.hub],
    ['provider', (p) => p.cpu.provider],
    ['etcd+apiserver', (p) => p.cpu.controlPlane],
    ['machine', (p) => p.cpu.machine],
    ['busy %', (p) => round((p.cpu.machine / (cpus().length * 60)) * 100, 0)],
    ['steal', (p) => p.cpu.steal],
  ];
  return table(cols, points);
}

/** The apiserver's busiest requests over each point's idle window, one line per point. */
export function apiRequestsText(points: readonly ScalePoint[], top = 6): string {
  return points
    .map(
      (p) =>
        `${String(p.nodes).padStart(7)}: ${
          Object.entries(p.apiRequestsPerS)
            .slice(0, top)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ') || '-'
        }`,
    )
    .join('\n');
}

function table(cols: readonly [string, (p: ScalePoint) => string | number][], points: readonly ScalePoint[]): string {
  const w = cols.map(([h]) => Math.max(h.length, 7));
  const row = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(w[i]!)).join(' ');
  return [row(cols.map(([h]) => h)), ...points.map((p) => row(cols.map(([, f]) => f(p))))].join('\n');
}
