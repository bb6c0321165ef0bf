/**
 * Re-exposes the metrics edge agents publish (ef.status.<node>.metrics, Prometheus text) on the provider's /metrics,
 * with `node="<name>"` injected into every sample, so one scrape of the provider sees every site it serves without
 * reaching into one. Only the agents' own families (`edgefarm_agent_*`) are kept: their process and Node.js metrics
 * would collide with the provider's own. Families are merged across nodes (one HELP/TYPE each, as the format
 * requires). The last text per node is kept; nodes this replica no longer serves are forgotten at scrape time.
 */

export const AGENT_PREFIX = 'edgefarm_agent_';

interface Family {
  help?: string;
  type?: string;
  samples: string[];
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** `name{a="b"} 1` -> `name{node="n",a="b"} 1`; `name 1` -> `name{node="n"} 1`. Undefined for a non-sample line. */
export function withNodeLabel(sample: string, node: string): string | undefined {
  const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(sample);
  if (!m) return undefined;
  const name = m[0];
  const label = `node="${escapeLabelValue(node)}"`;
  const rest = sample.slice(name.length);
  if (rest.startsWith('{')) return `${name}{${label}${rest.startsWith('{}') ? '' : ','}${rest.slice(1)}`;
  if (/^\s/.test(rest)) return `${name}{${label}}${rest}`;
  return undefined;
}

/** Adds the agent families of one node's text to `families`. */
function collect(families: Map<string, Family>, node: string, text: string): void {
  let current: string | undefined;
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { samples: [] }));
    return f;
  };
  for (const line of text.split('\n')) {
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)(?: (.*))?$/.exec(line);
    if (meta) {
      current = meta[2]!.startsWith(AGENT_PREFIX) ? meta[2] : undefined;
      if (current) {
        const f = family(current);
        if (meta[1] === 'HELP') f.help ??= line;
        else f.type ??= line;
      }
      continue;
    }
    if (!current || line === '' || line.startsWith('#') || !line.startsWith(current)) continue;
    const labelled = withNodeLabel(line, node);
    if (labelled) family(current).samples.push(labelled);
  }
}

/** The merged text of the given nodes' metrics (empty when none). */
export function renderEdgeMetrics(texts: Iterable<[node: string, text: string]>): string {
  const families = new Map<string, Family>();
  for (const [node, text] of texts) collect(families, node, text);
  let out = '';
  for (const f of families.values()) {
    if (f.samples.length === 0) continue;
    if (f.help) out += f.help + '\n';
    if (f.type) out += f.type + '\n';
    out += f.samples.join('\n') + '\n\n';
  }
  return out;
}

/** The last metrics text of each node. */
export class EdgeMetricsTexts {
  private readonly texts = new Map<string, string>();

  set(node: string, text: string): void {
    this.texts.set(node, text);
  }

  /** Renders the texts of `served` nodes and forgets every other node's. */
  render(served: readonly string[]): string {
    const keep = new Set(served);
    for (const node of this.texts.keys()) if (!keep.has(node)) this.texts.delete(node);
    return renderEdgeMetrics([...this.texts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
