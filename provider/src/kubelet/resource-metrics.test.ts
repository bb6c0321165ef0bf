import { renderResourceMetrics } from './resource-metrics.js';

describe('/metrics/resource', () => {
  it('renders the kubelet resource metrics from a stats Summary', () => {
    const t = '2026-11-23T10:00:00Z';
    const ms = Date.parse(t);
    const text = renderResourceMetrics({
      node: { nodeName: 'edge-1', cpu: { time: t, usageCoreNanoSeconds: 2_500_000_000 }, memory: { time: t, workingSetBytes: 1000 } },
      pods: [
        {
          podRef: { name: 'web', namespace: 'default', uid: 'u' },
          cpu: { time: t, usageCoreNanoSeconds: 1_000_000_000 },
          memory: { time: t, workingSetBytes: 300 },
          containers: [
            {
              name: 'app',
              startTime: '2026-11-23T09:00:00Z',
              cpu: { time: t, usageCoreNanoSeconds: 500_000_000 },
              memory: { time: t, workingSetBytes: 200 },
            },
          ],
        },
      ],
    });
    expect(text).toBe(
      [
        '# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds',
        '# TYPE container_cpu_usage_seconds_total counter',
        `container_cpu_usage_seconds_total{container="app",namespace="default",pod="web"} 0.5 ${ms}`,
        '# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes',
        '# TYPE container_memory_working_set_bytes gauge',
        `container_memory_working_set_bytes{container="app",namespace="default",pod="web"} 200 ${ms}`,
        '# HELP container_start_time_seconds [STABLE] Start time of the container since unix epoch in seconds',
        '# TYPE container_start_time_seconds gauge',
        `container_start_time_seconds{container="app",namespace="default",pod="web"} ${Date.parse('2026-11-23T09:00:00Z') / 1000}`,
        '# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds',
        '# TYPE node_cpu_usage_seconds_total counter',
        `node_cpu_usage_seconds_total 2.5 ${ms}`,
        '# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes',
        '# TYPE node_memory_working_set_bytes gauge',
        `node_memory_working_set_bytes 1000 ${ms}`,
        '# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds',
        '# TYPE pod_cpu_usage_seconds_total counter',
        `pod_cpu_usage_seconds_total{namespace="default",pod="web"} 1 ${ms}`,
        '# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes',
        '# TYPE pod_memory_working_set_bytes gauge',
        `pod_memory_working_set_bytes{namespace="default",pod="web"} 300 ${ms}`,
        '# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise',
        '# TYPE resource_scrape_error gauge',
        'resource_scrape_error 0',
        '# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise',
        '# TYPE scrape_error gauge',
        'scrape_error 0',
        '',
      ].join('\n'),
    );
  });

  it('renders only the scrape errors when the summary failed, and escapes label values', () => {
    expect(renderResourceMetrics(undefined)).toMatch(/^resource_scrape_error 1$/m);
    expect(renderResourceMetrics(undefined)).not.toMatch(/node_cpu/);
    const text = renderResourceMetrics({
      node: { nodeName: 'n' },
      pods: [{ podRef: { name: 'a"b\\c', namespace: 'd', uid: 'u' }, memory: { time: 'bad', workingSetBytes: 1 }, containers: [] }],
    });
    expect(text).toContain('pod_memory_working_set_bytes{namespace="d",pod="a\\"b\\\\c"} 1\n');
  });
});
