/**
 * Re-exposes the metrics edge agents publish (ef.status.<node>.metrics, Prometheus text) on the provider's /metrics,
 * with `node="<name>"` added to every sample, so one scrape of the provider sees every site it serves without
 * reaching into one. Only the agents' own families (`edgefarm_agent_*`) are kept: their process and Node.js metrics
 * would collide with the provider's own. Families are merged across nodes (one HELP/TYPE each, as the format
 * requires).
 *
 * A site's text is hostile input: one bad line in the provider's output makes Prometheus refuse the whole scrape, and
 * with it every site's metrics and the provider's own. So each text is parsed strictly when it arrives and only what
 * is valid is kept: a sample's own `node` label is renamed `exported_node` (as Prometheus does with
 * honor_labels=false); malformed lines, label names or values past their bounds, a series twice and the series past
 * `maxSeries` are dropped and counted; a text over `maxBytes` is refused whole (the node's last accepted text stays).
 * Texts are kept for at most `maxNodes` nodes; nodes this replica no longer serves are forgotten at scrape time, and
 * when a new node finds no room. A family two sites declare with different types is exposed with the type most sites
 * declare; the samples of the others are dropped. A family named like another's histogram or summary series is left out.
 */

export const AGENT_PREFIX = 'edgefarm_agent_';

/** Why part of a site's metrics text was dropped (edgefarm_provider_edge_metrics_rejected_total{reason}). */
export const EDGE_METRICS_REJECT_REASONS = [
  'malformed',
  'label-too-long',
  'duplicate-series',
  'type-conflict',
  'too-many-series',
  'too-large',
  'too-many-nodes',
] as const;
export type EdgeMetricsRejectReason = (typeof EDGE_METRICS_REJECT_REASONS)[number];

export interface EdgeMetricsLimits {
  /** A text longer than this (UTF-16 code units, ~bytes) is refused whole. */
  maxBytes: number;
  /** Samples kept per node; the rest are dropped. */
  maxSeries: number;
  /** Labels per sample (besides `node`). */
  maxLabels: number;
  maxLabelNameLength: number;
  maxLabelValueLength: number;
  /** Nodes whose texts are kept. */
  maxNodes: number;
}

/** An agent publishes ~60 series in ~12 KiB; a provider serves up to a few thousand nodes. */
export const DEFAULT_EDGE_METRICS_LIMITS: EdgeMetricsLimits = {
  maxBytes: 256 * 1024,
  maxSeries: 1000,
  maxLabels: 16,
  maxLabelNameLength: 128,
  maxLabelValueLength: 1024,
  maxNodes: 10_000,
};

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
/** NaN and infinities, in any case, as Go's ParseFloat reads them (prom-client writes `Nan`): written canonically. */
const SPECIAL: Record<string, string> = {
  nan: 'NaN',
  inf: '+Inf',
  '+inf': '+Inf',
  '-inf': '-Inf',
  infinity: '+Inf',
  '+infinity': '+Inf',
  '-infinity': '-Inf',
};
const TIMESTAMP = /^-?\d{1,19}$/;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** The float as Prometheus reads it (Go's ParseFloat: a number out of float64's range is an error), canonical; or undefined. */
function float(raw: string): string | undefined {
  if (NUMBER.test(raw)) return Number.isFinite(Number(raw)) ? raw : undefined;
  return SPECIAL[raw.toLowerCase()];
}
/** Whether `s` holds a control character other than tab: never valid raw in a label value or HELP text. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return true;
  }
  return false;
}

/** One node's family: its declared type and help, and its samples, rendered with the node label. */
interface NodeFamily {
  type?: string;
  help?: string;
  samples: string[];
}

/** One node's text, parsed: its agent families by name. */
export type ParsedEdgeMetrics = Map<string, NodeFamily>;

type Rejected = (reason: EdgeMetricsRejectReason, count: number) => void;

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

class LineError extends Error {
  override name = 'LineError';
  constructor(readonly reason: EdgeMetricsRejectReason) {
    super(reason);
  }
}

