/**
 * The provider's side of the hub: it owns the hub streams (EF_DESIRED, EF_STATUS, EF_EVENTS), publishes desired state
 * and tombstones, and follows status reports and Events. Subjects come from @edgefarm/proto only.
 *
 * The rest of the provider speaks of nodes by name; this is where names meet the wire (decision 0008). Every subject
 * built for a node carries its wire id ({@link WireIds.wireId}); every subject parsed maps its wire id back to the
 * node's name ({@link WireIds.nodeOf}), and a message under a wire id no EdgeNode has is dropped (`unknown-node`).
 *
 * Two connections, one per hub account (decision 0008): `desired` (EF_DESIRED: the desired stream, its publishes and
 * reads) and `cloud` (EF_CLOUD: EF_STATUS, EF_EVENTS, the status purge). Without credentials both are the same one.
 * Each only calls what proto's providerPermissions grants its user: stream info/create/update, consumers (created
 * unfiltered when filter_subjects is a list, as nats.js does), MSG.NEXT, consumer info/delete, the EF_STATUS purge;
 * never a stream delete or a DIRECT.GET.
 *
 * The streams are bounded (limits.ts): EF_DESIRED refuses a publish at its byte limit (a {@link HubStreamFullError};
 * nothing stored is dropped), EF_STATUS drops its oldest report.
 *
 * Handlers run one message at a time: each follower hands the next message over only once its handler settled
 * (status handlers are synchronous and only queue work; the Event handler resolves once the Event is queued, and
 * waits while the sink's queue is full). A flood from the hub therefore waits in the stream (beyond the consumer's
 * bounded pull batch), never in an unbounded queue.
 */
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  Headers,
  HUB_STREAM_CONFIGS,
  Streams,
  desiredSubjects,
  statusSubjects,
  TOMBSTONE_TTL,
  eventSubjects,
  encode,
  edge,
  type PodKey,
  type ObjectKind,
} from '@edgefarm/proto';
import { NAME_WIRE_IDS, type WireIds } from '../membership/identities.js';
import { StreamFollower } from './follower.js';
import { liveDesiredSubjects, readDesired, readLastPerSubject, type DesiredRecord } from './reads.js';
import { eventMessage, statusMessage, type Dropped } from './routing.js';
import { DEFAULT_HUB_STREAM_LIMITS, limitError, streamLimits, type HubStreamLimits } from './limits.js';

export { readDesired, readLastPerSubject, type DesiredRecord } from './reads.js';
export { HubStreamFullError, isHubStreamFull, type HubStreamLimits } from './limits.js';

export function isStreamNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound;
}

/**
 * The hub's JetStream is not ready yet: a cluster still electing its meta leader or resolving the account
 * ("JetStream not enabled for account", "temporarily unavailable", no responders, a request timing out). Worth
 * waiting for at start.
 */
export function isJetStreamNotReady(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === JetStreamApiCodes.JetStreamNotEnabledForAccount || err.status === 503;
  // JetStreamNotEnabled (the client's check of the account) is not exported by @nats-io/jetstream: by name.
  // A request timing out: a cluster of servers that all just started has no meta leader to answer yet (seen with the
  // hub StatefulSet's 3 pods starting together, manifests/base/hub.yaml).
  return (
    err instanceof Error &&
    (err.name === 'JetStreamNotEnabled' || err.name === 'TimeoutError' || /no ?responders/i.test(`${err.name} ${err.message}`))
  );
}

/** How long {@link HubBus.ensureStreams} waits for a hub whose JetStream is not ready yet. */
export const HUB_JETSTREAM_WAIT_MS = 120_000;

/** The provider's hub connections, one per account; the same connection twice without credentials. */
export interface HubConnections {
  /** EF_DESIRED: desired publishes and reads. */
  desired: NatsConnection;
  /** EF_CLOUD: status and Events, the status purge, requests and sessions to the nodes. */
  cloud: NatsConnection;
}

