import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { ApiError, FakeKubeClient } from '../kube/fake.js';
import { InstrumentedKubeClient } from '../kube/instrumented.js';
import { FakeBus } from '../bus/fake.js';
import { InstrumentedPublisher } from '../bus/instrumented.js';
import { pod, podControllerBed } from '../podcontroller/testing.js';
import { NodeController } from '../nodecontroller/controller.js';
import { NodeFacts } from '../nodecontroller/facts.js';
import { FakeMembership } from '../membership/fake.js';
import { httpServer } from '../http.js';
import { ProviderMetrics, type ServedNodesSource } from './metrics.js';

const log = pino({ level: 'silent' });
const P = 'edgefarm_provider_';

/** The value of one sample (`name{labels}` exactly as exposed), or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const report = (generation: bigint, phase: edge.PodPhase, observedAtMs: bigint) =>
  create(edge.PodStatusReportSchema, { uid: 'uid-1', namespace: 'default', name: 'web-1', generation, phase, observedAtMs });

describe('ProviderMetrics', () => {
  let clock = Date.parse('2026-11-23T10:00:00Z');
  const nowMs = () => clock;

  it('counts every refusal of what the sites send, and of the hub, by a bounded reason', async () => {
    const m = new ProviderMetrics({ defaultMetrics: false, nowMs });
    const before = await m.text();
    for (const series of [
      `${P}status_reports_rejected_total{reason="wrong_node"}`,
      `${P}status_reports_rejected_total{reason="unknown_pod"}`,
      `${P}status_reports_rejected_total{reason="overflow"}`,
      `${P}edge_events_rejected_total{reason="wrong_node"}`,
      `${P}edge_events_rejected_total{reason="malformed"}`,
      `${P}hub_messages_rejected_total{stream="status",reason="malformed"}`,
      `${P}hub_messages_rejected_total{stream="events",reason="malformed"}`,
      `${P}desired_publish_rejected_total{reason="stream_full"}`,
      `${P}desired_publish_rejected_total{reason="too_large"}`,
    ])
      expect([series, sample(before, series)]).toEqual([series, 0]);
    m.statusReport('rejected', 'wrong_node');
    m.statusReport('rejected', 'overflow');
    m.statusReport('dropped'); // a malformed status message
    m.edgeEvent('wrong_node');
    m.edgeEvent('malformed');
    m.desiredPublishFailed('pod', 'stream_full');
    m.desiredPublishFailed('secret');
    const text = await m.text();
    expect(sample(text, `${P}status_reports_total{result="rejected"}`)).toBe(2);
    expect(sample(text, `${P}status_reports_rejected_total{reason="wrong_node"}`)).toBe(1);
    expect(sample(text, `${P}status_reports_rejected_total{reason="overflow"}`)).toBe(1);
    expect(sample(text, `${P}hub_messages_rejected_total{stream="status",reason="malformed"}`)).toBe(1);
    expect(sample(text, `${P}edge_events_total{result="rejected"}`)).toBe(1);
    expect(sample(text, `${P}edge_events_rejected_total{reason="wrong_node"}`)).toBe(1);
    expect(sample(text, `${P}edge_events_rejected_total{reason="malformed"}`)).toBe(1);
    expect(sample(text, `${P}hub_messages_rejected_total{stream="events",reason="malformed"}`)).toBe(1);
    expect(sample(text, `${P}desired_publish_rejected_total{reason="stream_full"}`)).toBe(1);
    expect(sample(text, `${P}desired_publish_total{kind="secret",result="error"}`)).toBe(1);
  });

  it('counts publishes, status reports, conflicts, API calls and pod startup from the pod controller', async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false, nowMs });
    const {
      kube: fake,
      ctl,
      membership,
    } = podControllerBed({
      metrics,
      now: () => new Date(clock),
      kube: (k) => new InstrumentedKubeClient(k, (...a) => metrics.kubeRequest(...a)),
      bus: (b) =>
        new InstrumentedPublisher(b, {
          published: (...a) => metrics.desiredPublished(...a),
          failed: (k) => metrics.desiredPublishFailed(k),
        }),
    });
    await ctl.start();
    await membership.take(['edge-1']);
    fake.emitPod(pod({}, { creationTimestamp: new Date(clock - 2_500) }));
    await ctl.drained();

    fake.failNext('replacePodStatus', new ApiError(409, 'conflict'));
    ctl.onReport('edge-1', report(2n, edge.PodPhase.RUNNING, BigInt(clock - 300)));
    await ctl.drained();
    ctl.onReport('edge-1', report(2n, edge.PodPhase.RUNNING, BigInt(clock - 300))); // repeated: stale
    ctl.onReport('edge-1', report(1n, edge.PodPhase.PENDING, BigInt(clock - 400))); // older: stale
    ctl.onReport('edge-2', report(3n, edge.PodPhase.FAILED, BigInt(clock))); // a node not served: not counted
    await ctl.drained();
    expect(fake.pods.get('default/web-1')!.status!.phase).toBe('Running');
    fake.emitDelete('default', 'web-1');
    await ctl.drained();
    await ctl.stop();

    const text = await metrics.text();
    expect(sample(text, `${P}desired_publish_total{kind="pod",result="ok"}`)).toBe(1);
    expect(sample(text, `${P}desired_publish_total{kind="tombstone",result="ok"}`)).toBe(1);
    expect(sample(text, `${P}desired_publish_duration_seconds_count`)).toBe(2);
    expect(sample(text, `${P}status_reports_total{result="applied"}`)).toBe(1);
    expect(sample(text, `${P}status_reports_total{result="stale"}`)).toBe(2);
    expect(sample(text, `${P}status_conflicts_total`)).toBe(1);
    expect(sample(text, `${P}status_apply_duration_seconds_count`)).toBe(1);
    // 0.3 s from the agent's observation to the API.
    expect(sample(text, `${P}status_report_delay_seconds_bucket{le="0.25"}`)).toBe(0);
    expect(sample(text, `${P}status_report_delay_seconds_bucket{le="0.5"}`)).toBe(1);
    // 2.5 s from creationTimestamp to Running.
    expect(sample(text, `${P}pod_startup_seconds_count`)).toBe(1);
    expect(sample(text, `${P}pod_startup_seconds_sum`)).toBe(2.5);
    expect(sample(text, `${P}kube_request_duration_seconds_count{verb="update",resource="pods/status",code="409"}`)).toBe(1);
    expect(sample(text, `${P}kube_request_duration_seconds_count{verb="update",resource="pods/status",code="2xx"}`)).toBe(1);
    expect(sample(text, `${P}kube_request_duration_seconds_count{verb="get",resource="pods",code="2xx"}`)).toBe(1);
    expect(sample(text, `${P}kube_request_duration_seconds_count{verb="watch",resource="pods",code="2xx"}`)).toBe(1);
    // No pod names or UIDs in any label.
    expect(text).not.toMatch(/web-1|uid-1/);
  });

  it('gives API calls the status code of their error, 404 for a get that found nothing, error without one', async () => {
    const seen: string[] = [];
    const fake = new FakeKubeClient();
    const kube = new InstrumentedKubeClient(fake, (verb, resource, code) => seen.push(`${verb} ${resource} ${code}`));
    await kube.getNode('nope');
    fake.failNext('createNode', new ApiError(422, 'invalid'));
    await expect(kube.createNode({ metadata: { name: 'x' } })).rejects.toThrow('invalid');
    fake.failNext('listLeases', new Error('socket hang up'));
    await expect(kube.listLeases('ns', 'a=b')).rejects.toThrow('socket hang up');
    expect(await kube.patchEdgeNodeStatus('nope', { connected: false })).toBe(false);
    expect(seen).toEqual(['get nodes 404', 'create nodes 422', 'list leases error', 'patch edgenodes/status 404']);
  });

  it('counts failed publishes by kind', async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false });
    const inner = new FakeBus();
    inner.failNextPublish = new Error('timeout');
    const bus = new InstrumentedPublisher(inner, {
      published: (...a) => metrics.desiredPublished(...a),
      failed: (k) => metrics.desiredPublishFailed(k),
    });
    await expect(bus.publishPod('edge-1', create(edge.EdgePodSpecSchema, { namespace: 'default', name: 'a', uid: 'u' }))).rejects.toThrow(
      'timeout',
    );
    const text = await metrics.text();
    expect(sample(text, `${P}desired_publish_total{kind="pod",result="error"}`)).toBe(1);
    expect(sample(text, `${P}desired_publish_duration_seconds_count`)).toBe(0);
  });

  it('counts edge events by result from 0 and reads the queue length at scrape time', async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false });
    let text = await metrics.text();
    for (const r of ['created', 'updated', 'stale', 'dropped', 'coalesced', 'malformed'])
      expect(sample(text, `${P}edge_events_total{result="${r}"}`)).toBe(0);
    expect(sample(text, `${P}edge_events_queued`)).toBe(0);
    let queued = 42;
    metrics.watchEdgeEvents(() => queued);
    metrics.edgeEvent('created');
    metrics.edgeEvent('coalesced');
    metrics.edgeEvent('coalesced');
    text = await metrics.text();
    expect(sample(text, `${P}edge_events_total{result="created"}`)).toBe(1);
    expect(sample(text, `${P}edge_events_total{result="coalesced"}`)).toBe(2);
    expect(sample(text, `${P}edge_events_queued`)).toBe(42);
    queued = 0;
    expect(sample(await metrics.text(), `${P}edge_events_queued`)).toBe(0);
  });

  it("exposes per-node gauges at scrape time, and drops a node's series once it is no longer served", async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false, nowMs });
    const kube = new FakeKubeClient();
    const facts = new NodeFacts({ now: () => new Date(clock) });
    const nodes = new NodeController({
      kube,
      log,
      facts,
      kubeletPort: 10250,
      kubeletAddress: '127.0.0.1',
      now: () => new Date(clock),
      tickMs: 60_000,
      leaseRenewMs: 60_000,
    });
    const membership = new FakeMembership();
    membership.subscribe(nodes);
    await membership.take(['edge-1', 'edge-2']);
    const source: ServedNodesSource = {
      served: () => membership.served(),
      connected: (n) => facts.connected(n),
      lastHeartbeat: (n) => facts.lastHeartbeat(n),
      desiredSequence: (n) => (n === 'edge-1' ? 42 : undefined),
      pods: (n) => (n === 'edge-1' ? 3 : 0),
      shardsOwned: () => 4,
    };
    metrics.watchNodes(source);
    nodes.onHeartbeat('edge-1', create(edge.NodeHeartbeatSchema, { nodeName: 'edge-1', appliedSequence: 40n }), clock - 7_000);
    await new Promise((r) => setImmediate(r));

    let text = await metrics.text();
    expect(sample(text, `${P}edge_connected{node="edge-1"}`)).toBe(1);
    expect(sample(text, `${P}edge_connected{node="edge-2"}`)).toBe(0);
    expect(sample(text, `${P}edge_heartbeat_age_seconds{node="edge-1"}`)).toBe(7);
    expect(sample(text, `${P}edge_heartbeat_age_seconds{node="edge-2"}`)).toBeUndefined(); // no heartbeat yet
    expect(sample(text, `${P}desired_sequence{node="edge-1"}`)).toBe(42);
    expect(sample(text, `${P}applied_sequence{node="edge-1"}`)).toBe(40);
    expect(sample(text, `${P}desired_lag{node="edge-1"}`)).toBe(2);
    expect(sample(text, `${P}pods{node="edge-1"}`)).toBe(3);
    expect(sample(text, `${P}nodes_served`)).toBe(2);
    expect(sample(text, `${P}shards_owned`)).toBe(4);

    clock += 60_000; // the heartbeat ages at scrape time, without any event
    text = await metrics.text();
    expect(sample(text, `${P}edge_heartbeat_age_seconds{node="edge-1"}`)).toBe(67);
    expect(sample(text, `${P}edge_connected{node="edge-1"}`)).toBe(0);

    await membership.release('edge-1', 'handed-over');
    text = await metrics.text();
    expect(text).not.toContain('node="edge-1"');
    expect(sample(text, `${P}nodes_served`)).toBe(1);
    await nodes.stop();
  });

  it('counts NATS disconnects and reconnects from the status iterator until stopped', async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false });
    const events = [{ type: 'disconnect' }, { type: 'reconnecting' }, { type: 'reconnect' }, { type: 'disconnect' }];
    let stopped = false;
    const statuses = {
      async *[Symbol.asyncIterator]() {
        for (const e of events) yield e;
      },
      stop: () => (stopped = true),
    };
    const stop = metrics.watchNats({ status: () => statuses });
    await new Promise((r) => setImmediate(r));
    const text = await metrics.text();
    expect(sample(text, `${P}nats_disconnects_total`)).toBe(2);
    expect(sample(text, `${P}nats_reconnects_total`)).toBe(1);
    stop();
    expect(stopped).toBe(true);
  });

  it('keeps separate registries per instance and includes the process metrics by default', async () => {
    const a = new ProviderMetrics();
    const b = new ProviderMetrics();
    expect(a.registry).not.toBe(b.registry);
    expect(await a.text()).toContain('process_cpu_seconds_total');
  });
});

describe('HTTP endpoint', () => {
  it("serves /metrics in the registry's content type, health, and 404 elsewhere", async () => {
    const metrics = new ProviderMetrics({ defaultMetrics: false });
    const http = httpServer({ notReady: () => undefined, metrics });
    const res = await http.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(metrics.registry.contentType);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain(`# TYPE ${P}status_reports_total counter`);
    expect((await http.inject({ method: 'GET', url: '/nope' })).statusCode).toBe(404);
    expect((await http.inject({ method: 'GET', url: '/healthz' })).body).toBe('ok');
    await http.close();
  });

  it('answers 503 on /readyz when not ready', async () => {
    const http = httpServer({ notReady: () => 'nats connection closed', metrics: new ProviderMetrics({ defaultMetrics: false }) });
    const res = await http.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toBe('nats connection closed');
    await http.close();
  });

  it('never throws: an empty registry answers 200, a failing collection 500', async () => {
    const empty = httpServer({
      notReady: () => undefined,
      metrics: { text: async () => '', contentType: 'text/plain; version=0.0.4; charset=utf-8' },
    });
    const res = await empty.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
    await empty.close();
    const failing = httpServer({
      notReady: () => undefined,
      metrics: { text: async () => Promise.reject(new Error('boom')), contentType: 'text/plain' },
    });
    const bad = await failing.inject({ method: 'GET', url: '/metrics' });
    expect(bad.statusCode).toBe(500);
    expect(bad.body).toContain('boom');
    await failing.close();
  });
});
