/**
 * The kubelet stats Summary at the edge (k8s.io/kubelet/pkg/apis/stats/v1alpha1, the fields EdgeFarm fills):
 * containers from CRI ListContainerStats, pods from ListPodSandboxStats where the runtime implements it (else the
 * sum of their containers), the node from /proc/stat, /proc/meminfo and the filesystem holding the agent's data.
 * CPU rates (usageNanoCores) need two samples: the previous cumulative sample of every container (and the node)
 * is kept, as cadvisor and the kubelet's CRI stats provider do; the very first summary has no rate yet (as a
 * kubelet's first scrape), only the cumulative counters metrics-server computes its rates from. A request is answered
 * from one sample, so it stays well inside the provider's 2 s request timeout even on a loaded box.
 */
import { readFile, statfs } from 'node:fs/promises';
import { cri } from '@edgefarm/proto';
import { CriError, type RuntimeServiceClient } from '@edgefarm/cri';
import { Labels, MANAGED } from '../runtime/labels.js';

/** The JSON shapes of provider/src/kubelet/edge-streams.ts (the contract with the kubelet API server). */
interface Cpu {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}
interface Mem {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
}
interface ContainerSummary {
  name: string;
  startTime?: string;
  cpu?: Cpu;
  memory?: Mem;
  rootfs?: { time: string; usedBytes?: number };
}
interface PodSummary {
  podRef: { name: string; namespace: string; uid: string };
  startTime?: string;
  cpu?: Cpu;
  memory?: Mem;
  containers: ContainerSummary[];
}
export interface Summary {
  node: {
    nodeName: string;
    startTime?: string;
    cpu?: Cpu;
    memory?: Mem;
    fs?: { time: string; availableBytes: number; capacityBytes: number; usedBytes: number };
  };
  pods: PodSummary[];
}

interface Sample {
  ns: bigint;
  usage: bigint;
}

const GRPC_UNKNOWN = 2;
const GRPC_NOT_FOUND = 5;
const GRPC_UNIMPLEMENTED = 12;

/**
 * A ListPodSandboxStats failure the summary works around by summing pods from their containers: Unimplemented, or
 * one listed sandbox going away mid-call, which containerd 1.6 reports for the whole call as NotFound (no task any
 * more) or as Unknown "ttrpc: closed" (its shim exited while being asked for metrics). Anything else is an error.
 */
export function sandboxStatsUnavailable(err: unknown): boolean {
  if (!(err instanceof CriError)) return false;
  if (err.code === GRPC_UNIMPLEMENTED || err.code === GRPC_NOT_FOUND) return true;
  return err.code === GRPC_UNKNOWN && /ttrpc: closed/.test(err.message);
}
const USER_HZ_NS = 10_000_000n;

function iso(ns: bigint): string {
  return new Date(Number(ns / 1_000_000n)).toISOString();
}

export interface StatsOptions {
  nodeName: string;
  /** A directory on the filesystem the node's fs stats describe (the agent's data root). */
  fsPath: string;
  /** Boot time of this machine (node startTime). */
  bootTime?: Date;
  proc?: string;
}

export class StatsCollector {
  private readonly previous = new Map<string, Sample>();

  constructor(
    private readonly runtime: RuntimeServiceClient,
    private readonly options: StatsOptions,
  ) {}

  summary(): Promise<Summary> {
    return this.sample();
  }

  /** usageNanoCores from the previous cumulative sample of `key` (undefined for the first one). */
  private rate(key: string, ns: bigint, usage: bigint): number | undefined {
    const prev = this.previous.get(key);
    this.previous.set(key, { ns, usage });
    if (!prev || ns <= prev.ns || usage < prev.usage) return undefined;
    return Math.round((Number(usage - prev.usage) / Number(ns - prev.ns)) * 1e9);
  }

  private cpu(key: string, u: cri.CpuUsage | undefined): Cpu | undefined {
    if (!u?.usageCoreNanoSeconds) return undefined;
    const usage = u.usageCoreNanoSeconds.value;
    const nano = u.usageNanoCores?.value ? Number(u.usageNanoCores.value) : this.rate(key, u.timestamp, usage);
    return { time: iso(u.timestamp), usageCoreNanoSeconds: Number(usage), ...(nano !== undefined ? { usageNanoCores: nano } : {}) };
  }