/** One connection serving both roles (no credentials, as in tests). */
export function oneConnection(nc: NatsConnection): HubConnections {
  return { desired: nc, cloud: nc };
}

export interface DesiredPublisher {
  /** Publishes the desired spec of a pod to its node; returns the hub stream sequence. */
  publishPod(node: string, spec: edge.EdgePodSpec): Promise<number>;
  /** Publishes a tombstone: the pod is no longer desired on that node. */
  tombstonePod(node: string, key: PodKey): Promise<number>;
  /**
   * Publishes a ConfigMap, Secret or token object to a node. Throws a PayloadTooLargeError when it is too large to
   * carry. Every publish throws a HubStreamFullError when EF_DESIRED is at its byte limit.
   */
  publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject): Promise<number>;
  /** The object is no longer used by any pod on the node. */
  tombstoneObject(node: string, kind: ObjectKind, key: PodKey): Promise<number>;
  /** Publishes the node's NodeConfig (last value). */
  publishNodeConfig(node: string, config: edge.NodeConfig): Promise<number>;
  /** The node is gone: a tombstone for its NodeConfig. */
  tombstoneNodeConfig(node: string): Promise<number>;
  /** Publishes a desired device (EdgeDevice, last value per device; docs/decisions/0012-devices.md). */
  publishDevice(node: string, device: edge.EdgeDevice): Promise<number>;
  /** The device is no longer desired on that node (deleted, moved, or its model gone). */
  tombstoneDevice(node: string, key: PodKey): Promise<number>;
}

/** Why a message from the hub was not handed on: `malformed` (or inconsistent with its subject), or `unknown-node`
 * (its subject names a wire id no EdgeNode has: an old key, or nobody's). */
export type DropReason = 'malformed' | 'unknown-node';

export interface StatusHandlers {
  pod(node: string, report: edge.PodStatusReport): void;
  /** `storedAtMs`: when the hub stored the heartbeat (freshness is judged on it, not on the agent's clock). */
  heartbeat(node: string, hb: edge.NodeHeartbeat, storedAtMs: number): void;
  /** A status message was skipped (metrics). */
  dropped?(reason: DropReason): void;
  /** The Prometheus text an agent published (ef.status.<wire id>.metrics). */
  metrics?(node: string, text: string): void;
  /** A device's twin as its site last saw it (ef.status.<wire id>.device.<uid>; docs/decisions/0012-devices.md). */
  device?(node: string, report: edge.DeviceStatusReport): void;
}

/** Receives the Kubernetes Events agents recorded; the next one is delivered once the promise settled. */
export interface EventHandlers {
  event(node: string, event: edge.EdgeEvent): Promise<void>;
  /** An event message was skipped. */
  dropped?(reason: DropReason): void;
}

/** The hub as the provider uses it: {@link HubBus}, or the FakeBus of unit tests. */
export interface Hub extends DesiredPublisher {
  /** Creates or updates the hub streams. Idempotent. */
  ensureStreams(): Promise<void>;
  /** Drops the last stored status of a pod that no longer exists. */
  forgetPodStatus(node: string, uid: string): Promise<void>;
  /** Drops the last stored twin of a device no longer on the node (deleted, or moved away). */
  forgetDeviceStatus(node: string, uid: string): Promise<void>;
  /** Follows every status report and heartbeat stored from now on. */
  followStatus(handlers: StatusHandlers): Promise<void>;
  /** Delivers the last report of every pod and the last heartbeat of the given nodes. */
  readStatus(nodes: readonly string[], handlers: StatusHandlers): Promise<void>;
  /** The current desired state of the given nodes (last value per subject, tombstones included). */
  readDesired(nodes: readonly string[]): Promise<DesiredRecord[]>;
  /**
   * A wire id no node has any more (its node joined again with a new key): a tombstone for every desired subject it
   * still holds a value under, and its status purged. Resolves with the number of tombstones.
   */
  retireWireId(wireId: string): Promise<number>;
  /** Follows the Events agents recorded. */
  followEvents(handlers: EventHandlers): Promise<void>;
  stop(): Promise<void>;
}

