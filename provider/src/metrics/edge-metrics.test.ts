import { AgentMetrics } from '@edgefarm/edge-agent';
import { EdgeMetricsTexts, renderEdgeMetrics, withNodeLabel } from './edge-metrics.js';
import { expositionProblems } from './testing.js';
import { ProviderMetrics, type ServedNodesSource } from './metrics.js';

const agentText = (pods: number) => `# HELP process_cpu_seconds_total Total CPU.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5

# HELP edgefarm_agent_pods Pods with a sandbox in the container runtime.
# TYPE edgefarm_agent_pods gauge
edgefarm_agent_pods ${pods}

# HELP edgefarm_agent_cri_request_duration_seconds CRI calls.
# TYPE edgefarm_agent_cri_request_duration_seconds histogram
edgefarm_agent_cri_request_duration_seconds_bucket{le="0.1",service="runtime",method="RunPodSandbox",code="OK"} 1
edgefarm_agent_cri_request_duration_seconds_bucket{le="+Inf",service="runtime",method="RunPodSandbox",code="OK"} 1
edgefarm_agent_cri_request_duration_seconds_sum{service="runtime",method="RunPodSandbox",code="OK"} 0.05
edgefarm_agent_cri_request_duration_seconds_count{service="runtime",method="RunPodSandbox",code="OK"} 1
`;

describe('withNodeLabel', () => {
  it.each([
    ['a 1', 'a{node="n"} 1'],
    ['a{} 1', 'a{node="n"} 1'],
    ['a{b="x y}"} 2 1700000000', 'a{node="n",b="x y}"} 2 1700000000'],
  ])('%s', (line, want) => expect(withNodeLabel(line, 'n')).toBe(want));
  it('escapes the node name and refuses non-samples', () => {
    expect(withNodeLabel('a 1', 'we"ird\\')).toBe('a{node="we\\"ird\\\\"} 1');
    expect(withNodeLabel('# x', 'n')).toBeUndefined();
  });
});

