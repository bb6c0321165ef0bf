/**
 * Reconciler: the pod controller. Keys (namespace/name) come from the desired store's notifications, from the relist
 * (relist.ts: every 0.5 s, the pods whose sandboxes or containers changed state), from the probe workers, from
 * per-key wake-ups and from a slow full resync (every 10 s: a safety net, as the kubelet's 1-minute syncFrequency);
 * a keyed work queue runs one sync per key at a time. A sync is level-triggered and idempotent:
 *
 *   observe (runtime, by key) -> computePodActions (pure) -> execute (numbered steps) -> observe -> report status
 *
 * Nothing is removed for lack of a desired spec until the desired state has been synced once, so a restarted agent
 * re-adopts its pods instead of tearing them down.
 *
 * A settled pod (nothing to do, nothing failed) costs nothing until something changes. Each sync arms the key's one
 * wake-up (as the kubelet's pod workers requeue themselves) at the earliest of: its activeDeadlineSeconds running
 * out, the end of a restart backoff (CrashLoopBackOff) holding a container back, and, when a step failed, a container
 * could not be started or its report could not be written, a retry after `retryMs` (1.5 s).
 *
 * A shorter deletion grace period reaches a stop that is already waiting without waiting for the key's turn in the
 * queue (ContainerStopper, from the desired store's notification).
 */
import { type edge, parsePodKey, podKeyString } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { Logger } from 'pino';
import type { DesiredView } from '../desired/store.js';
import { gracePeriodSec } from '../runtime/labels.js';
import type { ObservedPod, PodRuntime } from '../runtime/types.js';
import type { StatusReporter } from '../status/reporter.js';
import { errorMessage, type Clock } from '../util/time.js';
import type { ProbeManager } from '../probes/manager.js';
import { KUBELET_BACKOFF_BASE_MS, KUBELET_BACKOFF_MAX_MS, RestartBackoff } from './backoff.js';
import { computePodActions, describePodActions, isNoop, type PodActions } from './actions.js';
import { PodExecutor, describeSteps, type ContainerFailure, type ImageEnsurer, type SyncResult } from './executor.js';
import type { PodVolumes } from '../volumes/manager.js';
import { Relister } from './relist.js';
import { ContainerStopper } from './stopper.js';
import { HookRunner } from '../lifecycle/hooks.js';
import { Reasons, containerFieldPath, type EventSink } from '../events/recorder.js';
import type { EvictionView } from '../eviction/emptydir.js';

/** Longest single wake-up timer (setTimeout's limit is ~24.8 days); a sync re-arms a longer wait. */
const MAX_WAKE_TIMER_MS = 24 * 60 * 60 * 1000;
/** A wake-up at the end of a restart backoff fires this much after it, so the sync finds the backoff over. */
const BACKOFF_WAKE_SLACK_MS = 5;

export interface ReconcilerOptions {
  nodeIp: string;
  /** Period of the full resync of every key (default 10 s); settled pods need none, it is a safety net. */
  resyncMs?: number;
  /** A sync that failed a step, left a container not started or could not write its report runs again after this (1.5 s). */
  retryMs?: number;
  /**
   * Period of the cheap relist (relist.ts: one ListPodSandbox + one ListContainers, syncing only pods whose state
   * changed), so a container's exit reaches the outbox within a second. Default 500; 0 turns it off.
   */
  relistMs?: number;
  concurrency?: number;
  /**
   * Restart backoff (CrashLoopBackOff, see backoff.ts): the kubelet's 10 s doubling to 300 s by default; tests shorten
   * it. A container that ran for 2 * max starts from the base again.
   */
  restartBackoffBaseMs?: number;
  restartBackoffMaxMs?: number;
  /** Prefix of container ids in status reports. */
  runtimeName?: string;
}

