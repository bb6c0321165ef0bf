/**
 * Agent: one edge node's agent and its lifecycle. start() builds the parts in dependency order (assemble.ts), starting
 * each as it is built, and returns them; stop() takes them down in reverse (util/teardown.ts) and leaves no timer,
 * socket or consumer loop behind.
 *
 *   site NATS connection ─ site streams (desired copy, outbox, events)
 *     ├─ DesiredInformer → DesiredStore ──keys──► Reconciler ─► PodRuntime ──────────────┐
 *     │     (pods, ConfigMaps, Secrets, tokens)       ├─► VolumeManager (pod dirs, tmpfs) │
 *     │                                               ├─► ImageManager ─► ImageService ───┤ one CRI connection
 *     │                                               ├─► ProbeManager ─► results         │ (containerd)
 *     │                                               └─► StatusReporter ─► outbox        │
 *     ├─ Heartbeater ─► outbox                                                            │
 *     ├─ Forwarders: outbox, events ─► hub; each hub ack feeds CompactionCheck, SourceWatch
 *     └─ StreamingServer: ef.rpc.<node>.* from the hub ─► logs, exec, attach, port-forward, stats ─┘
 *
 * {@link AgentDeps} puts other collaborators in place of the real ones (tests, hollow sites). With an injected
 * runtime the agent opens no CRI connection, and so serves no interactive traffic.
 */
import type { Logger } from 'pino';
import { assemble } from './assemble.js';
import type { SourceWatch, SourceWatchOptions } from './bus/source-watch.js';
import type { AgentConfig } from './config.js';
import type { CompactionCheck } from './desired/compaction-check.js';
import type { DesiredInformer } from './desired/informer.js';
import type { DesiredView } from './desired/store.js';
import type { ForwarderOptions } from './forwarder/forwarder.js';
import type { NodeInfoSource } from './heartbeat/node-info.js';
import type { ImageGC, ImageGcOptions } from './images/gc.js';
import type { ImageManagerOptions } from './images/puller.js';
import type { ImageService } from './images/service.js';
import { AgentMetrics } from './metrics/metrics.js';
import type { MetricsServer } from './metrics/server.js';
import type { Reconciler } from './reconcile/reconciler.js';
import type { PodRuntime } from './runtime/types.js';
import type { StreamingOptions, StreamingServer } from './streaming/server.js';
import { Teardown } from './util/teardown.js';
import { systemClock, type Clock } from './util/time.js';
import type { Mounter } from './volumes/mounter.js';

/** Collaborators that replace the real ones, for tests and hollow sites; each has a default. */
export interface AgentDeps {
  /** The pod side of the container runtime (default: CRI on config.criEndpoint). */
  runtime?: PodRuntime;
  /** The image side (default: CRI on the same connection; with `runtime` given: none, the runtime's own ensureImage
   * and no image GC). */
  images?: ImageService;
  clock?: Clock;
  nodeInfo?: NodeInfoSource;
  forwarder?: ForwarderOptions;
  /** Timings of the watch that restarts a stalled desired-stream source once the hub answers (bus/source-watch.ts). */
  sourceWatch?: SourceWatchOptions;
  /** Mount point of cgroup hierarchies for the CRI runtime's pod cgroup cleanup ('' disables it). */
  cgroupRoot?: string;
  /** Mounts tmpfs volumes (default: mount(8) and umount(8)). */
  mounter?: Mounter;
  /** Image pull backoff (default 10 s doubling to 300 s). */
  imagePulls?: ImageManagerOptions;
  /** Image GC overrides (thresholds default to the config's, interval 5 min, minimum age 2 min). */
  imageGc?: ImageGcOptions;
  /** Interactive traffic (window, keepalive); it runs over the CRI connection, so not with `runtime` given. */
  streaming?: StreamingOptions;
  /** The agent's metrics registry (default: a new one with prom-client's process metrics; hollow sites run many
   * agents in one process and leave those out). */
  metrics?: AgentMetrics;
}

/** The parts of a running agent that tests and diagnostics look at; starting and stopping them is the Agent's job. */
export interface AgentParts {
  /** The node's desired pods and objects as read from the site stream. */
  desired: DesiredView;
  /** Reads the site stream into `desired`; its startMode says whether it resumed from the snapshot. */
  informer: DesiredInformer;
  reconciler: Reconciler;
  compactionCheck: CompactionCheck;
  sourceWatch: SourceWatch;
  /** Undefined without an image service. */
  imageGc: ImageGC | undefined;
  /** Undefined with an injected runtime. */
  streaming: StreamingServer | undefined;
  /** Undefined when config.metricsAddr is off. */
  metricsServer: MetricsServer | undefined;
}

export class Agent {
  /** The agent's metrics (one registry per Agent), served on config.metricsAddr and published to the cloud. */
  readonly metrics: AgentMetrics;
  private readonly clock: Clock;
  private teardown: Teardown | undefined;
  private running: AgentParts | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly deps: AgentDeps = {},
  ) {
    this.metrics = deps.metrics ?? new AgentMetrics();
    this.clock = deps.clock ?? systemClock;
  }

  /** The running agent's parts; throws before start() has succeeded and after stop(). */
  get parts(): AgentParts {
    if (!this.running) throw new Error('agent not started');
    return this.running;
  }

  /** Builds and starts every part. A failed start stops what it started and rethrows. */
  async start(): Promise<AgentParts> {
    const { config, log } = this;
    log.info(
      { node: config.nodeName, site: config.site, nats: config.natsUrl, cri: config.criEndpoint, version: config.agentVersion },
      'edge-agent starting',
    );
    const teardown = new Teardown(log);
    this.teardown = teardown;
    try {
      const parts = await assemble({ config, log, deps: this.deps, metrics: this.metrics, clock: this.clock, teardown });
      if (this.teardown !== teardown) throw new Error('edge-agent stopped while starting');
      this.running = parts;
    } catch (err) {
      if (this.teardown === teardown) await this.stop();
      throw err;
    }
    log.info('edge-agent started');
    return this.running;
  }

  /** Stops everything that was started, in reverse order. Safe to call twice, during a start or after a failed one. */
  async stop(): Promise<void> {
    const teardown = this.teardown;
    this.teardown = undefined;
    this.running = undefined;
    await teardown?.run();
    this.log.info('edge-agent stopped');
  }
}
