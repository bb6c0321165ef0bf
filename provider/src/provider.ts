/**
 * Provider: one process serving many edge nodes. Wires the hub bus, the node controller and the pod controller,
 * and serves /healthz. Components start in dependency order and stop in reverse.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { KubeClient } from './kube/client.js';
import type { ProviderConfig } from './config.js';
import { HubBus, readDesired } from './bus/hub.js';
import { NodeController } from './nodecontroller/controller.js';
import { PodController } from './podcontroller/controller.js';

export interface ProviderDeps {
  kube: KubeClient;
  nc: NatsConnection;
  log: Logger;
  config: ProviderConfig;
  /** Overrides for tests (timings). */
  nodeControllerOptions?: Partial<ConstructorParameters<typeof NodeController>[0]>;
}

export class Provider {
  private readonly bus: HubBus;
  private readonly nodes: NodeController;
  private readonly pods: PodController;
  private http?: FastifyInstance;

  constructor(private readonly deps: ProviderDeps) {
    const { kube, nc, log, config } = deps;
    this.bus = new HubBus(nc, log.child({ part: 'bus' }), config.hubReplicas);
    this.nodes = new NodeController({
      kube,
      log: log.child({ part: 'nodes' }),
      nodes: config.nodes,
      kubeletPort: config.kubeletPort,
      kubeletAddress: config.kubeletAddress,
      desiredSequence: (node) => this.pods.desiredSequence(node),
      ...deps.nodeControllerOptions,
    });
    this.pods = new PodController({
      kube,
      bus: this.bus,
      log: log.child({ part: 'pods' }),
      nodes: new Set(config.nodes),
      hostIP: (node) => this.nodes.hostIP(node),
    });
  }

  async start(): Promise<void> {
    const { config, log } = this.deps;
    await this.bus.ensureStreams();
    await this.nodes.start();
    const existing = await readDesired(this.deps.nc, config.nodes, log);
    await this.pods.start(existing);
    await this.bus.followStatus(config.nodes, {
      pod: (node, report) => this.pods.onReport(node, report),
      heartbeat: (node, hb, storedAtMs) => this.nodes.onHeartbeat(node, hb, storedAtMs),
    });
    this.http = Fastify({ logger: false });
    this.http.get('/healthz', async () => 'ok');
    this.http.get('/readyz', async (_req, reply) => {
      const closed = this.deps.nc.isClosed();
      return reply.code(closed ? 503 : 200).send(closed ? 'nats connection closed' : 'ok');
    });
    await this.http.listen({ port: config.httpPort, host: '0.0.0.0' });
    log.info({ httpPort: config.httpPort, nodes: config.nodes }, 'provider started');
  }

  async stop(): Promise<void> {
    await this.http?.close();
    await this.bus.stop();
    await this.pods.stop();
    this.nodes.stop();
  }
}
