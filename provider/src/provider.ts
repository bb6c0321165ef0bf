/**
 * Provider: one process serving the edge nodes of the shards it holds. It only wires the parts; each owns its state:
 *
 * - NodeMembership (membership/): which nodes are served (EdgeNodes × shards held), and the order in which the parts
 *   learn of a node taken on, given up or named by a new wire id. The parts below subscribe in the order that
 *   takeover needs. It also fills NodeIdentities, the read model of which wire id names which node, that the hub bus
 *   and the kubelet transport build and parse subjects with (decision 0008).
 * - HubBus (bus/): the hub, over two connections (EF_DESIRED and EF_CLOUD accounts; one without credentials);
 *   NodeConfigs keeps each node's NodeConfig there, RetiredWireIds retires a node's old wire id once it reports
 *   under its new one.
 * - KubeletServer (kubelet/): the kubelet API; a node's own port is opened when the node is taken on.
 * - DesiredSequences (bus/): the last desired-state sequence published per node, as the pod side publishes.
 * - PodController (podcontroller/): pods -> desired state on the hub; reports -> pod status. What it does for a node
 *   (its pods' Secrets, ConfigMaps, tokens, status) it does as that node, through NodeClients (decision 0010).
 * - DeviceController (devices/): Devices (with their DeviceModels resolved) -> desired devices on the hub, through
 *   DesiredSequences like the pods (docs/decisions/0012-devices.md); DeviceStatusWriter: the sites' device twins ->
 *   the Devices' status subresource, at a bounded rate.
 * - NodeController (nodecontroller/): Nodes, node Leases and EdgeNode status from heartbeats; the one writer of
 *   NodeFacts, which the pod side, the kubelet transport and the metrics read.
 * - ShardLeases (shard/), EdgeEventSink (events/), ProviderMetrics (metrics/), /healthz, /readyz and /metrics.
 *
 * Data flows one way: the hub's status stream -> NodeController (heartbeats) and PodController (reports); the pod
 * informer -> PodController -> desired subjects; read models (ServedNodes, NodeFacts, DesiredSequences, BoundPods)
 * are read, never called back into.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { KubeClient } from './kube/client.js';
import type { NodeClients } from './kube/node-clients.js';
import type { ProviderConfig } from './config.js';
import { hubStreamLimits } from './bus/limits.js';
import { HubBus, type Hub, type HubConnections, type StatusHandlers } from './bus/hub.js';
import { NodeConfigs } from './bus/node-config.js';
import { RetiredWireIds } from './bus/retired-ids.js';
import { DesiredSequences } from './bus/sequences.js';
import { NodeIdentities } from './membership/identities.js';
import { EdgeEventSink } from './events/sink.js';
import { NodeMembership } from './membership/membership.js';
import { NodeController } from './nodecontroller/controller.js';
import { NodeFacts } from './nodecontroller/facts.js';
import { PodController } from './podcontroller/controller.js';
import { DeviceController } from './devices/controller.js';
import { DeviceStatusWriter } from './devices/status.js';
import { ShardLeases } from './shard/shards.js';
import { ProviderMetrics } from './metrics/metrics.js';
import { InstrumentedKubeClient } from './kube/instrumented.js';
import { BoundPods } from './kube/bound-pods.js';
import { InstrumentedPublisher } from './bus/instrumented.js';
import { httpServer } from './http.js';
import type { EdgeStreams } from './kubelet/edge-streams.js';
import { NatsEdgeStreams } from './kubelet/nats-streams.js';
import { KubeletAuth } from './kubelet/auth.js';
import { KubeletServer } from './kubelet/server.js';

export interface ProviderDeps {
  kube: KubeClient;
  /** The hub connections (bus/connections.ts); the same one twice without credentials. */
  hub: HubConnections;
  log: Logger;
  config: ProviderConfig;
  /** Default: a new ProviderMetrics with its own registry. */
  metrics?: ProviderMetrics;
  /** The kubelet API's serving certificate and key, and the client CA (PEM); without them no kubelet API is served. */
  kubeletTls?: { cert: Buffer; key: Buffer; clientCA?: Buffer };
  /** Default: NatsEdgeStreams over `hub.cloud`. */
  edgeStreams?: EdgeStreams;
  /** Default: HubBus over `hub`. */
  bus?: Hub;
  /**
   * The API as each served node (kube/node-clients.ts: a client certificate per node from the CSR API). Default: every
   * node as `kube`, which then needs the rights the Node authorizer would give the nodes (tests with fakes).
   */
  nodes?: NodeClients;
  /** Pushes the revocation list to the hub (identity/revoker.ts); started last, stopped first. */
  revoker?: { start(): Promise<void>; stop(): Promise<void> };
}

