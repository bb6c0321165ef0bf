/**
 * Provider: one process serving the edge nodes of the shards it holds. Wires the hub bus, the shard leases, the
 * EdgeNode watch, the node controller and the pod controller, serves /healthz, /readyz and /metrics, and the kubelet
 * API of its nodes (kubelet/server.ts) over the EdgeStreams transport.
 *
 * Which nodes this replica serves is decided in one place, {@link Provider.reconcile}: every EdgeNode whose shard it
 * holds. Taking a node on reads the node's desired state and last status back from the hub first, so a takeover
 * (start, failover, rebalance) republishes, deletes and recreates nothing. Giving a node up (shard lost or released)
 * forgets it without touching anything; only a deleted EdgeNode tombstones the node's pods.
 */
import type { FastifyInstance } from 'fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { EdgeNode, KubeClient, Watcher } from './kube/client.js';
import type { ProviderConfig } from './config.js';
import { HubBus, readDesired, type StatusHandlers } from './bus/hub.js';
import { EdgeEventSink } from './events/sink.js';
import { NodeController } from './nodecontroller/controller.js';
import { policyOf, MANAGED_ANNOTATION, type NodePolicy } from './nodecontroller/node.js';
import { PodController } from './podcontroller/controller.js';
import { ShardLeases } from './shard/shards.js';
import { ProviderMetrics } from './metrics/metrics.js';
import { InstrumentedKubeClient } from './kube/instrumented.js';
import { InstrumentedPublisher } from './bus/instrumented.js';
import { httpServer } from './http.js';
import type { EdgeStreams } from './kubelet/edge-streams.js';
import { NatsEdgeStreams } from './kubelet/nats-streams.js';
import { KubeletAuth } from './kubelet/auth.js';
import { KubeletServer } from './kubelet/server.js';

export interface ProviderDeps {
  kube: KubeClient;
  nc: NatsConnection;
  log: Logger;
  config: ProviderConfig;
  /** Default: a new ProviderMetrics with its own registry. */
  metrics?: ProviderMetrics;
  /** The kubelet API's serving certificate and key, and the client CA (PEM); without them no kubelet API is served. */
  kubeletTls?: { cert: Buffer; key: Buffer; clientCA?: Buffer };
  /** Default: NatsEdgeStreams over `nc`. */
  edgeStreams?: EdgeStreams;
}

/** How often membership is reconciled even without events (a missed watch event costs at most this). */
const RESYNC_MS = 30_000;

export class Provider {
  private readonly bus: HubBus;
  private readonly nodes: NodeController;
  private readonly pods: PodController;
  private readonly shards: ShardLeases;
  private readonly edgeNodes: Watcher<EdgeNode>;
  private readonly status: StatusHandlers;
  private readonly log: Logger;
  /** The API as the provider uses it: every call timed into the metrics. */
  private readonly kube: KubeClient;
  readonly metrics: ProviderMetrics;
  private stopNatsMetrics?: () => void;
  private events?: EdgeEventSink;
  private http?: FastifyInstance;
  private readonly streams: EdgeStreams;
  /** The transport this provider made (and closes), when none was passed in. */
  private readonly natsStreams?: NatsEdgeStreams;
  private readonly kubelet?: KubeletServer;
  /** Serializes membership changes; `reconcilePending` coalesces the requests made while one runs. */
  private chain: Promise<void> = Promise.resolve();
  private reconcilePending = false;
  private resyncTimer?: NodeJS.Timeout;
  /** Policy problems already logged, by EdgeNode name and resourceVersion. */
  private readonly reportedProblems = new Set<string>();

