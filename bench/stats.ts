/** Percentiles (nearest rank) and the small table the bench prints. */
export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    n: s.length,
    p50: r(rank(50)),
    p90: r(rank(90)),
    p95: r(rank(95)),
    p99: r(rank(99)),
    min: r(s[0] ?? NaN),
    max: r(s[s.length - 1] ?? NaN),
  };
}

export function table(rows: [string, Summary][]): string {
  const w = Math.max(...rows.map(([n]) => n.length));
  const f = (v: number) => v.toFixed(1).padStart(9);
  const head = `${'figure (ms)'.padEnd(w)}  ${'n'.padStart(4)} ${'p50'.padStart(9)} ${'p90'.padStart(9)} ${'p99'.padStart(9)} ${'max'.padStart(9)}`;
  return [head, ...rows.map(([n, s]) => `${n.padEnd(w)}  ${String(s.n).padStart(4)} ${f(s.p50)} ${f(s.p90)} ${f(s.p99)} ${f(s.max)}`)].join(
    '\n',
  );
}

/** Wall-clock milliseconds with sub-ms resolution, comparable across processes on one host. */
export const nowMs = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
