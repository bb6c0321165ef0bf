/**
 * The agent's assembly: builds its parts in dependency order and starts each as it is built, in phases that follow the
 * diagram in agent.ts top down (connection, container runtime, links to the hub, pod control, desired state,
 * heartbeat, metrics, interactive traffic). Every part's stop goes onto the assembly's {@link Teardown} as soon as the
 * part has started, so the Agent stops exactly what started, in reverse.
 *
 * Two names of the node go to the parts: `config.nodeName` for site stream names and what Kubernetes sees (heartbeat,
 * Events, messages), `config.wireId` for every subject (proto nodeWireId: the NATS user public key of a joined node).
 */
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams } from '@edgefarm/proto';
import { criClients } from '@edgefarm/cri';
import type { Logger } from 'pino';
import type { AgentDeps, AgentParts } from './agent.js';
import type { AgentConfig } from './config.js';
import { JetStreamOutbox } from './bus/outbox.js';
import { connectSite } from './bus/site-connection.js';
import { ensureSiteStreams } from './bus/site-streams.js';
import { DeviceBoard } from './devices/board.js';
import { DeviceTwins } from './devices/twins.js';
import { SourceWatch } from './bus/source-watch.js';
import { CompactionCheck } from './desired/compaction-check.js';
import { HubListing } from './desired/hub-listing.js';
import { DesiredInformer } from './desired/informer.js';
import { SnapshotFile } from './desired/snapshot.js';
import { DesiredStore } from './desired/store.js';
import { EventRecorder } from './events/recorder.js';
import { EmptyDirEviction } from './eviction/emptydir.js';
import { Forwarder, eventsRoute } from './forwarder/forwarder.js';
import { DEFAULT_DISK_THRESHOLDS, DiskPressureMonitor } from './heartbeat/disk-pressure.js';
import { Heartbeater } from './heartbeat/heartbeat.js';
import { CredentialRenewer } from './identity/renewer.js';
import { osNodeInfo } from './heartbeat/node-info.js';
import { CriImageService } from './images/cri.js';
import { ImageGC } from './images/gc.js';
import { ImageManager } from './images/puller.js';
import type { ImageService } from './images/service.js';
import { ContainerLogRotator } from './logs/rotation.js';
import { instrumentCri } from './metrics/instrumented-cri.js';
import type { AgentMetrics } from './metrics/metrics.js';
import { MetricsPublisher } from './metrics/publisher.js';
import { MetricsServer } from './metrics/server.js';
import { ProbeManager } from './probes/manager.js';
import { NetProber } from './probes/prober.js';
import { Reconciler } from './reconcile/reconciler.js';
import { CriPodRuntime, type CriClients } from './runtime/cri-runtime.js';
import type { PodRuntime } from './runtime/types.js';
import { StatusReporter } from './status/reporter.js';
import { StreamingServer } from './streaming/server.js';
import { StatsCollector } from './streaming/stats.js';
import type { Teardown } from './util/teardown.js';
import { errorMessage, type Clock } from './util/time.js';
import { VolumeManager } from './volumes/manager.js';
import { SystemMounter } from './volumes/mounter.js';

/** What every phase works with; `teardown` takes each started part's stop. */
export interface Assembly {
  config: AgentConfig;
  log: Logger;
  deps: AgentDeps;
  metrics: AgentMetrics;
  clock: Clock;
  teardown: Teardown;
}

/** The site NATS connection and JetStream on it: the site's own domain and the hub's. */
interface Site {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  hub: JetStreamClient;
}

/** The container runtime's two sides, the CRI connection they share when the agent opened it, and its name. */
interface ContainerRuntime {
  runtime: PodRuntime;
  images: ImageService | undefined;
  cri: CriClients | undefined;
  /** Prefix of container ids in status reports (the runtime's own name; containerd when it cannot be asked). */
  runtimeName: string;
}

interface HubLinks {
  sourceWatch: SourceWatch;
  forwarder: Forwarder;
  eventForwarder: Forwarder;
  events: EventRecorder;
  /** Adds a part that hub acknowledgements reach from now on. */
  onContact(part: { contact(): void }): void;
}

