/** Reading the apiserver's Prometheus text exposition for the benchmarks. */

/**
 * Sums `apiserver_request_total` by "VERB resource[/subresource]" (a request to no resource, such as GET /api, counts
 * under its group or "-"). Every other line, and any line that does not parse, is skipped: the counts are context for
 * a table, never a verdict.
 */
export function requestCounts(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^apiserver_request_total\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const labels = new Map([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!]));
    const verb = labels.get('verb');
    const value = Number(m[2]);
    if (!verb || !Number.isFinite(value)) continue;
    const sub = labels.get('subresource');
    const key = `${verb} ${labels.get('resource') || labels.get('group') || '-'}${sub ? `/${sub}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}