export class Provider {
  private readonly bus: Hub;
  private readonly membership: NodeMembership;
  private readonly nodes: NodeController;
  private readonly pods: PodController;
  private readonly devices: DeviceController;
  private readonly deviceStatus: DeviceStatusWriter;
  private readonly boundPods: BoundPods;
  private readonly shards: ShardLeases;
  private readonly nodeConfigs: NodeConfigs;
  private readonly retired: RetiredWireIds;
  private readonly status: StatusHandlers;
  private readonly log: Logger;
  /** The API as the provider uses it: every call timed into the metrics. */
  private readonly kube: KubeClient;
  readonly metrics: ProviderMetrics;
  private stopNatsMetrics: (() => void)[] = [];
  private events?: EdgeEventSink;
  private http?: FastifyInstance;
  /** The transport this provider made (and closes), when none was passed in. */
  private readonly natsStreams?: NatsEdgeStreams;
  private readonly kubelet?: KubeletServer;

  constructor(private readonly deps: ProviderDeps) {
    const { hub, config } = deps;
    const log = (this.log = deps.log);
    const metrics = (this.metrics = deps.metrics ?? new ProviderMetrics());
    const kube = (this.kube = new InstrumentedKubeClient(deps.kube, (...a) => metrics.kubeRequest(...a)));
    const identities = new NodeIdentities(log.child({ part: 'identities' }));
    const bus = (this.bus =
      deps.bus ??
      new HubBus(
        { hub, log: log.child({ part: 'bus' }), wireIds: identities },
        {
          replicas: config.hubReplicas,
          tombstoneTtlSeconds: config.tombstoneTtlSeconds,
          limits: hubStreamLimits(config),
        },
      ));

    const shards = (this.shards = new ShardLeases({
      kube,
      log: log.child({ part: 'shards' }),
      namespace: config.namespace,
      identity: config.identity,
      shards: config.shards,
      leaseDurationSeconds: config.shardLeaseSeconds,
      onAcquired: () => this.membership.reconcile(),
      onLost: () => this.membership.reconcile(),
    }));
    const membership = (this.membership = new NodeMembership({
      kube,
      edgeNodes: kube.edgeNodeWatch(),
      identities,
      shards,
      hub: { readDesired: (nodes) => bus.readDesired(nodes), readStatus: (nodes) => bus.readStatus(nodes, this.status) },
      log: log.child({ part: 'membership' }),
      defaultTaints: config.nodeTaints,
    }));

    const facts = new NodeFacts();
    const podWatch = kube.podWatch();
    const boundPods = (this.boundPods = new BoundPods(podWatch));
    const published = new InstrumentedPublisher(bus, {
      published: (...a) => metrics.desiredPublished(...a),
      failed: (...a) => metrics.desiredPublishFailed(...a),
    });
    const sequences = new DesiredSequences(published, membership);
    this.pods = new PodController({
      kube,
      nodes: deps.nodes,
      bus: sequences,
      pods: podWatch,
      services: kube.serviceWatch(),
      served: membership,
      facts,
      metrics,
      log: log.child({ part: 'pods' }),
    });
    const deviceWatch = kube.deviceWatch();
    this.devices = new DeviceController({
      kube,
      bus: sequences,
      devices: deviceWatch,
      models: kube.deviceModelWatch(),
      served: membership,
      log: log.child({ part: 'devices' }),
    });
    this.deviceStatus = new DeviceStatusWriter({
      kube,
      devices: deviceWatch,
      log: log.child({ part: 'device-status' }),
      intervalMs: config.deviceStatusIntervalSeconds * 1000,
      qps: config.deviceStatusQps,
      outcome: (result) => metrics.deviceTwin(result),
    });

    if (!deps.edgeStreams)
      this.natsStreams = new NatsEdgeStreams({
        nc: hub.cloud,
        log: log.child({ part: 'streams' }),
        offlineSince: (node) => facts.offlineSince(node),
        wireIds: identities,
      });
    const streams = deps.edgeStreams ?? this.natsStreams!;
    if (deps.kubeletTls) {
      this.kubelet = new KubeletServer({
        streams,
        auth: new KubeletAuth({ kube, log: log.child({ part: 'kubelet-auth' }) }),
        log: log.child({ part: 'kubelet' }),
        served: membership,
        pods: boundPods,
        tls: deps.kubeletTls,
        port: config.kubeletPort,
        nodePorts: config.kubeletNodePorts,
        maxSessions: config.kubeletMaxSessions,
        streamingIdleTimeoutMs: config.kubeletStreamingIdleTimeoutSeconds && config.kubeletStreamingIdleTimeoutSeconds * 1000,
        registry: metrics.registry,
      });
    } else {
      log.warn('no kubelet API certificate (EF_KUBELET_TLS_CERT/EF_KUBELET_TLS_KEY): kubectl logs/exec/port-forward/top will not work');
    }
    this.nodes = new NodeController({
      kube,
      log: log.child({ part: 'nodes' }),
      facts,
      kubeletPort: this.kubelet && config.kubeletNodePorts ? this.kubelet : config.kubeletPort,
      kubeletAddress: config.kubeletAddress,
      desired: sequences,
      pods: boundPods,
      rejected: (reason) => metrics.heartbeatRejected(reason),
    });

    this.nodeConfigs = new NodeConfigs({
      bus: sequences,
      served: membership,
      log: log.child({ part: 'node-configs' }),
      tombstoneTtlSeconds: config.tombstoneTtlSeconds,
    });
    this.retired = new RetiredWireIds({ hub: bus, log: log.child({ part: 'retired-ids' }) });

    // The order membership tells them in: a node's port (advertised in its Node) and desired sequence exist before
    // the controllers hear of it; the pod controller forgets a node given up (or queues its tombstones) before the
    // node controller deletes a deleted EdgeNode's Node.
    if (this.kubelet) membership.subscribe(this.kubelet);
    membership.subscribe(sequences);
    membership.subscribe(this.pods);
    membership.subscribe(this.devices);
    membership.subscribe(this.nodeConfigs);
    membership.subscribe(this.retired);
    membership.subscribe(this.nodes);

    this.status = {
      pod: (node, report) => this.pods.onReport(node, report),
      heartbeat: (node, hb, storedAtMs) => {
        this.retired.heard(node);
        this.nodes.onHeartbeat(node, hb, storedAtMs);
      },
      dropped: (reason) => (reason === 'malformed' ? metrics.statusReport('dropped') : metrics.hubRejected('status', reason)),
      metrics: (node, text) => metrics.edgeMetrics(node, text),
      device: (node, report) => {
        if (this.membership.serves(node)) this.deviceStatus.onReport(node, report);
      },
    };
    metrics.watchNodes({
      served: () => membership.served(),
      connected: (node) => facts.connected(node),
      lastHeartbeat: (node) => facts.lastHeartbeat(node),
      desiredSequence: (node) => sequences.sequence(node),
      pods: (node) => boundPods.count(node),
      shardsOwned: () => shards.ownedShards().length,
    });
  }