interface PodControl {
  store: DesiredStore;
  outbox: JetStreamOutbox;
  reconciler: Reconciler;
  imageGc: ImageGC | undefined;
}

/** Builds and starts every part in dependency order (agent.ts's diagram, top down). */
export async function assemble(a: Assembly): Promise<AgentParts> {
  const site = await connect(a);
  const container = await containerRuntime(a);
  const links = await hubLinks(a, site);
  const pods = await podControl(a, site, container, links.events);
  const desired = await desiredState(a, site, pods.store);
  links.onContact(desired.compactionCheck);
  heartbeat(a, pods, container.runtime);
  const metricsServer = await serveMetrics(a, site, links, pods);
  const streaming = await serveStreaming(a, site, container);
  rotateContainerLogs(a, container);
  await renewCredentials(a);
  return {
    desired: pods.store,
    informer: desired.informer,
    reconciler: pods.reconciler,
    compactionCheck: desired.compactionCheck,
    sourceWatch: links.sourceWatch,
    imageGc: pods.imageGc,
    streaming,
    metricsServer,
  };
}

/** The site NATS connection, its JetStream (the site's and the hub's domain) and the node's site streams. */
async function connect(a: Assembly): Promise<Site> {
  const { config, log } = a;
  const connection = await connectSite(
    { natsUrl: config.natsUrl, node: config.nodeName, wireId: config.wireId, seedFile: config.natsSeedFile },
    log,
  );
  a.teardown.add('nats', () => connection.close());
  const nc = connection.nc;
  a.teardown.add('nats metrics', a.metrics.watchNats(nc));
  const jsm = await jetstreamManager(nc);
  await ensureSiteStreams(jsm, config.nodeName, config.wireId, log);
  return { nc, jsm, js: jetstream(nc), hub: jetstream(nc, { domain: HUB_DOMAIN }) };
}

/**
 * The site's device board (made exact once the desired store synced: devices deleted while the agent was down leave
 * it, then kept in step with every device change) and the devices' twins (the mappers' reports, to the outbox).
 */
function deviceParts(a: Assembly, site: Site, store: DesiredStore, outbox: JetStreamOutbox): { board: DeviceBoard; twins: DeviceTwins } {
  const twins = new DeviceTwins({
    nc: site.nc,
    wireId: a.config.wireId,
    devices: store,
    outbox,
    clock: a.clock,
    log: child(a, 'device-twins'),
  });
  twins.start();
  a.teardown.add('device twins', () => twins.stop());
  const board = new DeviceBoard({ nc: site.nc, wireId: a.config.wireId, devices: store, log: child(a, 'device-board') });
  a.teardown.add('device board', () => board.stop());
  void store
    .whenSynced()
    .then(() => board.resync())
    .catch((err: unknown) => a.log.warn({ err: errorMessage(err) }, 'device board: resync failed; changes still go through'));
  return { board, twins };
}

/** The injected runtime, or the runtime and image service over one CRI connection; and the runtime's name. */
async function containerRuntime(a: Assembly): Promise<ContainerRuntime> {
  const { runtime, images, cri } = a.deps.runtime ? { runtime: a.deps.runtime, images: a.deps.images, cri: undefined } : openCri(a);
  const version = await runtime.version().catch((err: unknown) => {
    a.log.warn({ err: errorMessage(err) }, 'container runtime not reachable yet; syncs retry until it is');
    return undefined;
  });
  if (version) a.log.info(version, 'container runtime');
  return { runtime, images, cri, runtimeName: version?.runtimeName || 'containerd' };
}

/** One CRI connection to config.criEndpoint, every call measured (metrics/instrumented-cri.ts), closed once. */
function openCri(a: Assembly): { runtime: PodRuntime; images: ImageService; cri: CriClients } {
  const { config, deps } = a;
  const cri = instrumentCri(criClients(config.criEndpoint), a.metrics);
  a.teardown.add('cri', () => {
    cri.runtime.close();
    cri.image.close();
  });
  const layout = { podLogRoot: config.podLogRoot, cgroupParent: config.cgroupParent };
  const runtime = new CriPodRuntime(cri, { layout, cgroupRoot: deps.cgroupRoot }, child(a, 'runtime'));
  return { runtime, images: deps.images ?? new CriImageService(cri, layout), cri };
}