export interface ReconcilerDeps {
  runtime: PodRuntime;
  desired: DesiredView;
  status: StatusReporter;
  clock: Clock;
  log: Logger;
  /** The pods' volume directories; without it, pods with volumes cannot start. */
  volumes?: PodVolumes;
  /** Makes images present (images/puller.ts ImageManager); default: the runtime's ensureImage. */
  images?: ImageEnsurer;
  /** Probe workers: their results enter computePodActions and the status; without it, probes are not run. */
  probes?: ProbeManager;
  /** Sync durations and container restarts (metrics/metrics.ts AgentMetrics). */
  metrics?: { synced(seconds: number): void; containerRestarted(count: number): void };
  /** Kubernetes Events about the pods (events/recorder.ts EventRecorder). */
  events?: EventSink;
  /** Pods the node evicted (eviction/emptydir.ts): stopped for good and reported Failed/Evicted. */
  evictions?: EvictionView;
  /** Runs postStart and preStop hooks; default: a HookRunner over the runtime. */
  hooks?: Pick<HookRunner, 'run'>;
}

/** What the last sync of a key did, for tests and diagnostics. */
export interface LastSync {
  key: string;
  actions: PodActions;
  result: SyncResult | undefined;
  observed: ObservedPod;
}

export class Reconciler {
  private readonly queue: WorkQueue;
  private readonly executor: PodExecutor;
  private readonly opts: Required<ReconcilerOptions>;
  private readonly failures = new Map<
    string,
    { uid: string; containers: Map<string, ContainerFailure>; sandbox: ContainerFailure | null }
  >();
  private readonly withPods = new Set<string>();
  private readonly lastSyncs = new Map<string, LastSync>();
  private readonly stopper: ContainerStopper;
  /** CrashLoopBackOff state (in memory, as the kubelet's). */
  readonly backoff: RestartBackoff;
  /** Per key: its next sync (deadline, end of a backoff, retry); armed only between start() and stop(). */
  private readonly wakeTimers = new Map<string, { atMs: number; timer: NodeJS.Timeout }>();
  private timer: NodeJS.Timeout | undefined;
  private readonly relister: Relister;
  private resyncing: Promise<void> | undefined;
  private started = false;
  private stopped = false;

  constructor(
    private readonly deps: ReconcilerDeps,
    options: ReconcilerOptions,
  ) {
    this.opts = {
      nodeIp: options.nodeIp,
      resyncMs: options.resyncMs ?? 10_000,
      retryMs: options.retryMs ?? 1500,
      relistMs: options.relistMs ?? 500,
      concurrency: options.concurrency ?? 4,
      restartBackoffBaseMs: options.restartBackoffBaseMs ?? KUBELET_BACKOFF_BASE_MS,
      restartBackoffMaxMs: options.restartBackoffMaxMs ?? KUBELET_BACKOFF_MAX_MS,
      runtimeName: options.runtimeName ?? 'containerd',
    };
    this.backoff = new RestartBackoff(this.opts.restartBackoffBaseMs, this.opts.restartBackoffMaxMs);
    this.stopper = new ContainerStopper({
      runtime: deps.runtime,
      clock: deps.clock,
      log: deps.log,
      graceCeiling: (key, podUid) => this.deletionGrace(key, podUid),
    });
    this.executor = new PodExecutor(deps.runtime, undefined, (key, kill) => this.stopper.stop(key, kill), {
      objects: deps.desired,
      volumes: deps.volumes,
      images: deps.images,
      events: deps.events,
      nodeIp: options.nodeIp,
      hooks: deps.hooks ?? new HookRunner(deps.runtime),
      clockMs: () => deps.clock.now(),
    });
    this.relister = new Relister({ runtime: deps.runtime, log: deps.log, onChange: (key) => this.queue.add(key) }, this.opts.relistMs);
    this.queue = new WorkQueue((key) => this.sync(key), {
      workers: this.opts.concurrency,
      startPaused: true,
      onError: (key, err, attempt) => deps.log.error({ err: errorMessage(err), key, attempt }, 'sync failed; will retry'),
    });
  }

