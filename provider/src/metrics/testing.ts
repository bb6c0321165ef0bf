/**
 * Tests' strict reader of the Prometheus text exposition format (0.0.4), written apart from the sanitizer it checks
 * (edge-metrics.ts) so that one's mistakes do not hide in the other: it returns every rule the text breaks that makes
 * Prometheus refuse a scrape or a strict parser (client_golang's expfmt) fail. An empty list: the text is valid.
 *
 * Checked: the grammar of every line (metric and label names, quoted label values with only the \\ \" \n escapes, a
 * float value within float64's range, an int64 timestamp; a histogram's `le` and a summary's `quantile` floats); no label name twice in one sample (Prometheus refuses the whole scrape); at most
 * one HELP and one TYPE per family, TYPE before its samples, a family's lines together; no series twice.
 */
const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const TIMESTAMP = /^-?\d+$/;
/** A float as Go's ParseFloat reads it, within float64's range (Prometheus refuses a scrape with one out of range). */
const isFloat = (v: string) => (NUMBER.test(v) && Number.isFinite(Number(v))) || /^(?:[+-]?inf(?:inity)?|nan)$/i.test(v);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** The family a sample name belongs to, given the TYPEs declared so far. */
function familyOf(name: string, types: Map<string, string>): string {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const t = types.get(base);
    if (t === 'histogram' || (t === 'summary' && suffix !== '_bucket')) return base;
  }
  return name;
}

/** Parses `{a="b",...}` at the start of `s`; the labels and the rest, or an error. */
function labelsOf(s: string): { labels: [string, string][]; rest: string } | string {
  const labels: [string, string][] = [];
  let i = 1;
  for (;;) {
    if (s[i] === '}') return { labels, rest: s.slice(i + 1) };
    const m = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i));
    if (!m) return `bad label name at ${i}`;
    const name = m[0];
    i += name.length;
    if (s[i] !== '=' || s[i + 1] !== '"') return `no ="" after label ${name}`;
    i += 2;
    let value = '';
    for (;;) {
      const c = s[i];
      if (c === undefined || c === '\n') return 'unterminated label value';
      if (c === '"') break;
      if (c === '\\') {
        const e = s[i + 1];
        if (e !== '\\' && e !== '"' && e !== 'n') return `bad escape \\${e}`;
        value += e === 'n' ? '\n' : e;
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    i++;
    labels.push([name, value]);
    if (s[i] === ',') i++;
    else if (s[i] !== '}') return 'labels not separated by a comma';
  }
}

/** Every rule `text` breaks (empty: valid exposition). */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  const enter = (family: string, n: number) => {
    if (family === current) return;
    if (closed.has(family)) problems.push(`line ${n}: family ${family} continues after another family`);
    if (current !== undefined) closed.add(current);
    current = family;
  };
  text.split('\n').forEach((line, idx) => {
    const n = idx + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!meta) return; // a comment
      const [, kind, name, rest] = meta as unknown as [string, string, string, string | undefined];
      if (!METRIC.test(name)) problems.push(`line ${n}: bad metric name in ${kind}`);
      // x_bucket beside a histogram x is x to a strict parser (expfmt): its HELP or TYPE is a second one of x.
      const family = familyOf(name, types);
      enter(family, n);
      if (kind === 'HELP') {
        if (helps.has(family)) problems.push(`line ${n}: second HELP for ${family}`);
        helps.add(family);
        if (rest !== undefined && /\\(?![\\n])/.test(rest)) problems.push(`line ${n}: bad escape in HELP`);
      } else {
        if (types.has(family)) problems.push(`line ${n}: second TYPE for ${family}`);
        if (!rest || !TYPES.has(rest)) problems.push(`line ${n}: bad TYPE ${rest}`);
        types.set(family, rest ?? '');
      }
      return;
    }
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (!name) return void problems.push(`line ${n}: no metric name`);
    let rest = line.slice(name.length);
    let labels: [string, string][] = [];
    if (rest.startsWith('{')) {
      const parsed = labelsOf(rest);
      if (typeof parsed === 'string') return void problems.push(`line ${n}: ${parsed}`);
      ({ labels, rest } = parsed);
    }
    const names = labels.map(([k]) => k);
    for (const k of names) if (!LABEL.test(k) || k.startsWith('__')) problems.push(`line ${n}: bad label name ${k}`);
    if (new Set(names).size !== names.length) problems.push(`line ${n}: a label name twice`);
    const fields = rest.split(' ');
    if (fields[0] !== '' || fields.length < 2 || fields.length > 3) return void problems.push(`line ${n}: not "name labels value [ts]"`);
    if (!isFloat(fields[1]!)) problems.push(`line ${n}: bad value ${fields[1]}`);
    const ts = fields[2];
    if (ts !== undefined && !(TIMESTAMP.test(ts) && BigInt(ts) >= -(2n ** 63n) && BigInt(ts) < 2n ** 63n))
      problems.push(`line ${n}: bad timestamp`);
    const family = familyOf(name, types);
    const special = types.get(family) === 'histogram' ? 'le' : types.get(family) === 'summary' ? 'quantile' : undefined;
    const sv = labels.find(([k]) => k === special)?.[1];
    if (sv !== undefined && !isFloat(sv)) problems.push(`line ${n}: ${special} not a float`);
    enter(family, n);
    const key = `${name}{${[...labels]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',')}}`;
    if (series.has(key)) problems.push(`line ${n}: series ${key} twice`);
    series.add(key);
  });
  return problems;
}