  constructor(private readonly deps: ProviderDeps) {
    const { nc, config } = deps;
    this.log = deps.log;
    const metrics = (this.metrics = deps.metrics ?? new ProviderMetrics());
    const kube = (this.kube = new InstrumentedKubeClient(deps.kube, (...a) => metrics.kubeRequest(...a)));
    this.bus = new HubBus(nc, this.log.child({ part: 'bus' }), config.hubReplicas, config.tombstoneTtlSeconds);
    this.pods = new PodController({
      kube,
      bus: new InstrumentedPublisher(this.bus, {
        published: (...a) => metrics.desiredPublished(...a),
        failed: (k) => metrics.desiredPublishFailed(k),
      }),
      metrics,
      log: this.log.child({ part: 'pods' }),
      hostIP: (node) => this.nodes.hostIP(node),
      connected: (node) => this.nodes.connected(node),
      allocatable: (node) => this.nodes.allocatable(node),
    });
    if (!deps.edgeStreams)
      this.natsStreams = new NatsEdgeStreams(nc, this.log.child({ part: 'streams' }), (node) => this.offlineSince(node));
    this.streams = deps.edgeStreams ?? this.natsStreams!;
    if (deps.kubeletTls) {
      this.kubelet = new KubeletServer({
        streams: this.streams,
        auth: new KubeletAuth({ kube, log: this.log.child({ part: 'kubelet-auth' }) }),
        log: this.log.child({ part: 'kubelet' }),
        pod: (ns, name) => this.pods.cachedPod(ns, name),
        serves: (node) => this.nodes.serves(node),
        served: () => this.nodes.served(),
        podsOf: (nodes) => this.pods.cachedPodsOn(nodes),
        tls: deps.kubeletTls,
        port: config.kubeletPort,
        nodePorts: config.kubeletNodePorts,
      });
    } else {
      this.log.warn(
        'no kubelet API certificate (EF_KUBELET_TLS_CERT/EF_KUBELET_TLS_KEY): kubectl logs/exec/port-forward/top will not work',
      );
    }
    const kubelet = this.kubelet;
    this.nodes = new NodeController({
      kube,
      log: this.log.child({ part: 'nodes' }),
      kubeletPort: kubelet && config.kubeletNodePorts ? (node) => kubelet.portOf(node) : config.kubeletPort,
      kubeletAddress: config.kubeletAddress,
      desiredSequence: (node) => this.pods.desiredSequence(node),
      podsOnNode: (node) => this.pods.podsOnNode(node),
      onConnectivity: (node, connected) => {
        this.log.info({ node, connected }, connected ? 'edge node connected' : 'edge node disconnected');
        if (connected) this.pods.resyncNode(node);
      },
    });
    this.shards = new ShardLeases({
      kube,
      log: this.log.child({ part: 'shards' }),
      namespace: config.namespace,
      identity: config.identity,
      shards: config.shards,
      leaseDurationSeconds: config.shardLeaseSeconds,
      onAcquired: () => this.reconcile(),
      onLost: () => this.reconcile(),
    });
    this.edgeNodes = kube.edgeNodeWatch();
    this.status = {
      pod: (node, report) => this.pods.onReport(node, report),
      heartbeat: (node, hb, storedAtMs) => this.nodes.onHeartbeat(node, hb, storedAtMs),
      dropped: () => metrics.statusReport('dropped'),
      metrics: (node, text) => metrics.edgeMetrics(node, text),
    };
    metrics.watchNodes({
      served: () => this.nodes.served(),
      connected: (node) => this.nodes.connected(node),
      lastHeartbeat: (node) => this.nodes.lastHeartbeat(node),
      desiredSequence: (node) => this.pods.desiredSequence(node),
      pods: (node) => this.pods.podsOnNode(node),
      shardsOwned: () => this.shards.ownedShards().length,
    });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    this.stopNatsMetrics = this.metrics.watchNats(this.deps.nc);
    await this.bus.ensureStreams();
    await this.bus.followStatus(this.status);
    const events = new EdgeEventSink({
      kube: this.kube,
      getPod: (ns, name) => this.pods.cachedPod(ns, name) ?? this.kube.getPod(ns, name),
      log: this.log.child({ part: 'events' }),
      outcome: (result) => this.metrics.edgeEvent(result),
      ratePerS: config.eventQps,
    });
    this.events = events;
    this.metrics.watchEdgeEvents(() => events.queued);
    await this.bus.followEvents({
      event: async (node, e) => {
        if (this.nodes.serves(node)) await events.enqueue(node, e);
      },
      dropped: () => this.metrics.edgeEvent('malformed'),
    });
    await this.pods.start();
    await this.edgeNodes.start({
      changed: () => void this.reconcile(),
      deleted: () => void this.reconcile(),
      error: (err) => this.log.warn({ err: (err as Error)?.message }, 'EdgeNode watch failed; restarting'),
    });
    this.nodes.start();
    await this.kubelet?.start();
    await this.shards.start();
    this.resyncTimer = setInterval(() => void this.reconcile(), RESYNC_MS);
    this.http = httpServer({ notReady: () => (this.deps.nc.isClosed() ? 'nats connection closed' : undefined), metrics: this.metrics });
    await this.http.listen({ port: config.httpPort, host: '0.0.0.0' });
    this.log.info(
      { httpPort: config.httpPort, identity: config.identity, shards: this.shards.ownedShards().length, nodes: this.nodes.served() },
      'provider started',
    );
  }