describe('renderEdgeMetrics', () => {
  it('merges the agent families of every node under one HELP/TYPE, node-labelled, without process metrics', () => {
    const out = renderEdgeMetrics([
      ['edge-1', agentText(2)],
      ['edge-2', agentText(0)],
    ]);
    expect(out).not.toContain('process_cpu');
    expect(out.match(/# TYPE edgefarm_agent_pods gauge/g)).toHaveLength(1);
    expect(out).toContain('edgefarm_agent_pods{node="edge-1"} 2\nedgefarm_agent_pods{node="edge-2"} 0\n');
    expect(out).toContain(
      'edgefarm_agent_cri_request_duration_seconds_count{node="edge-2",service="runtime",method="RunPodSandbox",code="OK"} 1',
    );
    expect(out.match(/# TYPE edgefarm_agent_cri_request_duration_seconds histogram/g)).toHaveLength(1);
  });
});

describe('ProviderMetrics with edge metrics', () => {
  it('appends what served nodes published at scrape time and forgets other nodes', async () => {
    let served = ['edge-1', 'edge-2'];
    const source: ServedNodesSource = {
      served: () => served,
      connected: () => true,
      lastHeartbeat: () => undefined,
      desiredSequence: () => undefined,
      pods: () => 0,
      shardsOwned: () => 1,
    };
    const m = new ProviderMetrics({ defaultMetrics: false });
    m.watchNodes(source);
    expect(await m.text()).not.toContain('edgefarm_agent_');
    const agent = new AgentMetrics({ defaultMetrics: false });
    agent.heartbeat();
    m.edgeMetrics('edge-1', await agent.text());
    m.edgeMetrics('edge-2', agentText(3));
    m.edgeMetrics('edge-9', agentText(9)); // not served here
    let text = await m.text();
    expect(text).toContain('edgefarm_provider_nodes_served 2\n');
    expect(text).toContain('edgefarm_agent_heartbeats_total{node="edge-1"} 1\n');
    expect(text).toContain('edgefarm_agent_pods{node="edge-1"} 0\nedgefarm_agent_pods{node="edge-2"} 3\n');
    expect(text).not.toContain('edge-9');
    served = ['edge-2'];
    text = await m.text();
    expect(text).not.toContain('edgefarm_agent_pods{node="edge-1"}');
    served = ['edge-1', 'edge-2'];
    expect(await m.text()).not.toContain('edgefarm_agent_pods{node="edge-1"}'); // forgotten until it publishes again
  });
});

describe('hostile edge metrics', () => {
  it("keeps every agent series of a real agent's text, drops nothing it counts, and the provider's output is valid", async () => {
    const agent = new AgentMetrics();
    agent.heartbeat();
    const text = await agent.text();
    const rejected: string[] = [];
    const texts = new EdgeMetricsTexts({ rejected: (reason) => rejected.push(reason) });
    texts.set('edge-1', text);
    const out = texts.render(['edge-1']);
    expect(rejected).toEqual([]);
    expect(expositionProblems(out)).toEqual([]);
    const agentSeries = text.split('\n').filter((l) => l.startsWith('edgefarm_agent_'));
    expect(agentSeries.length).toBeGreaterThan(10);
    expect(out.split('\n').filter((l) => l.startsWith('edgefarm_agent_'))).toHaveLength(agentSeries.length);
  });

  const family = (body: string) => `# HELP edgefarm_agent_pods Pods.\n# TYPE edgefarm_agent_pods gauge\n${body}\n`;

  it("renames a sample's own node label to exported_node, as Prometheus does (a label twice fails the whole scrape)", () => {
    const out = renderEdgeMetrics([
      ['edge-1', family('edgefarm_agent_pods{node="edge-7"} 1')],
      ['edge-2', agentText(2)],
    ]);
    expect(expositionProblems(out)).toEqual([]);
    expect(out).toContain('edgefarm_agent_pods{node="edge-1",exported_node="edge-7"} 1\n');
    expect(out).toContain('edgefarm_agent_pods{node="edge-2"} 2\n');
  });

  it('drops malformed lines, counts them by reason, and keeps every valid sample', () => {
    const rejected: string[] = [];
    const texts = new EdgeMetricsTexts({ rejected: (reason, n) => rejected.push(...Array<string>(n).fill(reason)) });
    texts.set(
      'edge-1',
      family(
        [
          'edgefarm_agent_pods{a="1",a="2"} 1', // a label twice
          'edgefarm_agent_pods{a="unterminated} 1',
          'edgefarm_agent_pods{a="\\x"} 1', // bad escape
          'edgefarm_agent_pods{__name__="x"} 1', // reserved label name
          'edgefarm_agent_pods{a="1"} one',
          'edgefarm_agent_pods{a="1"} 1 12.5', // timestamp not an integer
          'edgefarm_agent_pods{a="1"} 1 2 3',
          'edgefarm_agent_pods{a="ok"} 1',
          'edgefarm_agent_pods{a="ok"} 2', // the same series again
          `edgefarm_agent_pods{a="${'x'.repeat(2000)}"} 1`,
          'edgefarm_agent_podsx 1', // not of the family
          'edgefarm_agent_pods{b="\\"q\\\\\\n"} 3',
        ].join('\n'),
      ),
    );
    const out = texts.render(['edge-1']);
    expect(expositionProblems(out)).toEqual([]);
    expect(out).toContain('edgefarm_agent_pods{node="edge-1",a="ok"} 1\n');
    expect(out).toContain('edgefarm_agent_pods{node="edge-1",b="\\"q\\\\\\n"} 3\n');
    expect(out.match(/^edgefarm_agent_pods/gm)).toHaveLength(2);
    expect(rejected.sort()).toEqual([...Array<string>(8).fill('malformed'), 'duplicate-series', 'label-too-long'].sort());
  });

  it("bounds a node's text: too large is refused whole (the last accepted one stays), series past the cap are dropped", () => {
    const rejected: string[] = [];
    const texts = new EdgeMetricsTexts({
      limits: { maxBytes: 4096, maxSeries: 3 },
      rejected: (reason, n) => rejected.push(`${reason} ${n}`),
    });
    texts.set('edge-1', family('edgefarm_agent_pods 1'));
    texts.set('edge-1', family(`edgefarm_agent_pods{a="${'x'.repeat(5000)}"} 1`));
    expect(texts.render(['edge-1'])).toContain('edgefarm_agent_pods{node="edge-1"} 1\n');
    texts.set('edge-1', family([1, 2, 3, 4, 5].map((i) => `edgefarm_agent_pods{i="${i}"} ${i}`).join('\n')));
    const out = texts.render(['edge-1']);
    expect(out.match(/^edgefarm_agent_pods/gm)).toHaveLength(3);
    expect(rejected).toEqual(['too-large 1', 'too-many-series 2']);
  });

  it('keeps at most maxNodes texts, and forgets the nodes no longer served to make room', () => {
    const rejected: string[] = [];
    let served = ['edge-1', 'edge-2', 'edge-3'];
    const texts = new EdgeMetricsTexts({ limits: { maxNodes: 2 }, rejected: (reason) => rejected.push(reason), served: () => served });
    texts.set('edge-1', family('edgefarm_agent_pods 1'));
    texts.set('edge-2', family('edgefarm_agent_pods 2'));
    texts.set('edge-3', family('edgefarm_agent_pods 3'));
    expect(rejected).toEqual(['too-many-nodes']);
    expect(texts.size).toBe(2);
    served = ['edge-2', 'edge-3'];
    texts.set('edge-3', family('edgefarm_agent_pods 3'));
    expect(texts.render(served)).toContain('edgefarm_agent_pods{node="edge-2"} 2\nedgefarm_agent_pods{node="edge-3"} 3\n');
  });

  it('a family two sites declare with different types takes the type most sites declare; the others are dropped', () => {
    const histogram = `# HELP edgefarm_agent_pods Pods.\n# TYPE edgefarm_agent_pods histogram\nedgefarm_agent_pods_bucket{le="+Inf"} 1\nedgefarm_agent_pods_sum 1\nedgefarm_agent_pods_count 1\n`;
    const out = renderEdgeMetrics([
      ['edge-0', histogram],
      ['edge-1', agentText(1)],
      ['edge-2', agentText(2)],
    ]);
    expect(expositionProblems(out)).toEqual([]);
    expect(out).toContain('# TYPE edgefarm_agent_pods gauge\n');
    expect(out).not.toContain('edge-0');
  });

  it("leaves out a family named like another's histogram series (a strict parser reads its HELP as the histogram's second)", () => {
    const histogram = `# HELP edgefarm_agent_x X.\n# TYPE edgefarm_agent_x histogram\nedgefarm_agent_x_bucket{le="+Inf"} 1\nedgefarm_agent_x_sum 1\nedgefarm_agent_x_count 1\n`;
    const out = renderEdgeMetrics([
      ['edge-1', histogram],
      ['edge-2', '# HELP edgefarm_agent_x_bucket Not a bucket.\n# TYPE edgefarm_agent_x_bucket gauge\nedgefarm_agent_x_bucket 7\n'],
    ]);
    expect(expositionProblems(out)).toEqual([]);
    expect(out).not.toContain('edge-2');
    expect(out).toContain('edgefarm_agent_x_bucket{node="edge-1",le="+Inf"} 1\n');
  });

  it('refuses values and timestamps Prometheus cannot read (out of float64 or int64 range), and a bucket without a float le', () => {
    const rejected: string[] = [];
    const texts = new EdgeMetricsTexts({ rejected: (reason, n) => rejected.push(...Array<string>(n).fill(reason)) });
    texts.set(
      'edge-1',
      [
        '# TYPE edgefarm_agent_x histogram',
        'edgefarm_agent_x_bucket{le="x"} 1',
        'edgefarm_agent_x_bucket 1',
        'edgefarm_agent_x_bucket{le="+inf"} 1',
        'edgefarm_agent_x_sum 1e400',
        'edgefarm_agent_x_count 1 9999999999999999999',
        'edgefarm_agent_x_count 1 -1700000000000',
      ].join('\n'),
    );
    const out = texts.render(['edge-1']);
    expect(expositionProblems(out)).toEqual([]);
    expect(out.split('\n').filter((l) => l.startsWith('edgefarm_agent_x'))).toEqual([
      'edgefarm_agent_x_bucket{node="edge-1",le="+inf"} 1',
      'edgefarm_agent_x_count{node="edge-1"} 1 -1700000000000',
    ]);
    expect(rejected).toEqual(Array<string>(4).fill('malformed'));
  });

  it('takes the last text of a node given twice (fuzz: its series were rendered twice)', () => {
    const out = renderEdgeMetrics([
      ['edge-1', family('edgefarm_agent_pods 0')],
      ['edge-1', family('edgefarm_agent_pods 1')],
    ]);
    expect(expositionProblems(out)).toEqual([]);
    expect(out).toContain('edgefarm_agent_pods{node="edge-1"} 1\n');
  });

  it('the provider counts what it refused in edgefarm_provider_edge_metrics_rejected_total{reason}', async () => {
    const m = new ProviderMetrics({ defaultMetrics: false });
    m.watchNodes({
      served: () => ['edge-1'],
      connected: () => true,
      lastHeartbeat: () => undefined,
      desiredSequence: () => undefined,
      pods: () => 0,
      shardsOwned: () => 1,
    });
    expect(await m.text()).toContain('edgefarm_provider_edge_metrics_rejected_total{reason="malformed"} 0\n');
    m.edgeMetrics('edge-1', family('edgefarm_agent_pods{node="x",node="y"} 1\nedgefarm_agent_pods 2'));
    const text = await m.text();
    expect(expositionProblems(text)).toEqual([]);
    expect(text).toContain('edgefarm_provider_edge_metrics_rejected_total{reason="malformed"} 1\n');
    expect(text).toContain('edgefarm_agent_pods{node="edge-1"} 2\n');
  });
});