export interface HubBusDeps {
  hub: HubConnections;
  log: Logger;
  /** Node names to wire ids and back (default: every node by its name). */
  wireIds?: WireIds;
}

export interface HubBusOptions {
  /** Replicas of the hub streams (default 1). */
  replicas?: number;
  /** Nats-TTL of tombstones, also told to the nodes (NodeConfig) and written into EF_DESIRED's metadata. */
  tombstoneTtlSeconds?: number;
  /** Byte limits of EF_DESIRED and EF_STATUS (default 4 GiB, 1 GiB). */
  limits?: Partial<HubStreamLimits>;
}

/** Wire ids remembered as already warned about (each is logged once, then only counted). */
const WARNED_MAX = 1024;

export class HubBus implements Hub {
  private readonly js: JetStreamClient;
  private readonly wireIds: WireIds;
  private readonly log: Logger;
  private readonly replicas: number;
  private readonly tombstoneTtlSeconds: number;
  private readonly limits: HubStreamLimits;
  private desiredJsm?: JetStreamManager;
  private cloudJsm?: JetStreamManager;
  private statusFollower?: StreamFollower;
  private eventFollower?: StreamFollower;
  private readonly warned = new Set<string>();
  /** When a refused desired publish was last logged (once a minute; each is counted by the publisher's metrics). */
  private fullLoggedAtMs = -Infinity;

  constructor(
    private readonly deps: HubBusDeps,
    options: HubBusOptions = {},
  ) {
    this.log = deps.log;
    this.wireIds = deps.wireIds ?? NAME_WIRE_IDS;
    this.replicas = options.replicas ?? 1;
    this.tombstoneTtlSeconds = options.tombstoneTtlSeconds ?? TOMBSTONE_TTL.defaultSeconds;
    this.limits = { ...DEFAULT_HUB_STREAM_LIMITS, ...options.limits };
    this.js = jetstream(deps.hub.desired);
  }

