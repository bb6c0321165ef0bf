// Hostile metrics texts from sites: whatever they send, the provider's re-exposed text is valid exposition (no label
// name twice, one HELP/TYPE per family, families together, no series twice), nothing throws, nothing hangs, and a valid
// agent sample survives with the node label added.
import { fc, fuzzDecoder, hostileString } from '@edgefarm/testing/fuzz';
import { EdgeMetricsTexts, parseEdgeMetrics, renderEdgeMetrics } from './edge-metrics.js';
import { expositionProblems } from './testing.js';

const names = fc.constantFrom(
  'edgefarm_agent_pods',
  'edgefarm_agent_x',
  'edgefarm_agent_x_bucket',
  'edgefarm_agent_x_sum',
  'process_cpu',
  'a',
);
const labelName = fc.oneof(fc.constantFrom('node', 'exported_node', 'le', 'a', '__name__', 'quantile'), hostileString('az_09'));
const labelValue = fc.oneof(fc.constantFrom('', 'edge-1', '+Inf', '0.5'), hostileString());
const value = fc.oneof(
  {
    arbitrary: fc.constantFrom('1', '0', '-1.5e3', 'NaN', 'Nan', '+Inf', '-inf', '1 1700000000', '1e400', '2 99999999999999999999'),
    weight: 3,
  },
  { arbitrary: fc.double().map(String), weight: 2 },
  { arbitrary: hostileString('0123456789.e+-Inf '), weight: 1 },
);
const labels = fc.array(fc.tuple(labelName, labelValue), { maxLength: 4 }).map((ls) => `{${ls.map(([k, v]) => `${k}="${v}"`).join(',')}}`);
const sampleLine = fc.tuple(names, fc.oneof(fc.constant(''), labels), value).map(([n, l, v]) => `${n}${l} ${v}`);
const metaLine = fc
  .tuple(
    fc.constantFrom('# HELP', '# TYPE', '#', '#  TYPE'),
    names,
    fc.oneof(fc.constantFrom('gauge', 'counter', 'histogram', 'summary', 'untyped', 'x'), hostileString()),
  )
  .map(([k, n, rest]) => `${k} ${n} ${rest}`);
const line = fc.oneof(sampleLine, metaLine, hostileString(), fc.constant(''));
// Whole families, as an agent writes them (HELP, TYPE, samples of the family and its suffixes), mostly well formed.
const family = fc.constantFrom('edgefarm_agent_pods', 'edgefarm_agent_x', 'process_cpu');
const type = fc.constantFrom('gauge', 'counter', 'histogram', 'summary', 'untyped');
const goodLabels = fc
  .array(
    fc.tuple(
      fc.constantFrom('a', 'le', 'quantile', 'node', 'exported_node', 'code'),
      fc.oneof(fc.constantFrom('0.5', '+Inf', 'inf', '1e400', 'x', ''), labelValue),
    ),
    { maxLength: 3 },
  )
  .map((ls) => `{${ls.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`).join(',')}}`);
const block = fc
  .tuple(
    family,
    type,
    fc.oneof(fc.constant('Help.'), hostileString()),
    fc.array(
      fc.tuple(
        fc.constantFrom('', '_bucket', '_sum', '_count', '_total'),
        fc.oneof(goodLabels, goodLabels, fc.constant(''), labels),
        value,
      ),
      { maxLength: 6 },
    ),
  )
  .map(([f, t, h, samples]) =>
    [`# HELP ${f} ${h}`, `# TYPE ${f} ${t}`, ...samples.map(([suffix, l, v]) => `${f}${suffix}${l} ${v}`)].join('\n'),
  );
const text = fc.oneof(
  fc.array(fc.oneof(block, block, line), { maxLength: 6 }).map((ls) => ls.join('\n')),
  fc.array(line, { maxLength: 24 }).map((ls) => ls.join('\n')),
  fc.string({ unit: 'binary', maxLength: 512 }),
);
const node = fc.oneof(fc.constantFrom('edge-1', 'edge-2'), hostileString());
const texts = fc.array(fc.tuple(node, text), { minLength: 1, maxLength: 3 });

describe('edge metrics sanitizer, fuzzed', () => {
  it('renders valid exposition from any texts of any nodes', () => {
    fuzzDecoder('provider edge metrics: render', {
      inputs: texts,
      decode: (texts) => renderEdgeMetrics(texts),
      check: (_, out) => {
        const problems = expositionProblems(out as string);
        if (problems.length) throw new Error(problems.join('; '));
      },
    });
  });

  it('keeps a valid agent sample, node label first, with counts only of what it dropped', () => {
    const valid = fc
      .tuple(fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_]{0,8}$/), labelValue), { maxLength: 3 }), fc.integer())
      .filter(([ls]) => new Set(ls.map(([k]) => k)).size === ls.length);
    fuzzDecoder('provider edge metrics: valid samples survive', {
      inputs: fc.tuple(node, valid),
      decode: ([n, [ls, v]]) => {
        const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
        const body = `# TYPE edgefarm_agent_g gauge\nedgefarm_agent_g{${ls.map(([k, x]) => `${k}="${esc(x)}"`).join(',')}} ${v}\n`;
        const dropped: string[] = [];
        const parsed = parseEdgeMetrics(n, body, undefined, (r) => dropped.push(r));
        return { samples: parsed?.get('edgefarm_agent_g')?.samples ?? [], dropped, esc };
      },
      check: ([n, [ls, v]], out) => {
        const { samples, dropped, esc } = out as { samples: string[]; dropped: string[]; esc: (s: string) => string };
        // A control character in a value is refused (the only reason a valid-looking sample may go).
        if (ls.some(([, x]) => [...x].some((c) => (c < ' ' && c !== '\t' && c !== '\n') || c === '\u007f')))
          return dropped.length === 1 && samples.length === 0;
        const renamed = ls.map(([k, x]) => `${k === 'node' ? 'exported_node' : k}="${esc(x)}"`);
        return dropped.length === 0 && samples[0] === `edgefarm_agent_g{${[`node="${esc(n)}"`, ...renamed].join(',')}} ${v}`;
      },
    });
  });

  it('the kept texts stay within their bounds whatever arrives', () => {
    fuzzDecoder('provider edge metrics: bounds', {
      inputs: fc.array(fc.tuple(node, text), { minLength: 1, maxLength: 8 }),
      decode: (texts) => {
        const t = new EdgeMetricsTexts({ limits: { maxNodes: 3, maxSeries: 5, maxBytes: 1024 } });
        for (const [n, x] of texts) t.set(n, x);
        const out = t.render(texts.map(([n]) => n));
        return { size: t.size, out };
      },
      check: (_, r) => {
        const { size, out } = r as { size: number; out: string };
        const problems = expositionProblems(out);
        if (problems.length) throw new Error(problems.join('; '));
        return size <= 3 && out.split('\n').filter((l) => l.startsWith('edgefarm_agent_')).length <= 3 * 5;
      },
    });
  });
});