/**
 * What goes to the hub: the forwarders of the outbox and the events stream, and the Event recorder. Each hub
 * acknowledgement proves the link works; after a silence it starts the checks that need the hub (the source watch,
 * and whatever is added with onContact).
 */
async function hubLinks(a: Assembly, site: Site): Promise<HubLinks> {
  const { config, deps } = a;
  const { nodeName: node, wireId } = config;
  const { jsm, js, hub } = site;
  const sourceWatch = new SourceWatch({ node, wireId, jsm, clock: a.clock, log: child(a, 'source-watch') }, deps.sourceWatch);
  a.teardown.add('source watch', () => sourceWatch.stop());
  const contacts: { contact(): void }[] = [sourceWatch];
  const onHubAck = (): void => {
    for (const c of contacts) c.contact();
  };
  const forwarder = new Forwarder({ node, wireId, jsm, js, hub, log: child(a, 'forwarder'), onHubAck }, deps.forwarder);
  await forwarder.start();
  a.teardown.add('forwarder', () => forwarder.stop());
  const eventForwarder = new Forwarder(
    { node, wireId, jsm, js, hub, route: eventsRoute(node, wireId), log: child(a, 'event-forwarder') },
    deps.forwarder,
  );
  await eventForwarder.start();
  a.teardown.add('event forwarder', () => eventForwarder.stop());
  const eventSink = new JetStreamOutbox(js, node, 5000, Streams.siteEvents(node));
  const events = new EventRecorder({ node, wireId, sink: eventSink, clock: a.clock, log: child(a, 'events') });
  a.teardown.add('events', () => events.stop());
  return { sourceWatch, forwarder, eventForwarder, events, onContact: (c) => contacts.push(c) };
}

/** The pod controller and what it drives: desired store, volumes, images (with their GC), probes, status. */
async function podControl(a: Assembly, site: Site, container: ContainerRuntime, events: EventRecorder): Promise<PodControl> {
  const { config, deps, clock, metrics } = a;
  const { nodeName: node, wireId } = config;
  const { runtime, images } = container;
  // The store and the probe workers queue pod keys to the reconciler, which reads the store.
  let queueKey = (_key: string): void => undefined;
  // The desired devices go to the site's device board, where the mappers read them, and the mappers' reports into
  // the devices' twins (docs/decisions/0012-devices.md).
  let devices: { board: DeviceBoard; twins: DeviceTwins } | undefined;
  const store = new DesiredStore(
    wireId,
    child(a, 'desired'),
    (key) => queueKey(key),
    (key) => {
      devices?.board.changed(key);
      devices?.twins.deviceChanged(key);
    },
  );
  const outbox = new JetStreamOutbox(site.js, node);
  devices = deviceParts(a, site, store, outbox);
  const mounter = deps.mounter ?? new SystemMounter();
  const volumes = new VolumeManager({
    root: config.volumeRoot,
    mounter,
    objects: store,
    log: child(a, 'volumes'),
    registry: metrics.registry,
  });
  await volumes.start();
  const gcPolicy = { highPercent: config.imageGcHighPercent, lowPercent: config.imageGcLowPercent, ...deps.imageGc };
  const imageGc = images && new ImageGC({ images, clock, log: child(a, 'image-gc') }, gcPolicy);
  if (imageGc) {
    imageGc.start();
    a.teardown.add('image gc', () => imageGc.stop());
  }
  const onUse = (id: string): void => imageGc?.noteUsed(id);
  const imageManager =
    images &&
    new ImageManager(
      { images, objects: store, clock, log: child(a, 'images'), onUse, events, registry: metrics.registry },
      deps.imagePulls,
    );
  const onChange = (key: string): void => queueKey(key);
  const probes = new ProbeManager({ prober: new NetProber(runtime), clock, log: child(a, 'probes'), onChange, events });
  probes.start();
  a.teardown.add('probes', () => probes.stop());
  const status = new StatusReporter({ wireId, outbox, clock, log: child(a, 'status') });
  const evictions = new EmptyDirEviction(
    {
      desired: store,
      volumeDir: (uid, volume) => volumes.volumeDir(uid, volume),
      podDir: (uid) => volumes.podDir(uid),
      podUids: () => volumes.podUids(),
      onEvict: (key) => queueKey(key),
      events,
      registry: metrics.registry,
      log: child(a, 'eviction'),
    },
    { periodMs: config.emptyDirCheckMs },
  );
  const reconciler = new Reconciler(
    {
      runtime,
      desired: store,
      status,
      clock,
      volumes,
      probes,
      images: imageManager,
      metrics,
      events,
      evictions,
      log: child(a, 'reconciler'),
    },
    {
      nodeIp: config.nodeIp,
      resyncMs: config.resyncMs,
      relistMs: config.relistMs,
      concurrency: config.concurrency,
      restartBackoffBaseMs: config.restartBackoffBaseMs,
      restartBackoffMaxMs: config.restartBackoffMaxMs,
      runtimeName: container.runtimeName,
    },
  );
  queueKey = (key) => reconciler.enqueue(key);
  await evictions.start(); // the marks of an earlier run, before the first sync
  a.teardown.add('emptyDir eviction', () => evictions.stop());
  reconciler.start();
  a.teardown.add('reconciler', () => reconciler.stop());
  return { store, outbox, reconciler, imageGc };
}

