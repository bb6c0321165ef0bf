import { AgentMetrics } from '@edgefarm/edge-agent';
import { renderEdgeMetrics, withNodeLabel } from './edge-metrics.js';
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
