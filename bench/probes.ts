/**
 * What the scale benchmarks sample from outside the processes: CPU time and RSS of a PID (/proc), and the byte
 * counters of the hub nats-server's monitoring endpoint (/varz for all of it, /leafz per leaf connection).
 */
import { readFile } from 'node:fs/promises';

const CLK_TCK = 100;

export interface ProcSample {
  cpuS: number;
  /** VmRSS: every resident page, the executable's mapped code included. */
  rssKiB: number;
  /** RssAnon: the process's private memory (heap, stacks), what it costs beyond the shared binary. */
  anonKiB: number;
}

/** CPU seconds (user + system), VmRSS and RssAnon of a process; undefined when it is gone. */
export async function procSample(pid: number): Promise<ProcSample | undefined> {
  try {
    const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuS = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    const anonKiB = Number(/RssAnon:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { cpuS, rssKiB, anonKiB };
  } catch {
    return undefined;
  }
}

/** The PID recorded by hack/lib.sh's ef_start for a component. */
export async function pidOf(state: string, name: string): Promise<number> {
  return Number((await readFile(`${state}/pids/${name}.pid`, 'utf8')).trim());
}

/** Two samples added: the sample of both processes (or groups) together. */
export function addSamples(a: ProcSample, b: ProcSample): ProcSample {
  return { cpuS: a.cpuS + b.cpuS, rssKiB: a.rssKiB + b.rssKiB, anonKiB: a.anonKiB + b.anonKiB };
}

/** Sum of several processes' samples (absent ones left out). */
export async function procSum(pids: readonly number[]): Promise<ProcSample> {
  const samples = await Promise.all(pids.map(procSample));
  return samples.reduce<ProcSample>((a, s) => (s ? addSamples(a, s) : a), { cpuS: 0, rssKiB: 0, anonKiB: 0 });
}

export interface WireSample {
  /** All bytes into and out of the hub server (clients and leaves). */
  totalBytes: number;
  /** Bytes on the leaf connections whose remote server name passes the filter. */
  leafBytes: number;
  /** Bytes on every leaf connection. */
  allLeafBytes: number;
}

/** Byte counters of the hub server at its monitoring port; `leaf` picks the leaf connections counted in leafBytes. */
export async function wireSample(monitorUrl: string, leaf: (name: string) => boolean): Promise<WireSample> {
  const varz = (await (await fetch(`${monitorUrl}/varz`)).json()) as { in_bytes: number; out_bytes: number };
  const leafz = (await (await fetch(`${monitorUrl}/leafz`)).json()) as { leafs?: { name: string; in_bytes: number; out_bytes: number }[] };
  let leafBytes = 0;
  let allLeafBytes = 0;
  for (const l of leafz.leafs ?? []) {
    allLeafBytes += l.in_bytes + l.out_bytes;
    if (leaf(l.name)) leafBytes += l.in_bytes + l.out_bytes;
  }
  return { totalBytes: varz.in_bytes + varz.out_bytes, leafBytes, allLeafBytes };
}
