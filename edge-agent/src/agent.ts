/**
 * Agent: wires the edge-agent's parts together and owns their lifecycle. start() brings them up in dependency
 * order; stop() takes them down in reverse and leaves no timer, socket or consumer loop behind.
 *
 *   site NATS connection ─ site streams (desired copy, outbox)
 *     ├─ DesiredInformer → DesiredStore ──keys──► Reconciler ─► PodRuntime (CRI)
 *     │     (pods, ConfigMaps, Secrets, tokens)       ├─► VolumeManager (pod volume dirs, tmpfs)
 *     │                                               └─► StatusReporter ─► outbox
 *     ├─ Heartbeater ─► outbox
 *     ├─ Forwarder: outbox ─► hub EF_STATUS (over the leaf link)
 *     └─ StreamingServer: ef.rpc.<node>.* requests from the hub ─► logs, exec, attach, port-forward, stats (CRI)
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { AgentConfig } from './config.js';
import { JetStreamOutbox, type OutboxWriter } from './bus/outbox.js';
import { ensureSiteStreams } from './bus/site-streams.js';
import { DesiredInformer } from './desired/informer.js';
import { CompactionCheck } from './desired/compaction-check.js';
import { SourceWatch, type SourceWatchOptions } from './bus/source-watch.js';
import { SnapshotFile } from './desired/snapshot.js';
import { DesiredStore, type DesiredView } from './desired/store.js';
import { EventRecorder } from './events/recorder.js';
import { Forwarder, eventsRoute, type ForwarderOptions } from './forwarder/forwarder.js';
import { Heartbeater } from './heartbeat/heartbeat.js';
import { osNodeInfo, type NodeInfoSource } from './heartbeat/node-info.js';
import { ProbeManager } from './probes/manager.js';
import { NetProber } from './probes/prober.js';
import { Reconciler } from './reconcile/reconciler.js';
import { CriImageService } from './images/cri.js';
import { ImageGC, type ImageGcOptions } from './images/gc.js';
import { ImageManager, type ImageManagerOptions } from './images/puller.js';
import type { ImageService } from './images/service.js';
import { CriPodRuntime } from './runtime/cri-runtime.js';
import type { PodRuntime } from './runtime/types.js';
import { StatusReporter } from './status/reporter.js';
import { errorMessage, systemClock, type Clock } from './util/time.js';
import { VolumeManager } from './volumes/manager.js';
import { AgentMetrics } from './metrics/metrics.js';
import { instrumentCri } from './metrics/instrumented-cri.js';
import { MetricsPublisher } from './metrics/publisher.js';
import { MetricsServer } from './metrics/server.js';
import { SystemMounter, type Mounter } from './volumes/mounter.js';
import { criClients } from '@edgefarm/cri';
import { StreamingServer, type StreamingOptions } from './streaming/server.js';
import { StatsCollector } from './streaming/stats.js';

/** Optional collaborators, for tests and for a later hollow (in-memory) runtime. */
export interface AgentDeps {
  runtime?: PodRuntime;
  clock?: Clock;
  nodeInfo?: NodeInfoSource;
  forwarder?: ForwarderOptions;
  /** Timings of the watch that restarts a stalled desired-stream source once the hub answers (bus/source-watch.ts). */
  sourceWatch?: SourceWatchOptions;
  /** Mount point of cgroup hierarchies for the CRI runtime's pod cgroup cleanup ('' disables it). */
  cgroupRoot?: string;
  /** Mounts tmpfs volumes (default: mount(8) and umount(8)). */
  mounter?: Mounter;
  /** Image side of the runtime (default: CRI on config.criEndpoint; with `runtime` given and no `images`, the
   * runtime's own ensureImage and no image GC). */
  images?: ImageService;
  /** Image pull backoff (default 10 s doubling to 300 s). */
  imagePulls?: ImageManagerOptions;
  /** Image GC overrides (thresholds default to the config's, interval 5 min, minimum age 2 min). */
  imageGc?: ImageGcOptions;
  /** Interactive traffic (window, keepalive); it runs over CRI on config.criEndpoint, so not with `runtime` given. */
  streaming?: StreamingOptions;
  /** The agent's metrics registry (default: a new one with prom-client's process metrics; hollow sites run many
   * agents in one process and leave those out). */
  metrics?: AgentMetrics;
}