/** The informer that fills the store from the site stream, and the check for deletes the hub compacted away. */
async function desiredState(
  a: Assembly,
  site: Site,
  store: DesiredStore,
): Promise<{ informer: DesiredInformer; compactionCheck: CompactionCheck }> {
  const { config } = a;
  const { nc, jsm, js } = site;
  const { nodeName: node, wireId } = config;
  let check: CompactionCheck | undefined;
  const informer = new DesiredInformer({
    js,
    jsm,
    node,
    wireId,
    store,
    log: child(a, 'informer'),
    snapshots: config.stateDir ? new SnapshotFile(config.stateDir) : undefined,
    lastHubContactMs: () => check?.lastHubContactMs ?? 0,
  });
  await informer.start();
  a.teardown.add('informer', () => informer.stop());
  const compactionCheck = new CompactionCheck(
    {
      node,
      wireId,
      store,
      siteJsm: jsm,
      hub: new HubListing({ nc, wireId, log: child(a, 'hub-listing') }),
      clock: a.clock,
      log: child(a, 'compaction-check'),
      onForgotten: () => informer.scheduleSave(),
    },
    informer.startMode.mode === 'resume' ? informer.startMode.lastHubContactMs : 0,
  );
  check = compactionCheck;
  a.teardown.add('compaction check', () => compactionCheck.stop());
  return { informer, compactionCheck };
}

/** The node's heartbeat into the outbox (capacity, conditions, images, applied sequence, pod count). */
function heartbeat(a: Assembly, pods: PodControl, runtime: PodRuntime): void {
  const { config, metrics } = a;
  const heartbeater = new Heartbeater(
    {
      nodeName: config.nodeName,
      wireId: config.wireId,
      nodeIp: config.nodeIp,
      agentVersion: config.agentVersion,
      runtime,
      outbox: { publish: (subject, data) => pods.outbox.publish(subject, data).then(() => metrics.heartbeat()) },
      nodeInfo: a.deps.nodeInfo ?? osNodeInfo,
      appliedSequence: () => pods.store.appliedHubSequence,
      podCount: () => pods.reconciler.podCount(),
      clock: a.clock,
      log: child(a, 'heartbeat'),
      diskPressure: new DiskPressureMonitor(
        {
          nodefs: [config.stateDir, config.podLogRoot, config.volumeRoot].filter((d): d is string => !!d),
          ...(config.stateDir && config.storeReserveBytes
            ? { store: { path: config.stateDir, reserveBytes: config.storeReserveBytes } }
            : {}),
          imagefs: () => runtime.rootDir(),
          log: child(a, 'disk-pressure'),
          registry: metrics.registry,
          // the kubelet's reclaim before eviction: unused images go first (image GC frees down to its low threshold)
          onPressure: () => void pods.imageGc?.runOnce().catch(() => undefined),
        },
        {
          nodefsMinFreePercent: config.nodefsMinFreePercent ?? DEFAULT_DISK_THRESHOLDS.nodefsMinFreePercent,
          imagefsMinFreePercent: config.imagefsMinFreePercent ?? DEFAULT_DISK_THRESHOLDS.imagefsMinFreePercent,
        },
      ),
    },
    config.heartbeatMs,
  );
  heartbeater.start();
  a.teardown.add('heartbeat', () => heartbeater.stop());
}