/** Parses `{a="b",...}` at `s[0]`, returns the labels (unescaped values) and what follows the `}`. */
function parseLabels(s: string, limits: EdgeMetricsLimits): { labels: [string, string][]; rest: string } {
  const labels: [string, string][] = [];
  let i = 1;
  for (;;) {
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) };
    const name = LABEL_NAME.exec(s.slice(i, i + limits.maxLabelNameLength + 1))?.[0];
    if (!name) throw new LineError('malformed');
    if (name.length > limits.maxLabelNameLength) throw new LineError('label-too-long');
    if (name.startsWith('__')) throw new LineError('malformed');
    i += name.length;
    if (s[i] !== '=' || s[i + 1] !== '"') throw new LineError('malformed');
    i += 2;
    let value = '';
    for (;;) {
      const c = s[i];
      if (c === undefined) throw new LineError('malformed');
      if (c === '"') break;
      if (c === '\\') {
        const e = s[i + 1];
        if (e !== '\\' && e !== '"' && e !== 'n') throw new LineError('malformed');
        value += e === 'n' ? '\n' : e;
        i += 2;
      } else {
        if (hasControl(c)) throw new LineError('malformed');
        value += c;
        i++;
      }
      if (value.length > limits.maxLabelValueLength) throw new LineError('label-too-long');
    }
    i++;
    if (labels.some(([k]) => k === name)) throw new LineError('malformed');
    labels.push([name, value]);
    if (labels.length > limits.maxLabels) throw new LineError('label-too-long');
    if (s[i] === ',') i++;
    else if (s[i] !== '}') throw new LineError('malformed');
  }
}

/** The sample names a family of `type` may have. */
function belongs(sample: string, family: string, type: string | undefined): boolean {
  if (sample === family) return type !== 'histogram';
  const suffix = sample.startsWith(family) ? sample.slice(family.length) : undefined;
  if (type === 'histogram') return suffix === '_bucket' || suffix === '_sum' || suffix === '_count';
  if (type === 'summary') return suffix === '_sum' || suffix === '_count';
  return false;
}

/**
 * One sample line, checked and re-rendered with `node` first (a `node` label of its own renamed `exported_node`,
 * `exported_exported_node` if that is taken too), or a LineError. `series` is its identity (name and sorted labels).
 */
function sample(
  line: string,
  node: string,
  limits: EdgeMetricsLimits,
): { name: string; labels: [string, string][]; text: string; series: string } {
  const name = METRIC_NAME.exec(line)?.[0];
  if (!name) throw new LineError('malformed');
  let rest = line.slice(name.length);
  let labels: [string, string][] = [];
  if (rest.startsWith('{')) ({ labels, rest } = parseLabels(rest, limits));
  if (!/^[ \t]/.test(rest)) throw new LineError('malformed');
  // Blanks around the value and timestamp are tolerated, as Prometheus does.
  const fields = rest.replace(/^[ \t]+|[ \t]+$/g, '').split(/[ \t]+/);
  if (fields.length > 2) throw new LineError('malformed');
  const [raw, timestamp] = fields as [string, string | undefined];
  const value = float(raw);
  if (value === undefined) throw new LineError('malformed');
  if (timestamp !== undefined && !(TIMESTAMP.test(timestamp) && BigInt(timestamp) >= INT64_MIN && BigInt(timestamp) <= INT64_MAX))
    throw new LineError('malformed');
  const names = new Set(labels.map(([k]) => k));
  labels = labels.map(([k, v]) => {
    if (k !== 'node') return [k, v];
    let renamed = 'exported_node';
    while (names.has(renamed)) renamed = `exported_${renamed}`;
    names.add(renamed);
    return [renamed, v];
  });
  if (labels.some(([k]) => k.length > limits.maxLabelNameLength)) throw new LineError('label-too-long');
  const all: [string, string][] = [['node', node], ...labels];
  const text = `${name}{${all.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}} ${value}${timestamp ? ` ${timestamp}` : ''}`;
  const sorted = [...all].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { name, labels, text, series: `${name}${JSON.stringify(sorted)}` };
}

/**
 * Parses one node's text strictly into its agent families, counting what is dropped. Never throws. A text over
 * `maxBytes` yields undefined (refused whole).
 */