export class Agent {
  private nc: NatsConnection | undefined;
  private runtime: PodRuntime | undefined;
  private store: DesiredStore | undefined;
  private informer: DesiredInformer | undefined;
  private compactionCheckRef: CompactionCheck | undefined;
  private sourceWatchRef: SourceWatch | undefined;
  private reconcilerRef: Reconciler | undefined;
  private probes: ProbeManager | undefined;
  private imageService: ImageService | undefined;
  private imageGcRef: ImageGC | undefined;
  private forwarderRef: Forwarder | undefined;
  private eventForwarderRef: Forwarder | undefined;
  private eventsRef: EventRecorder | undefined;
  private heartbeater: Heartbeater | undefined;
  private statusLoop: Promise<void> | undefined;
  private outboxRef: OutboxWriter | undefined;
  /** The agent's metrics (one registry per Agent), served on config.metricsAddr and published to the cloud. */
  readonly metrics: AgentMetrics;
  private metricsServerRef: MetricsServer | undefined;
  private metricsPublisher: MetricsPublisher | undefined;
  private stopNatsWatch: (() => void) | undefined;
  private streamingRef: StreamingServer | undefined;
  private streamingCri: ReturnType<typeof criClients> | undefined;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
    private readonly deps: AgentDeps = {},
  ) {
    this.metrics = deps.metrics ?? new AgentMetrics();
  }

  get desired(): DesiredView {
    if (!this.store) throw new Error('agent not started');
    return this.store;
  }
  get reconciler(): Reconciler {
    if (!this.reconcilerRef) throw new Error('agent not started');
    return this.reconcilerRef;
  }
  /** The check for deletes whose tombstones the hub compacted; undefined before start. */
  get compactionCheck(): CompactionCheck | undefined {
    return this.compactionCheckRef;
  }
  /** The desired-stream source watch; undefined before start. */
  get sourceWatch(): SourceWatch | undefined {
    return this.sourceWatchRef;
  }

  /** The hub acknowledged a forwarded message: after a silence, look for compacted deletes and check the desired stream's source. */
  private hubContact(): void {
    this.compactionCheckRef?.contact();
    this.sourceWatchRef?.contact();
  }
  get forwarder(): Forwarder {
    if (!this.forwarderRef) throw new Error('agent not started');
    return this.forwarderRef;
  }
  /** The Kubernetes Event recorder (dropped count: events.dropped). */
  get events(): EventRecorder {
    if (!this.eventsRef) throw new Error('agent not started');
    return this.eventsRef;
  }
  get eventForwarder(): Forwarder {
    if (!this.eventForwarderRef) throw new Error('agent not started');
    return this.eventForwarderRef;
  }

  async start(): Promise<void> {
    const { config, log } = this;
    const clock = this.deps.clock ?? systemClock;
    const node = config.nodeName;
    log.info(
      { node, site: config.site, nats: config.natsUrl, cri: config.criEndpoint, version: config.agentVersion },
      'edge-agent starting',
    );
    try {
      const nc = await connect({
        servers: config.natsUrl.split(',').map((s) => s.trim()),
        name: `edge-agent ${node}`,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
        waitOnFirstConnect: true,
        // Otherwise the client makes two Errors per request (publish acks, pulls, JetStream API calls) to keep the
        // caller's stack in case it fails: in a CPU profile of 250 idle hollow agents, 9.4 % of the process's CPU went
        // to making Errors, 6.6 % with this (the rest is the library's own "cancelled" Error after every request).
        // Errors still say what failed; they lose the caller's frames.
        noAsyncTraces: true,
      });
      this.nc = nc;
      this.stopNatsWatch = this.metrics.watchNats(nc);
      this.statusLoop = (async () => {
        for await (const s of nc.status()) {
          if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error')
            log.info({ status: s.type, data: String((s as { server?: string }).server ?? '') }, 'site NATS connection');
        }
      })().catch(() => undefined);

      const jsm = await jetstreamManager(nc);
      await ensureSiteStreams(jsm, node, log);
      const js = jetstream(nc);
      const hub = jetstream(nc, { domain: HUB_DOMAIN });

      this.runtime =
        this.deps.runtime ??
        CriPodRuntime.connect(
          config.criEndpoint,
          { layout: { podLogRoot: config.podLogRoot, cgroupParent: config.cgroupParent }, cgroupRoot: this.deps.cgroupRoot },
          log.child({ component: 'runtime' }),
          (clients) => instrumentCri(clients, this.metrics),
        );
      const runtime = this.runtime;
      const version = await runtime.version().catch((err: unknown) => {
        log.warn({ err: errorMessage(err) }, 'container runtime not reachable yet; syncs retry until it is');
        return undefined;
      });
      if (version) log.info(version, 'container runtime');

      this.sourceWatchRef = new SourceWatch({ node, jsm, clock, log: log.child({ component: 'source-watch' }) }, this.deps.sourceWatch);
      const outbox = new JetStreamOutbox(js, node);
      this.outboxRef = outbox;
      this.forwarderRef = new Forwarder(
        { node, jsm, js, hub, log: log.child({ component: 'forwarder' }), onHubAck: () => this.hubContact() },
        this.deps.forwarder,
      );
      await this.forwarderRef.start();
      this.eventForwarderRef = new Forwarder(
        { node, jsm, js, hub, route: eventsRoute(node), log: log.child({ component: 'event-forwarder' }) },
        this.deps.forwarder,
      );
      await this.eventForwarderRef.start();
      this.eventsRef = new EventRecorder({
        node,
        sink: new JetStreamOutbox(js, node, 5000, Streams.siteEvents(node)),
        clock,
        log: log.child({ component: 'events' }),
      });

      const status = new StatusReporter({ node, outbox, clock, log: log.child({ component: 'status' }) });
      const store = new DesiredStore(node, log.child({ component: 'desired' }), (key) => this.reconcilerRef?.enqueue(key));
      this.store = store;
      const volumes = new VolumeManager({
        root: config.volumeRoot,
        mounter: this.deps.mounter ?? new SystemMounter(),
        objects: store,
        log: log.child({ component: 'volumes' }),
      });
      await volumes.start();
      this.probes = new ProbeManager({
        prober: new NetProber(runtime),
        clock,
        log: log.child({ component: 'probes' }),
        onChange: (key) => this.reconcilerRef?.enqueue(key),
        events: this.eventsRef,
      });
      this.probes.start();
      this.reconcilerRef = new Reconciler(
        {
          runtime,
          desired: store,
          status,
          clock,
          volumes,
          probes: this.probes,
          images: this.startImages(store, clock),
          metrics: this.metrics,
          events: this.eventsRef,
          log: log.child({ component: 'reconciler' }),
        },
        {
          nodeIp: config.nodeIp,
          resyncMs: config.resyncMs,
          relistMs: config.relistMs,
          concurrency: config.concurrency,
          restartBackoffBaseMs: config.restartBackoffBaseMs,
          restartBackoffMaxMs: config.restartBackoffMaxMs,
          runtimeName: version?.runtimeName || 'containerd',
        },
      );
      this.reconcilerRef.start();
      const informer = new DesiredInformer({
        js,
        jsm,
        node,
        store,
        log: log.child({ component: 'informer' }),
        snapshots: config.stateDir ? new SnapshotFile(config.stateDir) : undefined,
        lastHubContactMs: () => this.compactionCheckRef?.lastHubContactMs ?? 0,
      });
      this.informer = informer;
      await informer.start();
      this.compactionCheckRef = new CompactionCheck(
        {
          node,
          store,
          siteJsm: jsm,
          hubJs: hub,
          hubJsm: await jetstreamManager(nc, { domain: HUB_DOMAIN, checkAPI: false }),
          clock,
          log: log.child({ component: 'compaction-check' }),
          onForgotten: () => informer.scheduleSave(),
        },
        informer.startMode.mode === 'resume' ? informer.startMode.lastHubContactMs : 0,
      );

      this.heartbeater = new Heartbeater(
        {
          nodeName: node,
          nodeIp: config.nodeIp,
          agentVersion: config.agentVersion,
          runtime,
          outbox: { publish: (subject, data) => outbox.publish(subject, data).then(() => this.metrics.heartbeat()) },
          nodeInfo: this.deps.nodeInfo ?? osNodeInfo,
          appliedSequence: () => store.appliedHubSequence,
          podCount: () => this.reconcilerRef?.podCount() ?? 0,
          clock,
          log: log.child({ component: 'heartbeat' }),
        },
        config.heartbeatMs,
      );
      this.heartbeater.start();
      await this.startMetrics(jsm, outbox);
      await this.startStreaming(nc);
      log.info('edge-agent started');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops everything that was started, in reverse order. Safe to call twice or after a failed start. */
  async stop(): Promise<void> {
    const steps: [string, () => Promise<void> | void][] = [
      [
        'streaming',
        async () => {
          await this.streamingRef?.stop();
          this.streamingCri?.runtime.close();
          this.streamingCri?.image.close();
        },
      ],
      [
        'metrics',
        async () => {
          await this.metricsPublisher?.stop();
          await this.metricsServerRef?.stop();
          this.stopNatsWatch?.();
        },
      ],
      ['heartbeat', () => this.heartbeater?.stop()],
      ['compaction check', () => this.compactionCheckRef?.stop()],
      ['source watch', () => this.sourceWatchRef?.stop()],
      ['informer', () => this.informer?.stop()],
      ['reconciler', () => this.reconcilerRef?.stop()],
      ['probes', () => this.probes?.stop()],
      ['image gc', () => this.imageGcRef?.stop()],
      [
        'images',
        () => {
          if (!this.deps.images && this.imageService instanceof CriImageService) this.imageService.close();
        },
      ],
      ['events', () => this.eventsRef?.stop()],
      ['event forwarder', () => this.eventForwarderRef?.stop()],
      ['forwarder', () => this.forwarderRef?.stop()],
      [
        'runtime',
        () => {
          if (!this.deps.runtime) this.runtime?.close();
        },
      ],
      [
        'nats',
        async () => {
          if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
        },
      ],
      ['nats status', () => this.statusLoop],
    ];
    for (const [name, fn] of steps) {
      try {
        await fn();
      } catch (err) {
        this.log.warn({ err: errorMessage(err), part: name }, 'error while stopping');
      }
    }
    this.streamingRef = undefined;
    this.streamingCri = undefined;
    this.metricsPublisher = undefined;
    this.metricsServerRef = undefined;
    this.stopNatsWatch = undefined;
    this.heartbeater = undefined;
    this.informer = undefined;
    this.compactionCheckRef = undefined;
    this.sourceWatchRef = undefined;
    this.probes = undefined;
    this.imageGcRef = undefined;
    this.imageService = undefined;
    this.forwarderRef = undefined;
    this.eventForwarderRef = undefined;
    this.eventsRef = undefined;
    this.runtime = undefined;
    this.nc = undefined;
    this.statusLoop = undefined;
    this.log.info('edge-agent stopped');
  }

  /** Scrape-time sources of the metrics, the /metrics server and the periodic publish to the cloud. */
  private async startMetrics(jsm: JetStreamManager, outbox: OutboxWriter): Promise<void> {
    const { config, log } = this;
    const stream = Streams.outbox(config.nodeName);
    this.metrics.watch({
      outboxPending: async () => {
        const ci = await jsm.consumers.info(stream, this.deps.forwarder?.consumerName ?? 'forwarder');
        return ci.num_pending + ci.num_ack_pending;
      },
      appliedSequence: () => this.store?.appliedSequence ?? 0,
      appliedHubSequence: () => this.store?.appliedHubSequence ?? 0,
      pods: () => this.reconcilerRef?.podCount() ?? 0,
      forwarded: () => {
        const s = this.forwarderRef?.stats ?? { forwarded: 0, duplicates: 0, failures: 0, dropped: 0 };
        return { ok: s.forwarded - s.duplicates, duplicate: s.duplicates, error: s.failures, dropped: s.dropped };
      },
      events: async () => {
        const recorder = this.eventsRef;
        const forwarder = this.eventForwarderRef;
        if (!recorder || !forwarder) return undefined;
        const ci = await jsm.consumers.info(Streams.siteEvents(config.nodeName), this.deps.forwarder?.consumerName ?? 'forwarder');
        return {
          published: recorder.published,
          rejected: recorder.dropped,
          forwarded: forwarder.stats.forwarded,
          pending: ci.num_pending + ci.num_ack_pending,
        };
      },
    });
    if (config.metricsAddr) {
      this.metricsServerRef = new MetricsServer(this.metrics, config.metricsAddr);
      await this.metricsServerRef.start();
      log.info({ addr: this.metricsServerRef.address }, 'serving /metrics');
    }
    const publishSeconds = config.metricsPublishSeconds ?? 0;
    if (publishSeconds > 0) {
      this.metricsPublisher = new MetricsPublisher(
        { node: config.nodeName, metrics: this.metrics, outbox, log: log.child({ component: 'metrics' }) },
        publishSeconds * 1000,
      );
      this.metricsPublisher.start();
    }
  }

  /** Serves logs, exec, attach, port-forward and stats to the provider over NATS (not with an injected runtime). */
  private async startStreaming(nc: NatsConnection): Promise<void> {
    if (this.deps.runtime) return;
    const { config, log } = this;
    this.streamingCri = instrumentCri(criClients(config.criEndpoint), this.metrics);
    const runtime = this.streamingCri.runtime;
    const stats = new StatsCollector(runtime, { nodeName: config.nodeName, fsPath: config.podLogRoot });
    this.streamingRef = new StreamingServer(
      { nc, node: config.nodeName, runtime, stats, log: log.child({ component: 'streaming' }) },
      this.deps.streaming,
    );
    await this.streamingRef.start();
  }

  /** The streaming server (undefined with an injected runtime). */
  get streaming(): StreamingServer | undefined {
    return this.streamingRef;
  }

  /** The /metrics server (undefined when EF_METRICS_ADDR is off). */
  get metricsServer(): MetricsServer | undefined {
    return this.metricsServerRef;
  }

  /** The image garbage collector (undefined without an image service); tests call its runOnce(). */
  get imageGc(): ImageGC | undefined {
    return this.imageGcRef;
  }

  /** The ImageManager (pull policy, pull secrets, backoff) and the periodic image GC over the image service. */
  private startImages(objects: DesiredStore, clock: Clock): ImageManager | undefined {
    const { config, log } = this;
    this.imageService =
      this.deps.images ??
      (this.deps.runtime
        ? undefined
        : CriImageService.connect(config.criEndpoint, { podLogRoot: config.podLogRoot, cgroupParent: config.cgroupParent }, (c) =>
            instrumentCri(c, this.metrics),
          ));
    const images = this.imageService;
    if (!images) return undefined;
    this.imageGcRef = new ImageGC(
      { images, clock, log: log.child({ component: 'image-gc' }) },
      { highPercent: config.imageGcHighPercent, lowPercent: config.imageGcLowPercent, ...this.deps.imageGc },
    );
    this.imageGcRef.start();
    const gc = this.imageGcRef;
    return new ImageManager(
      { images, objects, clock, log: log.child({ component: 'images' }), onUse: (id) => gc.noteUsed(id), events: this.eventsRef },
      this.deps.imagePulls,
    );
  }

  /** The outbox writer (for tests that write reports directly). */
  get outbox(): OutboxWriter {
    if (!this.outboxRef) throw new Error('agent not started');
    return this.outboxRef;
  }
}
