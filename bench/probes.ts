/**
 * What the scale benchmarks sample from outside the processes: CPU time and RSS of a PID (/proc), and the byte
 * counters of the hub nats-server's monitoring endpoint (/varz for all of it, /leafz per leaf connection).
 */
import { readFile, readdir } from 'node:fs/promises';

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

/** The PIDs recorded for those of `names` that have a pid file (absent components left out). */
export async function pidsOf(state: string, names: readonly string[]): Promise<number[]> {
  const pids = await Promise.all(names.map((n) => pidOf(state, n).catch(() => 0)));
  return pids.filter((x) => x > 0);
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

/**
 * The machine's CPU time so far, every CPU (/proc/stat, USER_HZ ticks), in seconds: `busyS` is what its CPUs ran
 * (user, nice, system, irq, softirq; guest time is inside user and nice already), `stealS` the time a virtual CPU wanted to
 * run while the host ran something else. A VM on a busy host shows the second: the work waits as if the machine had
 * fewer cores, and nothing inside the machine is doing it.
 */
export async function machineCpuS(): Promise<{ busyS: number; stealS: number }> {
  const [cpu] = (await readFile('/proc/stat', 'utf8')).split('\n');
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu!.trim().split(/\s+/).slice(1).map(Number);
  return { busyS: (user + nice + system + irq + softirq) / 100, stealS: steal / 100 };
}

/** PIDs of every process whose command name (/proc/PID/comm, at most 15 characters) starts with `prefix`. */
export async function pidsByComm(prefix: string): Promise<number[]> {
  const out: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const comm = await readFile(`/proc/${e}/comm`, 'utf8').catch(() => '');
    if (comm.startsWith(prefix)) out.push(Number(e));
  }
  return out;
}

/**
 * Where the CPU went between two moments: CPU seconds per second of each named group of processes (groups resolve
 * their PIDs at both ends, so a process started inside the window counts from its start), `machine` for every CPU
 * (/proc/stat, what the CPUs ran), `rest` for what no group holds (processes that ended inside the window, such as
 * runc and mount, the kernel's own work, everything else) and `steal`, the time the host did not run the machine's
 * virtual CPUs when they had work (not inside `machine`; see machineCpuS).
 */
export type CpuSplit = Record<string, number> & { machine: number; rest: number; steal: number };

export async function cpuWindow(groups: Record<string, () => Promise<number[]>>): Promise<() => Promise<CpuSplit>> {
  const sample = async () => {
    const [machine, ...perGroup] = await Promise.all([
      machineCpuS(),
      ...Object.values(groups).map(async (pids) => {
        const list = await pids().catch(() => []);
        const samples = await Promise.all(list.map(procSample));
        return new Map(list.flatMap((pid, i) => (samples[i] ? [[pid, samples[i].cpuS] as const] : [])));
      }),
    ]);
    return { machine, perGroup, at: performance.now() };
  };
  const before = await sample();
  return async () => {
    const after = await sample();
    const s = (after.at - before.at) / 1000;
    const r = (x: number) => Math.round((x / s) * 100) / 100;
    const split: Record<string, number> = {};
    let held = 0;
    Object.keys(groups).forEach((name, i) => {
      let cpu = 0;
      for (const [pid, cpuS] of after.perGroup[i]!) cpu += cpuS - (before.perGroup[i]!.get(pid) ?? 0);
      held += cpu;
      split[name] = r(cpu);
    });
    const machine = after.machine.busyS - before.machine.busyS;
    return { ...split, machine: r(machine), rest: r(Math.max(0, machine - held)), steal: r(after.machine.stealS - before.machine.stealS) };
  };
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