export function parseEdgeMetrics(
  node: string,
  text: string,
  limits: EdgeMetricsLimits = DEFAULT_EDGE_METRICS_LIMITS,
  rejected: Rejected = () => undefined,
): ParsedEdgeMetrics | undefined {
  if (text.length > limits.maxBytes) {
    rejected('too-large', 1);
    return undefined;
  }
  const families: ParsedEdgeMetrics = new Map();
  const seen = new Set<string>();
  const dropped = new Map<EdgeMetricsRejectReason, number>();
  const drop = (reason: EdgeMetricsRejectReason) => dropped.set(reason, (dropped.get(reason) ?? 0) + 1);
  let current: string | undefined;
  let foreign = false;
  let series = 0;
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const meta = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (!meta) continue; // a comment
      const [, kind, name, rest] = meta as unknown as [string, 'HELP' | 'TYPE', string, string | undefined];
      foreign = !name.startsWith(AGENT_PREFIX);
      if (foreign) {
        current = undefined;
        continue;
      }
      if (METRIC_NAME.exec(name)?.[0] !== name) {
        current = undefined;
        drop('malformed');
        continue;
      }
      if (name !== current && families.has(name)) {
        // The family was closed already: a second block of it is refused (the format wants a family's lines together).
        current = undefined;
        drop('malformed');
        continue;
      }
      current = name;
      let f = families.get(name);
      if (!f) families.set(name, (f = { samples: [] }));
      if (kind === 'TYPE') {
        const type = rest?.trim();
        if (!type || !TYPES.has(type) || f.type !== undefined || f.samples.length > 0) drop('malformed');
        else f.type = type;
      } else {
        const help = rest ?? '';
        if (f.help !== undefined || hasControl(help) || /\\(?![\\n])/.test(help) || help.length > limits.maxLabelValueLength)
          drop('malformed');
        else f.help = help;
      }
      continue;
    }
    // Not an agent family's (process_*, nodejs_*): left out unread.
    if (foreign && !line.startsWith(AGENT_PREFIX)) continue;
    try {
      const s = sample(line, node, limits);
      const f = current === undefined ? undefined : families.get(current);
      if (!f || !s.name.startsWith(AGENT_PREFIX) || !belongs(s.name, current!, f.type)) throw new LineError('malformed');
      // A histogram's `le` and a summary's `quantile` are floats, and a bucket or a quantile has one.
      const special = f.type === 'histogram' ? 'le' : f.type === 'summary' ? 'quantile' : undefined;
      if (special) {
        const v = s.labels.find(([k]) => k === special)?.[1];
        if (v !== undefined && float(v) === undefined) throw new LineError('malformed');
        if (v === undefined && (s.name === `${current}_bucket` || (special === 'quantile' && s.name === current)))
          throw new LineError('malformed');
      }
      if (seen.has(s.series)) throw new LineError('duplicate-series');
      if (series >= limits.maxSeries) throw new LineError('too-many-series');
      seen.add(s.series);
      series++;
      f.samples.push(s.text);
    } catch (err) {
      if (!(err instanceof LineError)) throw err;
      drop(err.reason);
    }
  }
  for (const [reason, count] of dropped) rejected(reason, count);
  return families;
}

/** The series suffixes of histograms and summaries, and the types that have each. */
const SUFFIXES: [string, string[]][] = [
  ['_bucket', ['histogram']],
  ['_sum', ['histogram', 'summary']],
  ['_count', ['histogram', 'summary']],
];

/** Per family, how many nodes declare each type (undefined: no TYPE line). */
type Votes = Map<string, Map<string | undefined, number>>;

function vote(votes: Votes, parsed: ParsedEdgeMetrics, by: 1 | -1): void {
  for (const [name, f] of parsed) {
    let v = votes.get(name);
    if (!v) votes.set(name, (v = new Map<string | undefined, number>()));
    const n = (v.get(f.type) ?? 0) + by;
    if (n > 0) v.set(f.type, n);
    else v.delete(f.type);
    if (v.size === 0) votes.delete(name);
  }
}

/** The type most nodes declare for the family (ties: the type first in order); undefined: no TYPE line. */
function winner(v: Map<string | undefined, number> | undefined): string | undefined {
  let best: [string | undefined, number] | undefined;
  for (const [type, n] of v ?? []) {
    if (!best || n > best[1] || (n === best[1] && String(type) < String(best[0]))) best = [type, n];
  }
  return best?.[0];
}