  /** Hands every node over to the other replicas (releasing the shard leases), then stops. */
  async stop(): Promise<void> {
    clearInterval(this.resyncTimer);
    await this.shards.stop();
    await this.kubelet?.stop();
    this.natsStreams?.close();
    await this.http?.close();
    await this.edgeNodes.stop();
    await this.bus.stop();
    await this.events?.stop();
    await this.pods.stop();
    await this.nodes.stop();
    this.stopNatsMetrics?.();
  }

  /** Brings the set of served nodes in line with the EdgeNodes and the shards held. Serialized and coalesced. */
  reconcile(): Promise<void> {
    if (this.reconcilePending) return this.chain;
    this.reconcilePending = true;
    this.chain = this.chain.then(async () => {
      this.reconcilePending = false;
      try {
        await this.reconcileOnce();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'node membership reconcile failed; will retry');
        setTimeout(() => void this.reconcile(), 2_000).unref();
      }
    });
    return this.chain;
  }

  private async reconcileOnce(): Promise<void> {
    const want = new Map<string, EdgeNode>();
    for (const en of this.edgeNodes.list()) {
      const name = en.metadata?.name;
      if (name && !en.metadata?.deletionTimestamp && this.shards.owns(this.shards.shardOf(name))) want.set(name, en);
    }
    const served = new Set(this.nodes.served());
    for (const name of served) {
      if (want.has(name)) continue;
      this.nodes.remove(name);
      this.kubelet?.release(name);
      const en = this.edgeNodes.get('', name);
      if (en && !en.metadata?.deletionTimestamp) {
        this.pods.releaseNodes([name]);
        this.log.info({ node: name }, 'node handed over to another replica');
      } else {
        await this.decommission(name);
      }
    }
    const added = [...want.keys()].filter((n) => !served.has(n));
    if (added.length) {
      const existing = await readDesired(this.deps.nc, added, this.log);
      // The Nodes are written once the nodes' last heartbeats and pod reports are read back (the pods are served by
      // then, so their reports apply).
      await this.nodes.add(
        added.map((name) => ({ name, policy: this.policy(want.get(name)!) })),
        async () => {
          this.pods.addNodes(added, existing);
          await this.bus.readStatus(added, this.status);
        },
      );
      this.log.info({ nodes: added, desired: existing.length }, 'serving nodes');
    }
    for (const [name, en] of want) if (served.has(name)) await this.nodes.update(name, this.policy(en));
  }

  /**
   * The node's EdgeNode is gone (confirmed with the API, never from the cache alone): tombstone its pods so the site
   * stops them, and delete its Node (the garbage collector would too: the Node is owned by the EdgeNode), after which
   * the pod garbage collector deletes the pods bound to it, as for any deleted Node.
   */
  private async decommission(name: string): Promise<void> {
    if (await this.kube.getEdgeNode(name)) {
      this.pods.releaseNodes([name]);
      return;
    }
    this.pods.decommissionNode(name);
    const node = await this.kube.getNode(name);
    if (node?.metadata?.uid && node.metadata.annotations?.[MANAGED_ANNOTATION] !== undefined) {
      await this.kube.deleteNode(name, node.metadata.uid);
    }
    this.log.warn({ node: name }, 'EdgeNode deleted: its pods were tombstoned and its Node deleted');
  }

  /** For offline errors: since when a disconnected node was last heard of (undefined while connected or unknown). */
  private offlineSince(node: string): Date | undefined {
    if (this.nodes.connected(node)) return undefined;
    const hb = this.nodes.lastHeartbeat(node);
    return hb ? new Date(hb.atMs) : undefined;
  }

  private policy(en: EdgeNode): NodePolicy {
    const { policy, problems } = policyOf(en, this.deps.config.nodeTaints);
    const key = `${en.metadata?.name}@${en.metadata?.resourceVersion}`;
    if (problems.length && !this.reportedProblems.has(key)) {
      this.reportedProblems.add(key);
      this.log.warn({ node: en.metadata?.name, problems }, 'parts of the EdgeNode spec were ignored');
    }
    return policy;
  }
}