  private async sample(): Promise<Summary> {
    const selector = { [Labels.managed]: MANAGED };
    const [sandboxes, stats, node] = await Promise.all([
      this.runtime.listPodSandbox({ filter: { labelSelector: selector } }),
      this.runtime.listContainerStats({ filter: { labelSelector: selector } }),
      this.nodeStats(),
    ]);
    const sandboxStats = await this.runtime.listPodSandboxStats({ filter: { labelSelector: selector } }).catch((err: unknown) => {
      if (sandboxStatsUnavailable(err)) return undefined;
      throw err;
    });
    const seen = new Set<string>(['node']);
    const pods = new Map<string, PodSummary>();
    for (const sb of sandboxes.items.filter((s) => s.state === cri.PodSandboxState.SANDBOX_READY)) {
      const uid = sb.labels[Labels.podUid] ?? sb.metadata?.uid ?? '';
      pods.set(uid, {
        podRef: { name: sb.metadata?.name ?? '', namespace: sb.metadata?.namespace ?? '', uid },
        startTime: iso(sb.createdAt),
        containers: [],
      });
    }
    const containers = await this.runtime.listContainers({ filter: { labelSelector: selector } });
    const created = new Map(containers.containers.map((c) => [c.id, c]));
    for (const s of stats.stats) {
      const a = s.attributes;
      const c = a && created.get(a.id);
      const pod = pods.get(a?.labels[Labels.podUid] ?? '');
      if (!a || !c || !pod || c.state !== cri.ContainerState.CONTAINER_RUNNING) continue;
      seen.add(a.id);
      const memory = memoryOf(s.memory);
      const cpu = this.cpu(a.id, s.cpu);
      pod.containers.push({
        name: a.metadata?.name ?? '',
        startTime: iso(c.createdAt),
        ...(cpu ? { cpu } : {}),
        ...(memory ? { memory } : {}),
        ...(s.writableLayer?.usedBytes
          ? { rootfs: { time: iso(s.writableLayer.timestamp), usedBytes: Number(s.writableLayer.usedBytes.value) } }
          : {}),
      });
    }
    for (const [uid, pod] of pods) {
      const own = sandboxStats?.stats.find((p) => p.attributes?.labels[Labels.podUid] === uid)?.linux;
      const cpu = own ? this.cpu(`pod/${uid}`, own.cpu) : sumCpu(pod.containers);
      const memory = own ? memoryOf(own.memory) : sumMemory(pod.containers);
      if (cpu) pod.cpu = cpu;
      if (memory) pod.memory = memory;
      seen.add(`pod/${uid}`);
    }
    for (const key of this.previous.keys()) if (!seen.has(key)) this.previous.delete(key);
    return { node, pods: [...pods.values()] };
  }

  private async nodeStats(): Promise<Summary['node']> {
    const proc = this.options.proc ?? '/proc';
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const time = iso(nowNs);
    const [stat, meminfo, fs] = await Promise.all([
      readFile(`${proc}/stat`, 'utf8'),
      readFile(`${proc}/meminfo`, 'utf8'),
      statfs(this.options.fsPath).catch(() => statfs('/')),
    ]);
    const ticks = (stat.split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map((t) => BigInt(t));
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const busy = [0, 1, 2, 5, 6, 7].reduce((n, i) => n + (ticks[i] ?? 0n), 0n);
    const usage = busy * USER_HZ_NS;
    const nano = this.rate('node', nowNs, usage);
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(meminfo)?.[1] ?? 0) * 1024;
    const total = kb('MemTotal');
    const available = kb('MemAvailable');
    return {
      nodeName: this.options.nodeName,
      ...(this.options.bootTime ? { startTime: this.options.bootTime.toISOString() } : {}),
      cpu: { time, usageCoreNanoSeconds: Number(usage), ...(nano !== undefined ? { usageNanoCores: nano } : {}) },
      memory: { time, availableBytes: available, usageBytes: total - kb('MemFree'), workingSetBytes: total - available },
      fs: { time, capacityBytes: fs.blocks * fs.bsize, availableBytes: fs.bavail * fs.bsize, usedBytes: (fs.blocks - fs.bfree) * fs.bsize },
    };
  }
}

function memoryOf(m: cri.MemoryUsage | undefined): Mem | undefined {
  if (!m?.workingSetBytes) return undefined;
  return {
    time: iso(m.timestamp),
    workingSetBytes: Number(m.workingSetBytes.value),
    ...(m.usageBytes ? { usageBytes: Number(m.usageBytes.value) } : {}),
    ...(m.rssBytes ? { rssBytes: Number(m.rssBytes.value) } : {}),
    ...(m.availableBytes ? { availableBytes: Number(m.availableBytes.value) } : {}),
  };
}

function sumCpu(cs: ContainerSummary[]): Cpu | undefined {
  const with_ = cs.filter((c) => c.cpu);
  if (with_.length === 0) return undefined;
  const nano = with_.every((c) => c.cpu!.usageNanoCores !== undefined) ? with_.reduce((n, c) => n + c.cpu!.usageNanoCores!, 0) : undefined;
  return {
    time: with_[0]!.cpu!.time,
    usageCoreNanoSeconds: with_.reduce((n, c) => n + (c.cpu!.usageCoreNanoSeconds ?? 0), 0),
    ...(nano !== undefined ? { usageNanoCores: nano } : {}),
  };
}

function sumMemory(cs: ContainerSummary[]): Mem | undefined {
  const with_ = cs.filter((c) => c.memory);
  if (with_.length === 0) return undefined;
  const sum = (f: (m: Mem) => number | undefined) => with_.reduce((n, c) => n + (f(c.memory!) ?? 0), 0);
  return {
    time: with_[0]!.memory!.time,
    workingSetBytes: sum((m) => m.workingSetBytes),
    usageBytes: sum((m) => m.usageBytes),
    rssBytes: sum((m) => m.rssBytes),
  };
}
