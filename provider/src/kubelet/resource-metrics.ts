/**
 * /metrics/resource: the kubelet's resource metrics (pkg/kubelet/metrics/collectors/resource_metrics.go), rendered
 * from a StatsSummary in the Prometheus text format, with the same names, help, labels and sample timestamps (the
 * stats' time), which is what metrics-server scrapes. Families come in name order, labels in name order, as the
 * Prometheus registry writes them. A summary that could not be had renders only scrape_error 1.
 */
import type { CpuStats, MemoryStats, StatsSummary } from './edge-streams.js';

export const RESOURCE_METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

interface Family {
  help: string;
  type: 'counter' | 'gauge';
  samples: string[];
}

const FAMILIES: Record<string, Omit<Family, 'samples'>> = {
  container_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the container in core-seconds', type: 'counter' },
  container_memory_working_set_bytes: { help: '[STABLE] Current working set of the container in bytes', type: 'gauge' },
  container_start_time_seconds: { help: '[STABLE] Start time of the container since unix epoch in seconds', type: 'gauge' },
  node_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the node in core-seconds', type: 'counter' },
  node_memory_working_set_bytes: { help: '[STABLE] Current working set of the node in bytes', type: 'gauge' },
  pod_cpu_usage_seconds_total: { help: '[STABLE] Cumulative cpu time consumed by the pod in core-seconds', type: 'counter' },
  pod_memory_working_set_bytes: { help: '[STABLE] Current working set of the pod in bytes', type: 'gauge' },
  resource_scrape_error: { help: '[STABLE] 1 if there was an error while getting container metrics, 0 otherwise', type: 'gauge' },
  scrape_error: { help: '[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise', type: 'gauge' },
};

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(l: Record<string, string>): string {
  const keys = Object.keys(l).sort();
  return keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(l[k]!)}"`).join(',')}}` : '';
}

function timeMs(t: string | undefined): string {
  const ms = t ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ` ${ms}` : '';
}

/** Renders the exposition; `summary` undefined means the scrape failed. */
export function renderResourceMetrics(summary: StatsSummary | undefined): string {
  const fam = new Map<string, string[]>(Object.keys(FAMILIES).map((k) => [k, []]));
  const add = (name: string, l: Record<string, string>, value: number, time?: string) =>
    fam.get(name)!.push(`${name}${labels(l)} ${value}${timeMs(time)}`);
  const cpu = (name: string, l: Record<string, string>, c: CpuStats | undefined) => {
    if (c?.usageCoreNanoSeconds !== undefined) add(name, l, c.usageCoreNanoSeconds / 1e9, c.time);
  };
  const mem = (name: string, l: Record<string, string>, m: MemoryStats | undefined) => {
    if (m?.workingSetBytes !== undefined) add(name, l, m.workingSetBytes, m.time);
  };
  if (summary) {
    cpu('node_cpu_usage_seconds_total', {}, summary.node.cpu);
    mem('node_memory_working_set_bytes', {}, summary.node.memory);
    for (const pod of summary.pods) {
      const pl = { pod: pod.podRef.name, namespace: pod.podRef.namespace };
      for (const c of pod.containers) {
        const cl = { ...pl, container: c.name };
        const start = c.startTime ? Date.parse(c.startTime) : NaN;
        if (Number.isFinite(start) && start > 0) add('container_start_time_seconds', cl, start / 1000);
        cpu('container_cpu_usage_seconds_total', cl, c.cpu);
        mem('container_memory_working_set_bytes', cl, c.memory);
      }
      cpu('pod_cpu_usage_seconds_total', pl, pod.cpu);
      mem('pod_memory_working_set_bytes', pl, pod.memory);
    }
  }
  const failed = summary ? 0 : 1;
  add('resource_scrape_error', {}, failed);
  add('scrape_error', {}, failed);
  const out: string[] = [];
  for (const [name, samples] of fam) {
    if (samples.length === 0) continue;
    const f = FAMILIES[name]!;
    out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`, ...samples);
  }
  return `${out.join('\n')}\n`;
}
