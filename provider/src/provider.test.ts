/**
 * The Provider's wiring, on fakes (API, hub, EdgeStreams; the kubelet API over real TLS on loopback): a takeover in
 * the order the membership promises, a deleted EdgeNode, a stop that hands everything over, and the read models the
 * metrics and the Event sink see.
 */
import { readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import net from 'node:net';
import { create, edge } from '@edgefarm/proto';
import type { NatsConnection } from '@nats-io/transport-node';
import type { V1NodeStatus } from '@kubernetes/client-node';
import { pino } from 'pino';
import { FakeKubeClient } from './kube/fake.js';
import { FakeBus } from './bus/fake.js';
import { oneConnection } from './bus/hub.js';
import { FakeEdgeStreams } from './kubelet/fake-streams.js';
import { makePki, type TestPki } from './kubelet/testing.js';
import { DEFAULT_TAINT } from './nodecontroller/node.js';
import { translatePod } from './podcontroller/translate.js';
import { pod } from './podcontroller/testing.js';
import type { ProviderConfig } from './config.js';
import { Provider } from './provider.js';

const log = pino({ level: 'silent' });

/** The NATS connection as the provider uses it besides the hub: connection status (metrics) and readiness. */
function fakeNats(): NatsConnection {
  return {
    isClosed: () => false,
    status: () => {
      let stop!: () => void;
      const stopped = new Promise<IteratorResult<never>>((r) => (stop = () => r({ done: true, value: undefined })));
      return { [Symbol.asyncIterator]: () => ({ next: () => stopped }), stop };
    },
  } as unknown as NatsConnection;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function until(what: string, ok: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const heartbeat = () =>
  create(edge.NodeHeartbeatSchema, {
    nodeName: 'edge-1',
    agentVersion: '0.1.0',
    capacity: { cpu: '2', memory: '1Gi', pods: '110' },
    allocatable: { cpu: '2', memory: '1Gi', pods: '110' },
    conditions: [{ type: 'Ready', status: 'True' }],
    addresses: [{ type: 'InternalIP', address: '10.201.1.2' }],
    appliedSequence: 5n,
  });

let pki: TestPki;
beforeAll(() => (pki = makePki()));
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

async function bed() {
  const kube = new FakeKubeClient();
  const bus = new FakeBus();
  const nodePort = await freePort();
  const config: ProviderConfig = {
    natsUrl: 'nats://127.0.0.1:4222',
    httpPort: 0,
    kubeletPort: 0,
    kubeletAddress: '127.0.0.1',
    logLevel: 'silent',
    hubReplicas: 1,
    namespace: 'edgefarm-system',
    identity: 'provider-a',
    shards: 4,
    shardLeaseSeconds: 15,
    nodeTaints: [DEFAULT_TAINT],
    tombstoneTtlSeconds: 86_400,
    eventQps: 50,
    deviceStatusIntervalSeconds: 5,
    deviceStatusQps: 20,
    kubeletNodePorts: { from: nodePort, to: nodePort },
    nodeCredentialSeconds: 86_400,
    nodeCredentialTimeoutSeconds: 60,
  };
  const provider = new Provider({
    kube,
    hub: oneConnection(fakeNats()),
    log,
    config,
    bus,
    edgeStreams: new FakeEdgeStreams(),
    kubeletTls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), clientCA: readFileSync(pki.ca) },
  });
  // One timeline of the hub reads and the Node writes.
  const timeline: string[] = [];
  for (const m of ['readDesired', 'readStatus'] as const) {
    const read = bus[m].bind(bus) as (...a: unknown[]) => Promise<unknown>;
    (bus as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => (timeline.push(m), read(...a));
  }
  const createNode = kube.createNode.bind(kube);
  kube.createNode = (n) => (timeline.push('createNode'), createNode(n));
  const patchNodeStatus = kube.patchNodeStatus.bind(kube);
  kube.patchNodeStatus = (name, p) => {
    timeline.push(`patchNodeStatus Ready=${(p as { status: V1NodeStatus }).status.conditions!.find((c) => c.type === 'Ready')!.status}`);
    return patchNodeStatus(name, p);
  };
  return { kube, bus, provider, nodePort, timeline };
}

/** Whether something accepts TCP connections on the port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

const healthz = (port: number) =>
  new Promise<number>((resolve, reject) => {
    const cert = { cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) };
    const req = request({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false, agent: false, ...cert }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });

describe('Provider', () => {
  it('takes a node over in order (desired state, last status, then the Node), republishes nothing still wanted, and hands it over on stop', async () => {
    const { kube, bus, provider, nodePort, timeline } = await bed();
    kube.emitEdgeNode({ metadata: { name: 'edge-1' } });
    const stored = kube.emitPod(pod());
    const t = translatePod(stored);
    if (!t.ok) throw new Error('fixture');
    bus.desired.push({ node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'web-1' }, spec: t.spec, seq: 5 });
    bus.lastStatus.push({ node: 'edge-1', heartbeat: heartbeat(), atMs: Date.now() });

    await provider.start();
    try {
      await until('the Node status', () => timeline.some((l) => l.startsWith('patchNodeStatus')));
      expect(timeline.slice(0, 4)).toEqual(['readDesired', 'readStatus', 'createNode', 'patchNodeStatus Ready=True']);
      expect(bus.reads).toEqual(['readDesired edge-1', 'readStatus edge-1']);
      const node = kube.nodes.get('edge-1')!;
      expect(node.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(nodePort);
      expect(await healthz(nodePort)).toBe(200);
      expect(bus.published).toEqual([]);

      const text = await provider.metrics.text();
      expect(text).toMatch(/^edgefarm_provider_nodes_served 1$/m);
      expect(text).toMatch(/^edgefarm_provider_desired_sequence\{node="edge-1"\} 5$/m);
      expect(text).toMatch(/^edgefarm_provider_edge_connected\{node="edge-1"\} 1$/m);
      expect(text).toMatch(/^edgefarm_provider_pods\{node="edge-1"\} 1$/m);

      // Events of served nodes are written; others' are not this replica's business.
      const event = (node: string) =>
        create(edge.EdgeEventSchema, {
          id: `e-${node}`,
          key: '0123456789abcdef',
          podUid: 'uid-1',
          podNamespace: 'default',
          podName: 'web-1',
          type: edge.EventType.NORMAL,
          reason: 'Pulled',
          message: 'pulled',
          firstTimestampMs: 1n,
          lastTimestampMs: 1n,
          count: 1,
          nodeName: node,
        });
      await bus.event('edge-9', event('edge-9'));
      await bus.event('edge-1', event('edge-1'));
      await until('the Event', () => kube.events.length > 0);
      expect(kube.events.map((e) => e.reason)).toEqual(['Pulled']);

      // An Event about a pod the API does not have costs no API call: pods are resolved from the informer cache.
      await bus.event('edge-1', create(edge.EdgeEventSchema, { ...event('edge-1'), id: 'ghost', podName: 'ghost', podUid: 'ghost-uid' }));
      const dropped = /^edgefarm_provider_edge_events_total\{result="dropped"\} 1$/m;
      for (let i = 0; i < 250 && !dropped.test(await provider.metrics.text()); i++) await new Promise((r) => setTimeout(r, 20));
      expect(await provider.metrics.text()).toMatch(dropped);
      expect(kube.calls.filter((c) => c.startsWith('getPod'))).toEqual([]);
    } finally {
      await provider.stop();
    }
    // Handed over: no tombstone, the Node stays, the shards are released and the member Lease is gone.
    expect(bus.tombstones).toEqual([]);
    expect(kube.nodes.has('edge-1')).toBe(true);
    const leases = [...kube.leases.values()].filter((l) => l.metadata!.namespace === 'edgefarm-system');
    expect(leases.map((l) => l.metadata!.name).sort()).toEqual([
      'edgefarm-shard-0',
      'edgefarm-shard-1',
      'edgefarm-shard-2',
      'edgefarm-shard-3',
    ]);
    expect(leases.every((l) => !l.spec!.holderIdentity)).toBe(true);
    expect(await listening(nodePort)).toBe(false);
  });

  it('a deleted EdgeNode (confirmed with the API) gets its pods tombstoned, its Node deleted and its port closed', async () => {
    const { kube, bus, provider, nodePort } = await bed();
    kube.emitEdgeNode({ metadata: { name: 'edge-1' } });
    kube.emitPod(pod());
    await provider.start();
    try {
      await until('the pod published', () => bus.published.length === 1);
      await until('the Node', () => kube.nodes.has('edge-1'));
      expect(await listening(nodePort)).toBe(true);
      kube.emitEdgeNodeDelete('edge-1');
      await provider.reconcile();
      await until('the tombstone', () => bus.tombstones.length === 1);
      expect(bus.tombstones[0]).toEqual({ node: 'edge-1', key: { namespace: 'default', name: 'web-1' } });
      expect(kube.calls).toContain('getEdgeNode edge-1');
      expect(kube.nodes.has('edge-1')).toBe(false);
      expect(await listening(nodePort)).toBe(false);
    } finally {
      await provider.stop();
    }
  });

  it('a node that joins: its desired state and NodeConfig published again, its old wire id retired once it reports, nothing deleted', async () => {
    const key = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
    const { kube, bus, provider } = await bed();
    kube.emitEdgeNode({ metadata: { name: 'edge-1' } });
    kube.emitPod(pod());
    await provider.start();
    try {
      await until('the pod and the NodeConfig published', () => bus.published.length === 1 && bus.nodeConfigs.has('edge-1'));
      await until('the Node', () => kube.nodes.has('edge-1'));
      const before = bus.log.length;
      kube.emitEdgeNode({ metadata: { name: 'edge-1' }, status: { connected: true, identity: { publicKey: key } } });
      await provider.reconcile();
      await until('published again', () => bus.log.length >= before + 2);
      expect(bus.log.slice(before).sort()).toEqual(['node edge-1 ttl=86400', 'pod edge-1 default/web-1']);
      expect(bus.retired).toEqual([]); // not before the node reports under its key
      bus.heartbeat('edge-1', heartbeat(), Date.now());
      await until('the old wire id retired', () => bus.retired.length === 1);
      expect(bus.retired).toEqual(['edge-1']);
      expect(bus.tombstones).toEqual([]);
      expect(kube.nodes.has('edge-1')).toBe(true);
      expect(kube.calls.some((c) => c.startsWith('deletePod') || c.startsWith('deleteNode'))).toBe(false);

      bus.dropStatus('unknown-node');
      bus.dropStatus('malformed');
      const text = await provider.metrics.text();
      expect(text).toMatch(/^edgefarm_provider_hub_messages_rejected_total\{stream="status",reason="unknown-node"\} 1$/m);
      expect(text).toMatch(/^edgefarm_provider_status_reports_total\{result="dropped"\} 1$/m);
    } finally {
      await provider.stop();
    }
  });
});