  async start(): Promise<void> {
    const { config } = this.deps;
    const { desired, cloud } = this.deps.hub;
    this.stopNatsMetrics = [desired, ...(cloud === desired ? [] : [cloud])].map((nc) => this.metrics.watchNats(nc));
    await this.bus.ensureStreams();
    await this.bus.followStatus(this.status);
    const events = new EdgeEventSink({
      kube: this.kube,
      getPod: (ns, name) => this.boundPods.get(ns, name),
      log: this.log.child({ part: 'events' }),
      outcome: (result) => this.metrics.edgeEvent(result),
      ratePerS: config.eventQps,
    });
    this.events = events;
    this.metrics.watchEdgeEvents(() => events.queued);
    await this.bus.followEvents({
      event: async (node, e) => {
        if (this.membership.serves(node)) await events.enqueue(node, e);
      },
      dropped: (reason) => (reason === 'malformed' ? this.metrics.edgeEvent('malformed') : this.metrics.hubRejected('events', reason)),
    });
    await this.pods.start();
    await this.devices.start();
    await this.membership.start();
    this.nodes.start();
    await this.kubelet?.start();
    await this.shards.start();
    this.http = httpServer({
      notReady: () => (desired.isClosed() || cloud.isClosed() ? 'nats connection closed' : undefined),
      metrics: this.metrics,
      registry: this.metrics.registry,
      metricsAuth: this.deps.config.metricsAuth
        ? new KubeletAuth({ kube: this.deps.kube, log: this.log.child({ part: 'metrics-auth' }) })
        : undefined,
    });
    await this.http.listen({ port: config.httpPort, host: '0.0.0.0' });
    await this.deps.revoker?.start();
    this.log.info(
      { httpPort: config.httpPort, identity: config.identity, shards: this.shards.ownedShards().length, nodes: this.membership.served() },
      'provider started',
    );
  }

  /** Hands every node over to the other replicas (releasing the shard leases), then stops. */
  /** A renewed kubelet API serving certificate (EF_KUBELET_SERVING_CSR): new connections get it. */
  setKubeletCertificate(cert: string, key: string): void {
    this.kubelet?.setCertificate(cert, key);
  }

  async stop(): Promise<void> {
    await this.deps.revoker?.stop();
    await this.shards.stop();
    await this.kubelet?.stop();
    this.natsStreams?.close();
    await this.http?.close();
    await this.membership.stop();
    await this.bus.stop();
    await this.events?.stop();
    await this.pods.stop();
    this.deviceStatus.stop();
    await this.devices.stop();
    await this.nodeConfigs.stop();
    await this.retired.stop();
    await this.nodes.stop();
    for (const stop of this.stopNatsMetrics.splice(0)) stop();
  }

  /** Brings the served nodes in line with the EdgeNodes and the shards held (tests; see NodeMembership.reconcile). */
  reconcile(): Promise<void> {
    return this.membership.reconcile();
  }
}