  start(): void {
    this.started = true;
    this.queue.start();
    void this.deps.desired.whenSynced().then(() => {
      if (this.stopped) return;
      this.scheduleResync(0);
      this.relister.start();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const d of this.wakeTimers.values()) clearTimeout(d.timer);
    this.wakeTimers.clear();
    await this.resyncing;
    await this.relister.stop();
    await this.queue.stop();
    await this.stopper.drain();
  }

  /**
   * Queues a pod key (the desired store's listener). When the key's pod is deleting and a sync is waiting out a
   * longer grace period for its containers, the shorter one is applied at once (see ContainerStopper).
   */
  enqueue(key: string): void {
    this.queue.add(key);
    const spec = this.deps.desired.get(key);
    if (spec?.deleting) this.stopper.shorten(key, spec.uid, gracePeriodSec(spec));
  }

  /** The deletion grace period the desired state sets for pod `podUid` under `key`, if it is deleting. */
  private deletionGrace(key: string, podUid: string): number | undefined {
    const spec = this.deps.desired.get(key);
    return spec?.deleting && spec.uid === podUid ? gracePeriodSec(spec) : undefined;
  }

  /** Pods that have something in the runtime. */
  podCount(): number {
    return this.withPods.size;
  }

  lastSync(key: string): LastSync | undefined {
    return this.lastSyncs.get(key);
  }

  /** Resolves when no key is queued or being synced. */
  idle(): Promise<void> {
    return this.queue.drained();
  }

  /** Queues every key the desired state, the runtime or the status reporter knows. */
  async resync(): Promise<void> {
    const keys = new Set(this.deps.desired.keys());
    for (const k of await this.deps.runtime.listPodKeys()) keys.add(podKeyString(k));
    for (const k of this.deps.status.pendingKeys()) keys.add(k);
    for (const k of this.deps.volumes?.keys() ?? []) keys.add(k);
    for (const k of keys) this.queue.add(k);
    this.backoff.gc(this.deps.clock.now());
  }

  private scheduleResync(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.resyncing = this.resync()
        .catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err) }, 'resync failed'))
        .finally(() => {
          this.resyncing = undefined;
          if (!this.stopped) this.scheduleResync(this.opts.resyncMs);
        });
    }, delayMs);
  }

  /** One sync of one key; public so tests can drive it without the queue. */
  async sync(key: string): Promise<void> {
    if (!this.deps.desired.get(key) && !this.deps.desired.synced) return;
    const started = performance.now();
    try {
      await this.syncKey(key);
    } finally {
      this.deps.metrics?.synced((performance.now() - started) / 1000);
    }
  }

  private async syncKey(key: string): Promise<void> {
    const { runtime, desired, status, clock } = this.deps;
    const log = this.deps.log.child({ pod: key });
    const spec = desired.get(key);
    const podKey = parsePodKey(key);

    let observed = await runtime.observePod(podKey);
    const nowMs = clock.now();
    const evicted = spec ? this.deps.evictions?.evicted(spec.uid) : undefined;
    const actions = computePodActions(spec, observed, {
      nowMs,
      backoff: this.backoff,
      probeFailures: this.deps.probes?.failures(),
      evicted: evicted !== undefined,
    });
    // The kubelet's doBackOff advances a container's backoff as it lets a restart go ahead.
    for (const s of actions.startContainers) if (s.backoff) this.backoff.next(s.backoff.key, s.backoff.sinceMs, nowMs);
    for (const b of spec ? actions.backoff : []) {
      const ref = {
        uid: spec!.uid,
        namespace: spec!.namespace,
        name: spec!.name,
        fieldPath: containerFieldPath(
          b.name,
          spec!.initContainers.some((c) => c.name === b.name),
        ),
      };
      this.deps.events?.event(
        ref,
        'Warning',
        Reasons.backOff,
        `Back-off restarting failed container ${b.name} in pod ${spec!.name}_${spec!.namespace}(${spec!.uid})`,
      );
    }
    let result: SyncResult | undefined;
    if (!isNoop(actions)) {
      log.info({ actions: describePodActions(actions) }, 'syncing pod');
      result = await this.executor.execute(spec, actions, log, observed);
      const restarts = actions.startContainers.filter((c) => c.restartCount > 0 && c.reason !== 'created but not started').length;
      if (restarts > 0) this.deps.metrics?.containerRestarted(restarts);
      log[result.ok ? 'debug' : 'warn']({ steps: describeSteps(result.steps) }, 'sync steps');
      observed = await runtime.observePod(podKey);
    } else if (this.executor.refreshesVolumes(spec, actions)) {
      result = await this.executor.execute(spec, actions, log); // nothing to change but projected volumes to refresh
      if (!result.ok) log.warn({ steps: describeSteps(result.steps) }, 'sync steps');
    }
    await this.deps.volumes?.cleanUp(key, spec, observed); // volume dirs of pod UIDs of which nothing remains
    this.lastSyncs.set(key, { key, actions, result, observed });
    if (observed.sandboxes.length > 0) this.withPods.add(key);
    else this.withPods.delete(key);

    this.deps.probes?.sync(key, spec, observed, this.opts.nodeIp);
    const failures = this.recordFailures(key, spec, observed, result);
    if (!spec && observed.sandboxes.length === 0) this.lastSyncs.delete(key);
    const written = await status.sync(podKey, spec, observed, {
      nodeIp: this.opts.nodeIp,
      runtimeName: this.opts.runtimeName,
      containerFailures: failures.containers,
      sandboxFailure: failures.sandbox,
      backoff: actions.backoff,
      nowMs: clock.now(),
      probes: this.deps.probes?.statuses(spec, observed),
      evicted,
    });
    const retry = !written || (result !== undefined && !result.ok) || failures.containers.size > 0 || failures.sandbox !== null;
    this.armWake(key, nextWake(actions, retry ? clock.now() + this.opts.retryMs : 0));
  }

  /** Queues the key at `atMs` (0: no wake-up); a different time replaces the key's timer. */
  private armWake(key: string, atMs: number): void {
    const held = this.wakeTimers.get(key);
    if (held?.atMs === atMs) return;
    if (held) clearTimeout(held.timer);
    this.wakeTimers.delete(key);
    if (atMs === 0 || !this.started || this.stopped) return;
    const delayMs = Math.min(MAX_WAKE_TIMER_MS, Math.max(0, atMs - this.deps.clock.now()));
    const timer = setTimeout(() => {
      this.wakeTimers.delete(key);
      this.queue.add(key);
    }, delayMs);
    this.wakeTimers.set(key, { atMs, timer });
  }

  /** The key's armed wake-up (ms since the epoch), if any: for tests and diagnostics. */
  wakeAt(key: string): number | undefined {
    return this.wakeTimers.get(key)?.atMs;
  }

  /** Keeps start failures until the container runs (so the status keeps saying ErrImagePull between retries). */
  private recordFailures(
    key: string,
    spec: edge.EdgePodSpec | undefined,
    observed: ObservedPod,
    result: SyncResult | undefined,
  ): { containers: Map<string, ContainerFailure>; sandbox: ContainerFailure | null } {
    let f = this.failures.get(key);
    if (!spec) {
      this.failures.delete(key);
      return { containers: new Map(), sandbox: null };
    }
    if (!f || f.uid !== spec.uid) {
      f = { uid: spec.uid, containers: new Map(), sandbox: null };
      this.failures.set(key, f);
    }
    if (result) {
      for (const name of result.started) f.containers.delete(name); // it ran, even if it ended before we looked
      for (const [name, failure] of result.containerFailures) f.containers.set(name, failure);
      f.sandbox = result.sandboxFailure;
    }
    for (const c of observed.containers) {
      if (c.podUid === spec.uid && c.state === 'running') f.containers.delete(c.name);
    }
    if (observed.sandboxes.some((s) => s.uid === spec.uid && s.state === 'ready')) f.sandbox = null;
    return f;
  }
}

/** The earliest of the pod's deadline, the ends of its restart backoffs and `retryAtMs` (0 each: none; 0: no wake-up). */
export function nextWake(actions: Pick<PodActions, 'deadlineAtMs' | 'backoff'>, retryAtMs: number): number {
  const times = [actions.deadlineAtMs, retryAtMs, ...actions.backoff.map((b) => b.untilMs + BACKOFF_WAKE_SLACK_MS)].filter((t) => t > 0);
  return times.length === 0 ? 0 : Math.min(...times);
}
