import { requestCounts } from './prom.js';

describe('requestCounts', () => {
  it('sums apiserver_request_total by verb, resource and subresource', () => {
    const text = [
      '# HELP apiserver_request_total Counter of apiserver requests',
      '# TYPE apiserver_request_total counter',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 120',
      'apiserver_request_total{code="409",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="PUT",version="v1"} 3',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 7',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="",scope="",subresource="",verb="GET",version=""} 2',
      'apiserver_request_duration_seconds_count{verb="PUT",resource="leases"} 999',
    ].join('\n');
    expect(Object.fromEntries(requestCounts(text))).toEqual({ 'PUT leases': 123, 'PATCH pods/status': 7, 'GET -': 2 });
  });

  it('skips what does not parse and keeps the rest', () => {
    const text = [
      'apiserver_request_total{verb="GET",resource="pods"} not-a-number',
      'apiserver_request_total{resource="pods"} 4',
      'apiserver_request_total{verb="GET",resource="pods"',
      'garbage',
      '',
      'apiserver_request_total{verb="LIST",resource="pods"} 1e3',
    ].join('\n');
    expect(Object.fromEntries(requestCounts(text))).toEqual({ 'LIST pods': 1000 });
  });
});
