/**
 * HollowSite: many hollow edge nodes in one process, for scale tests. Each node is a real {@link Agent} (desired
 * informer, reconciler, status, heartbeats, outbox forwarders, events, metrics publish) with its own NATS connection
 * to the site's leaf nats-server and its own site streams there; only the container runtime and the image service are
 * in memory ({@link MemoryPodRuntime}). A node's runtime lives as long as the site, so {@link restartAgent} shows the
 * re-adoption a real agent restart does.
 *
 * Contract: start() starts every agent (at most `startConcurrency` at a time) and fails if any fails, after stopping
 * the ones that started; stop() stops them all and leaves nothing running.
 */
import type { Logger } from 'pino';
import { Agent } from '../agent.js';
import type { AgentConfig } from '../config.js';
import type { HostInfo, NodeInfoSource } from '../heartbeat/node-info.js';
import { AgentMetrics } from '../metrics/metrics.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import type { Mounter } from '../volumes/mounter.js';

export interface HollowSiteOptions {
  /** One configuration per node (node name, NATS URL, intervals, ...). */
  configs: AgentConfig[];
  log: Logger;
  /** Agents started in parallel (default 25). */
  startConcurrency?: number;
  /** Called after each agent started (progress). */
  onStarted?: (node: string, started: number) => void;
}

/**
 * What a hollow node reports about its host: a small fixed machine (no file system is read). The sizes are not whole
 * MiB/GiB, as on real machines: the apiserver rewrites a round quantity ("8388608Ki" comes back as "8Gi"), which the
 * provider took for a status change on every tick (see bench/README.md).
 */
export const HOLLOW_HOST: HostInfo = {
  machineId: 'hollow',
  bootId: 'hollow',
  kernelVersion: 'hollow',
  osImage: 'EdgeFarm hollow node',
  operatingSystem: 'linux',
  architecture: 'amd64',
  cpus: 4,
  memoryBytes: 8_241_152_000, // 8048000Ki
};
const hollowNodeInfo: NodeInfoSource = { host: async () => HOLLOW_HOST, filesystemBytes: async () => 62_914_037_760 }; // 61439490Ki

/** What a hollow node's runtime calls itself: container ids in its pods' status read `hollow://...`. */
const HOLLOW_RUNTIME = { runtimeName: 'hollow', runtimeVersion: '0.1.0' };

/** Hollow pods have no mounts: a tmpfs volume (emptyDir medium Memory) or a subPath mount fails its pod with this error. */
const hollowMounter: Mounter = {
  mountsUnder: async () => [],
  mountTmpfs: async () => {
    throw new Error('hollow node: tmpfs volumes are not supported');
  },
  unmount: async () => undefined,
  bindMount: async () => {
    throw new Error('hollow node: subPath mounts are not supported');
  },
};

interface HollowNode {
  config: AgentConfig;
  runtime: MemoryPodRuntime;
  agent: Agent | undefined;
}

export class HollowSite {
  private readonly nodes: HollowNode[];

  constructor(private readonly options: HollowSiteOptions) {
    this.nodes = options.configs.map((config) => ({
      config,
      runtime: new MemoryPodRuntime({ version: HOLLOW_RUNTIME }),
      agent: undefined,
    }));
  }

  get size(): number {
    return this.nodes.length;
  }

  /** The node's runtime (tests look at its pods, or make a container exit). */
  runtime(node: string): MemoryPodRuntime {
    return this.node(node).runtime;
  }

  async start(): Promise<void> {
    let next = 0;
    let started = 0;
    const worker = async () => {
      while (next < this.nodes.length) {
        const n = this.nodes[next++]!;
        await this.startNode(n);
        this.options.onStarted?.(n.config.nodeName, ++started);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, this.options.startConcurrency ?? 25) }, worker));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops the node's agent and starts a new one on the same runtime (pods keep running, and are re-adopted). */
  async restartAgent(node: string): Promise<void> {
    const n = this.node(node);
    await n.agent?.stop();
    n.agent = undefined;
    await this.startNode(n);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const agent = n.agent;
        n.agent = undefined;
        await agent?.stop();
      }),
    );
  }

  /** Starts the node's agent; a start that fails (e.g. a JetStream request timing out on a busy leaf server) is tried
   * again twice, 2 s apart, before the error is thrown. */
  private async startNode(n: HollowNode): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startAgent(n);
      } catch (err) {
        if (attempt >= 3) throw err;
        this.options.log.warn(
          { node: n.config.nodeName, attempt, err: (err as Error).message },
          'hollow agent did not start; trying again',
        );
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
  }

  private async startAgent(n: HollowNode): Promise<void> {
    const agent = new Agent(n.config, this.options.log.child({ node: n.config.nodeName }), {
      runtime: n.runtime,
      images: n.runtime.images,
      nodeInfo: hollowNodeInfo,
      mounter: hollowMounter,
      cgroupRoot: '',
      metrics: new AgentMetrics({ defaultMetrics: false }),
    });
    await agent.start();
    n.agent = agent;
  }

  private node(name: string): HollowNode {
    const n = this.nodes.find((x) => x.config.nodeName === name);
    if (!n) throw new Error(`no hollow node ${name}`);
    return n;
  }
}