  /** Creates or updates the hub streams, each over its account's connection. Idempotent. */
  /**
   * Creates the hub streams, or updates them to this configuration. A hub whose JetStream is not ready yet (a cluster
   * forming: see {@link isJetStreamNotReady}) is waited for, up to `waitMs`, then the last error is thrown.
   */
  async ensureStreams(waitMs = HUB_JETSTREAM_WAIT_MS): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ensureStreamsOnce();
        return;
      } catch (err) {
        if (!isJetStreamNotReady(err) || Date.now() >= deadline) throw err;
        this.desiredJsm = undefined;
        this.cloudJsm = undefined;
        if (attempt === 1) this.log.info({ err: (err as Error).message }, "waiting for the hub's JetStream");
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 2000)));
      }
    }
  }

  private async ensureStreamsOnce(): Promise<void> {
    for (const cfg of HUB_STREAM_CONFIGS) {
      const jsm = cfg.name === Streams.desired ? await this.desiredManager() : await this.cloudManager();
      const want = {
        ...cfg,
        subjects: [...cfg.subjects],
        num_replicas: this.replicas,
        ...streamLimits(cfg.name, this.limits),
      } as Partial<StreamConfig> & {
        name: string;
      };
      if (cfg.name === Streams.desired) want.metadata = { [TOMBSTONE_TTL.metadataKey]: String(this.tombstoneTtlSeconds) };
      try {
        await jsm.streams.info(cfg.name);
        await jsm.streams.update(cfg.name, want);
      } catch (err) {
        if (!isStreamNotFound(err)) throw err;
        await jsm.streams.add(want);
        this.log.info({ stream: cfg.name }, 'created hub stream');
      }
    }
  }

  async publishPod(node: string, spec: edge.EdgePodSpec): Promise<number> {
    return this.publish(desiredSubjects.pod(this.wireIds.wireId(node), spec), encode(edge.EdgePodSpecSchema, spec));
  }

  tombstonePod(node: string, key: PodKey): Promise<number> {
    return this.tombstone(desiredSubjects.pod(this.wireIds.wireId(node), key));
  }

  async publishObject(node: string, kind: ObjectKind, object: edge.EdgeObject): Promise<number> {
    return this.publish(desiredSubjects.of(this.wireIds.wireId(node), kind, object), encode(edge.EdgeObjectSchema, object));
  }

  tombstoneObject(node: string, kind: ObjectKind, key: PodKey): Promise<number> {
    return this.tombstone(desiredSubjects.of(this.wireIds.wireId(node), kind, key));
  }

  async publishNodeConfig(node: string, config: edge.NodeConfig): Promise<number> {
    return this.publish(desiredSubjects.nodeConfig(this.wireIds.wireId(node)), encode(edge.NodeConfigSchema, config));
  }

  tombstoneNodeConfig(node: string): Promise<number> {
    return this.tombstone(desiredSubjects.nodeConfig(this.wireIds.wireId(node)));
  }

  async publishDevice(node: string, device: edge.EdgeDevice): Promise<number> {
    return this.publish(desiredSubjects.device(this.wireIds.wireId(node), device), encode(edge.EdgeDeviceSchema, device));
  }

  tombstoneDevice(node: string, key: PodKey): Promise<number> {
    return this.tombstone(desiredSubjects.device(this.wireIds.wireId(node), key));
  }

  private tombstone(subject: string): Promise<number> {
    const h = headers();
    h.set(Headers.operation, 'DEL');
    h.set(Headers.ttl, `${this.tombstoneTtlSeconds}s`);
    return this.publish(subject, new Uint8Array(), { headers: h });
  }

  /** Publishes to EF_DESIRED; a refusal by a stream limit becomes a HubStreamFullError (logged once a minute). */
  private async publish(subject: string, data: Uint8Array, opts?: Parameters<JetStreamClient['publish']>[2]): Promise<number> {
    try {
      return (await this.js.publish(subject, data, opts)).seq;
    } catch (err) {
      const full = limitError(err, Streams.desired, subject);
      if (!full) throw err;
      const nowMs = Date.now();
      if (nowMs - this.fullLoggedAtMs >= 60_000) {
        this.fullLoggedAtMs = nowMs;
        this.log.error({ stream: Streams.desired, reason: full.reason, maxBytes: this.limits.desiredMaxBytes }, full.message);
      }
      throw full;
    }
  }

  /** Drops the last stored status of a pod that no longer exists, so the status stream stays bounded. */
  async forgetPodStatus(node: string, uid: string): Promise<void> {
    const jsm = await this.cloudManager();
    await jsm.streams.purge(Streams.status, { filter: statusSubjects.of(this.wireIds.wireId(node), { kind: 'pod', uid }) });
  }

  async forgetDeviceStatus(node: string, uid: string): Promise<void> {
    const jsm = await this.cloudManager();
    await jsm.streams.purge(Streams.status, { filter: statusSubjects.of(this.wireIds.wireId(node), { kind: 'device', uid }) });
  }

  async retireWireId(wireId: string): Promise<number> {
    const live = await liveDesiredSubjects(this.deps.hub.desired, wireId);
    for (const subject of live) await this.tombstone(subject);
    const jsm = await this.cloudManager();
    await jsm.streams.purge(Streams.status, { filter: statusSubjects.node(wireId) });
    return live.length;
  }

  /**
   * Follows every status report and heartbeat stored from now on (all nodes: the handlers ignore nodes this replica
   * does not serve). Start it before {@link readStatus} of newly served nodes, so nothing falls between the two.
   * Bad messages are logged and skipped. Survives the loss of its consumer ({@link StreamFollower}).
   */
  async followStatus(handlers: StatusHandlers): Promise<void> {
    this.statusFollower = new StreamFollower(
      this.deps.hub.cloud,
      this.log,
      'status',
      Streams.status,
      statusSubjects.all,
      { deliver_policy: DeliverPolicy.New },
      (m) => this.deliverStatus(m, handlers),
    );
    await this.statusFollower.start();
  }

  /** Delivers the last report of every pod and the last heartbeat of the given nodes (as after a relist). */
  async readStatus(nodes: readonly string[], handlers: StatusHandlers): Promise<void> {
    await readLastPerSubject(
      this.deps.hub.cloud,
      Streams.status,
      nodes.map((n) => statusSubjects.node(this.wireIds.wireId(n))),
      (m) => this.deliverStatus(m, handlers),
    );
  }

  readDesired(nodes: readonly string[]): Promise<DesiredRecord[]> {
    return readDesired(this.deps.hub.desired, nodes, this.log, this.wireIds);
  }

  private deliverStatus(m: JsMsg, handlers: StatusHandlers): void {
    const msg = statusMessage(m.subject, m.data, this.wireIds);
    try {
      if (msg.kind === 'dropped') this.dropped(m.subject, msg, handlers);
      else if (msg.kind === 'metrics') handlers.metrics?.(msg.node, msg.text);
      else if (msg.kind === 'heartbeat') handlers.heartbeat(msg.node, msg.heartbeat, m.info.timestampNanos / 1e6);
      else if (msg.kind === 'device') handlers.device?.(msg.node, msg.report);
      else handlers.pod(msg.node, msg.report);
    } catch (err) {
      this.log.error({ subject: m.subject, err }, 'status handler failed');
    }
  }

  /** Logs a dropped message (one of an unknown wire id once per wire id, then only counted) and counts it. */
  private dropped(subject: string, d: Dropped, handlers: Pick<StatusHandlers, 'dropped'>): void {
    if (d.reason === 'malformed') this.log.warn({ subject, err: d.detail }, 'dropped malformed message');
    else if (d.wireId !== undefined && !this.warned.has(d.wireId)) {
      if (this.warned.size >= WARNED_MAX) this.warned.clear();
      this.warned.add(d.wireId);
      this.log.warn({ subject, wireId: d.wireId }, 'message under a wire id no EdgeNode has: dropped (counted from now on, not logged)');
    }
    handlers.dropped?.(d.reason);
  }

  /**
   * Follows the hub's EF_EVENTS (all nodes: the handler ignores nodes this replica does not serve) with one ordered
   * consumer, one event at a time: the next is delivered after the handler's API write. Starts `replayMs` back, so
   * events stored while the provider restarted are not lost (re-writing one is harmless: Events are upserted).
   */
  async followEvents(handlers: EventHandlers, replayMs = 5 * 60_000): Promise<void> {
    const from = { deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(Date.now() - replayMs).toISOString() };
    this.eventFollower = new StreamFollower(this.deps.hub.cloud, this.log, 'event', Streams.events, eventSubjects.all, from, async (m) => {
      const msg = eventMessage(m.subject, m.data, this.wireIds);
      if (msg.kind === 'dropped') {
        this.dropped(m.subject, msg, handlers);
        return;
      }
      try {
        await handlers.event(msg.node, msg.event);
      } catch (err) {
        this.log.error({ subject: m.subject, err }, 'event handler failed');
      }
    });
    await this.eventFollower.start();
  }

  async stop(): Promise<void> {
    await this.statusFollower?.stop();
    await this.eventFollower?.stop();
  }

  private async desiredManager(): Promise<JetStreamManager> {
    this.desiredJsm ??= await jetstreamManager(this.deps.hub.desired);
    return this.desiredJsm;
  }

  private async cloudManager(): Promise<JetStreamManager> {
    this.cloudJsm ??= await jetstreamManager(this.deps.hub.cloud);
    return this.cloudJsm;
  }
}
