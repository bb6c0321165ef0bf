/**
 * Benchmark 5, agent footprint: the real edge-agent of site edge-1 (containerd, CRI) with 10 running pods; its VmRSS
 * and RssAnon (/proc/PID/status) sampled every `everyS` seconds over `durationS`; p50/p95/max, and its CPU over the
 * window. VmRSS counts the node binary's mapped code (~50 MiB, shared, paged from disk); RssAnon is the agent's own.
 */
import { deletePods, podStartup } from './pods.js';
import { pidOf, procSample } from './probes.js';
import { nowMs, sleep, summarize, type Summary } from './stats.js';

export interface FootprintOptions {
  kubeconfig: string;
  state: string;
  node: string;
  pods: number;
  durationS: number;
  everyS: number;
  label: string;
  log: (line: string) => void;
}

export interface FootprintResult {
  node: string;
  pods: number;
  podsReady: number;
  durationS: number;
  /** VmRSS in MiB over the samples. */
  rssMiB: Summary;
  /** RssAnon in MiB over the samples (private memory). */
  anonMiB: Summary;
  cpuSPerMin: number;
  samplesMiB: number[];
}

/** KiB to MiB, one decimal. */
const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;

export async function agentFootprint(o: FootprintOptions): Promise<FootprintResult> {
  o.log(`footprint: ${o.pods} pods on ${o.node}, then the agent's RSS every ${o.everyS} s for ${o.durationS} s`);
  const pods = await podStartup({
    kubeconfig: o.kubeconfig,
    node: o.node,
    namespace: 'default',
    n: o.pods,
    ratePerS: 10,
    timeoutMs: 120_000,
    label: o.label,
  });
  const pid = await pidOf(o.state, `agent-${o.node}`);
  const samples: number[] = [];
  const anon: number[] = [];
  const first = await procSample(pid);
  const t0 = nowMs();
  let last = first;
  while (nowMs() - t0 < o.durationS * 1000) {
    const s = await procSample(pid);
    if (!s) throw new Error(`agent-${o.node} (pid ${pid}) is gone`);
    samples.push(mib(s.rssKiB));
    anon.push(mib(s.anonKiB));
    last = s;
    await sleep(o.everyS * 1000);
  }
  const windowS = (nowMs() - t0) / 1000;
  await deletePods(o.kubeconfig, 'default', o.label);
  return {
    node: o.node,
    pods: o.pods,
    podsReady: pods.filter((p) => p.ready !== undefined).length,
    durationS: Math.round(windowS),
    rssMiB: summarize(samples),
    anonMiB: summarize(anon),
    cpuSPerMin: first && last ? Math.round(((last.cpuS - first.cpuS) / windowS) * 60 * 100) / 100 : NaN,
    samplesMiB: samples,
  };
}