/** Scrape-time sources of the metrics, the /metrics server (unless off) and the periodic publish to the cloud. */
async function serveMetrics(a: Assembly, site: Site, links: HubLinks, pods: PodControl): Promise<MetricsServer | undefined> {
  const { config, metrics } = a;
  const node = config.nodeName;
  const consumer = a.deps.forwarder?.consumerName ?? 'forwarder';
  const pending = async (stream: string): Promise<number> => {
    const ci = await site.jsm.consumers.info(stream, consumer);
    return ci.num_pending + ci.num_ack_pending;
  };
  metrics.watch({
    outboxPending: () => pending(Streams.outbox(node)),
    appliedSequence: () => pods.store.appliedSequence,
    appliedHubSequence: () => pods.store.appliedHubSequence,
    pods: () => pods.reconciler.podCount(),
    forwarded: () => {
      const s = links.forwarder.stats;
      return { ok: s.forwarded - s.duplicates, duplicate: s.duplicates, error: s.failures, dropped: s.dropped };
    },
    events: async () => ({
      published: links.events.published,
      rejected: links.events.dropped,
      forwarded: links.eventForwarder.stats.forwarded,
      pending: await pending(Streams.siteEvents(node)),
    }),
  });
  const server = config.metricsAddr ? new MetricsServer(metrics, config.metricsAddr) : undefined;
  if (server) {
    await server.start();
    a.teardown.add('metrics server', () => server.stop());
    a.log.info({ addr: server.address }, 'serving /metrics');
  }
  const publishSeconds = config.metricsPublishSeconds ?? 0;
  if (publishSeconds > 0) {
    const publisher = new MetricsPublisher(
      { wireId: config.wireId, metrics, outbox: pods.outbox, log: child(a, 'metrics') },
      publishSeconds * 1000,
    );
    publisher.start();
    a.teardown.add('metrics publisher', () => publisher.stop());
  }
  return server;
}

/** Logs, exec, attach, port-forward and stats for the provider over NATS; only over the agent's own CRI connection. */
async function serveStreaming(a: Assembly, site: Site, container: ContainerRuntime): Promise<StreamingServer | undefined> {
  const { cri } = container;
  if (!cri) return undefined;
  const node = a.config.nodeName;
  const stats = new StatsCollector(cri.runtime, { nodeName: node, fsPath: a.config.podLogRoot });
  const server = new StreamingServer(
    { nc: site.nc, node, wireId: a.config.wireId, runtime: cri.runtime, stats, log: child(a, 'streaming') },
    a.deps.streaming,
  );
  await server.start();
  a.teardown.add('streaming', () => server.stop());
  return server;
}

/** Container log rotation (logs/rotation.ts); only over the agent's own CRI connection. */
function rotateContainerLogs(a: Assembly, container: ContainerRuntime): void {
  const { config } = a;
  if (!container.cri) return;
  const rotator = new ContainerLogRotator(
    { runtime: container.cri.runtime, clock: a.clock, log: child(a, 'log-rotation'), registry: a.metrics.registry },
    {
      maxSizeBytes: config.containerLogMaxSizeBytes,
      maxFiles: config.containerLogMaxFiles,
      intervalMs: config.containerLogMonitorIntervalMs,
    },
  );
  rotator.start();
  a.teardown.add('log rotation', () => rotator.stop());
}

/** Renews the node's credentials in the join directory (config.identityDir), when the site has one. */
async function renewCredentials(a: Assembly): Promise<void> {
  if (!a.config.identityDir) return;
  const renewer = new CredentialRenewer({
    dir: a.config.identityDir,
    log: child(a, 'renewer'),
    registry: a.metrics.registry,
    clock: a.clock,
  });
  await renewer.start();
  a.teardown.add('credential renewer', () => renewer.stop());
}

function child(a: Assembly, component: string): Logger {
  return a.log.child({ component });
}