/** The merged text of parsed texts, in the order given (empty when none). */
function render(parsed: [string, ParsedEdgeMetrics][], votes: Votes): string {
  const families = new Map<string, { help?: string; samples: string[] }>();
  for (const [, p] of parsed) {
    for (const [name, f] of p) {
      if (f.type !== winner(votes.get(name))) continue;
      let out = families.get(name);
      if (!out) families.set(name, (out = { samples: [] }));
      out.help ??= f.help;
      out.samples.push(...f.samples);
    }
  }
  // A family named like another's histogram or summary series (x_bucket beside a histogram x) would read as part of it
  // (a second HELP or TYPE of x to a strict parser): left out.
  const shadowed = (name: string) =>
    SUFFIXES.some(([suffix, types]) => {
      if (!name.endsWith(suffix)) return false;
      const base = name.slice(0, -suffix.length);
      return families.get(base)?.samples.length && types.includes(winner(votes.get(base)) ?? '');
    });
  let out = '';
  for (const [name, f] of families) {
    if (f.samples.length === 0 || shadowed(name)) continue;
    if (f.help !== undefined) out += `# HELP ${name} ${f.help}\n`;
    const type = winner(votes.get(name));
    if (type !== undefined) out += `# TYPE ${name} ${type}\n`;
    out += f.samples.join('\n') + '\n\n';
  }
  return out;
}

/**
 * The merged text of the given nodes' metrics texts (empty when none), in order; of a node given twice, its last text
 * counts (two would repeat its series). What is invalid is dropped.
 */
export function renderEdgeMetrics(texts: Iterable<[node: string, text: string]>): string {
  const parsed: [string, ParsedEdgeMetrics][] = [];
  const votes: Votes = new Map();
  for (const [node, text] of new Map(texts)) {
    const p = parseEdgeMetrics(node, text);
    if (!p) continue;
    parsed.push([node, p]);
    vote(votes, p, 1);
  }
  return render(parsed, votes);
}

/** `name{a="b"} 1` -> `name{node="n",a="b"} 1`; `name 1` -> `name{node="n"} 1`. Undefined for an invalid sample. */
export function withNodeLabel(line: string, node: string): string | undefined {
  try {
    return sample(line, node, DEFAULT_EDGE_METRICS_LIMITS).text;
  } catch (err) {
    if (err instanceof LineError) return undefined;
    throw err;
  }
}

export interface EdgeMetricsTextsOptions {
  limits?: Partial<EdgeMetricsLimits>;
  /** Counts what was dropped (edgefarm_provider_edge_metrics_rejected_total). */
  rejected?: Rejected;
  /** The nodes served, to make room when the texts are at `maxNodes`. */
  served?: () => readonly string[];
}

/** The last accepted (parsed) metrics text of each node. */
export class EdgeMetricsTexts {
  private readonly texts = new Map<string, ParsedEdgeMetrics>();
  /** The types the kept texts declare, per family (kept in step with `texts`). */
  private readonly votes: Votes = new Map();
  private readonly limits: EdgeMetricsLimits;
  private readonly rejected: Rejected;
  private readonly served?: () => readonly string[];

  constructor(options: EdgeMetricsTextsOptions = {}) {
    this.limits = { ...DEFAULT_EDGE_METRICS_LIMITS, ...options.limits };
    this.rejected = options.rejected ?? (() => undefined);
    this.served = options.served;
  }

  /** Nodes whose text is kept. */
  get size(): number {
    return this.texts.size;
  }

  /** Parses and keeps the node's text; a text refused whole, or one more node than `maxNodes`, leaves all as it was. */
  set(node: string, text: string): void {
    if (!this.texts.has(node) && this.texts.size >= this.limits.maxNodes) {
      if (this.served) this.forgetAllBut(this.served());
      if (this.texts.size >= this.limits.maxNodes) {
        this.rejected('too-many-nodes', 1);
        return;
      }
    }
    const parsed = parseEdgeMetrics(node, text, this.limits, this.rejected);
    if (!parsed) return;
    const before = this.texts.get(node);
    if (before) vote(this.votes, before, -1);
    // A family this node types differently from the other nodes' majority is dropped at render; counted here, once.
    let conflicts = 0;
    for (const [name, f] of parsed) {
      const others = this.votes.get(name);
      if (others && winner(others) !== f.type) conflicts += f.samples.length;
    }
    if (conflicts > 0) this.rejected('type-conflict', conflicts);
    this.texts.set(node, parsed);
    vote(this.votes, parsed, 1);
  }

  /** Renders the texts of `served` nodes and forgets every other node's. */
  render(served: readonly string[]): string {
    this.forgetAllBut(served);
    return render(
      [...this.texts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      this.votes,
    );
  }

  private forgetAllBut(served: readonly string[]): void {
    const keep = new Set(served);
    for (const [node, parsed] of this.texts) {
      if (keep.has(node)) continue;
      this.texts.delete(node);
      vote(this.votes, parsed, -1);
    }
  }
}
