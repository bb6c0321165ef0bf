/**
 * MemoryPodRuntime: a PodRuntime that runs nothing. It keeps sandboxes and containers in memory as CRI would hand
 * them back (the same labels and annotations, built by cri-config.ts's sandboxConfig/containerConfig and read back by
 * its observedSandbox/observedContainer), so everything above the runtime is the real agent code. It serves:
 *
 * - hollow sites (edge-agent/src/hollow/), hundreds of real agents per process for scale tests: the default records
 *   nothing, so a long-running node keeps only its pods;
 * - unit tests, which turn on `recordCalls` ({@link calls}, {@link methods}), inject errors ({@link failNext}), make
 *   containers exit ({@link exit}) or ignore SIGTERM ({@link ignoreSigterm}), and script exec ({@link execHandler}).
 *
 * Behaviour: a sandbox is ready at once; a started container runs until it is stopped or told to exit; a stop kills
 * it at once (exit 137) unless it ignores SIGTERM, in which case the stop waits out its grace period on the clock as
 * containerd's does ({@link expireStops}); exec commands succeed. Images come from {@link images}: ensureImage takes a
 * present image, else pulls it. Identity lives only in the labels, so an agent started again on the same runtime (the
 * runtime outlives its agents, as containerd does) re-adopts its pods.
 */
import { create } from '@bufbuild/protobuf';
import { cri, podKeyString, type edge, type PodKey } from '@edgefarm/proto';
import { MemoryImageService } from '../images/memory.js';
import { CallLog, type Call } from '../util/call-log.js';
import { systemClock, type Clock } from '../util/time.js';
import {
  containerConfig,
  newestFirst,
  observedContainer,
  observedSandbox,
  podKeysOf,
  relistSnapshot,
  sandboxConfig,
  type NodeLayout,
} from './cri-config.js';
import { Labels } from './labels.js';
import {
  RuntimeError,
  type ContainerCreateOptions,
  type ExecResult,
  type ObservedContainer,
  type ObservedPod,
  type ObservedSandbox,
  type PodRuntime,
  type RelistSnapshot,
  type RuntimeHealth,
  type RuntimeImage,
  type RuntimeVersion,
  type SandboxRef,
} from './types.js';

export interface MemoryRuntimeOptions {
  clock?: Clock;
  /** Keep every call in {@link MemoryPodRuntime.calls} (unit tests); default off. */
  recordCalls?: boolean;
  /** Image side of the node (default: a MemoryImageService that pulls any image, asking this runtime what is in use). */
  images?: MemoryImageService;
  /** Pod IPs are handed out from `<ipPrefix>.<n>` (n from 2 to 254, cycling); default 10.254.0. */
  ipPrefix?: string;
  /** What version() answers; its runtimeName prefixes container ids in status reports. Default memory 0.1.0. */
  version?: RuntimeVersion;
}

interface MemorySandbox {
  item: cri.PodSandbox;
  ip: string;
}

interface MemoryContainer {
  item: cri.Container;
  status: cri.ContainerStatus;
}

interface WaitingStop {
  graceSec: number;
  deadlineMs: number;
  done: () => void;
}

/** Layout handed to sandboxConfig: these pods write no logs and have no cgroups, the paths only fill the config. */
const LAYOUT: NodeLayout = { podLogRoot: '/memory/pods', cgroupParent: '/memory' };
const msToNs = (ms: number): bigint => BigInt(Math.trunc(ms)) * 1_000_000n;
const EXITED = cri.ContainerState.CONTAINER_EXITED;
const RUNNING = cri.ContainerState.CONTAINER_RUNNING;

export class MemoryPodRuntime implements PodRuntime {
  readonly images: MemoryImageService;
  /** What health() answers. */
  healthValue: RuntimeHealth = { runtimeReady: true, networkReady: true, message: '' };
  /** Answers execSync for a running container (default: exit 0). */
  execHandler: (id: string, cmd: string[], timeoutSec: number) => ExecResult | Promise<ExecResult> = () => ({
    exitCode: 0,
    stdout: '',
    stderr: '',
    timedOut: false,
  });
  private readonly record: CallLog<keyof PodRuntime>;
  private readonly sandboxItems = new Map<string, MemorySandbox>();
  private readonly containerItems = new Map<string, MemoryContainer>();
  private readonly termIgnored = new Set<string>();
  private readonly waitingStops = new Map<string, WaitingStop[]>();
  private readonly clock: Clock;
  private readonly ipPrefix: string;
  private readonly versionValue: RuntimeVersion;
  private nextId = 1;

  constructor(options: MemoryRuntimeOptions = {}) {
    this.record = new CallLog(options.recordCalls ?? false);
    this.images = options.images ?? new MemoryImageService({ inUse: () => this.imageRefsInUse() });
    this.clock = options.clock ?? systemClock;
    this.ipPrefix = options.ipPrefix ?? '10.254.0';
    this.versionValue = options.version ?? { runtimeName: 'memory', runtimeVersion: '0.1.0' };
  }

  /** Every call so far, oldest first (with recordCalls; a test may clear it). */
  get calls(): Call<keyof PodRuntime>[] {
    return this.record.calls;
  }

  /** The methods called so far, in order (with recordCalls). */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }

  /** The next call of `method` throws `err` (queue several for several calls). */
  failNext(method: keyof PodRuntime, err: Error = new RuntimeError(`injected ${method} failure`, 'other')): void {
    this.record.failNext(method, err);
  }

  /** The sandboxes as observePod reports them, by id (a snapshot). */
  get sandboxes(): Map<string, ObservedSandbox> {
    return new Map([...this.sandboxItems].map(([id, s]) => [id, observedSandbox(s.item, s.ip)]));
  }

  /** The containers as observePod reports them, by id (a snapshot). */
  get containers(): Map<string, ObservedContainer> {
    return new Map([...this.containerItems].map(([id, c]) => [id, observedContainer(c.item, c.status)]));
  }

  /** Ids of the containers of a pod key (any state). */
  containerIds(key: PodKey): string[] {
    return [...this.containerItems.values()].filter((c) => ofKey(c.item.labels, key)).map((c) => c.item.id);
  }

  /** Image ids used by any container (the image GC's "in use"). */
  imageRefsInUse(): Set<string> {
    return new Set([...this.containerItems.values()].map((c) => c.item.imageRef));
  }

  /** Makes a running container exit with `exitCode` (a crash or a completed job); its waiting stops return. */
  exit(id: string, exitCode: number): void {
    const c = this.mustContainer(id);
    if (c.item.state !== RUNNING) return;
    setState(c, EXITED);
    c.status.exitCode = exitCode;
    c.status.finishedAt = msToNs(this.clock.now());
    c.status.reason = exitCode === 0 ? 'Completed' : 'Error';
    this.releaseStops(id);
  }

  /**
   * The container ignores SIGTERM (`trap "" TERM`): stopContainer with a grace period > 0 waits until the clock has
   * passed its deadline and {@link expireStops} runs, or until the container ends otherwise (a stop with timeout 0,
   * stopSandbox, exit, removal); every waiting stop of it then returns, as with containerd.
   */
  ignoreSigterm(id: string): void {
    this.mustContainer(id);
    this.termIgnored.add(id);
  }

  /** Stops waiting out a grace period. */
  pendingStops(): { id: string; graceSec: number; deadlineMs: number }[] {
    return [...this.waitingStops].flatMap(([id, stops]) => stops.map((s) => ({ id, graceSec: s.graceSec, deadlineMs: s.deadlineMs })));
  }

  /** Kills (exit 137) every container whose earliest waiting stop has reached its deadline on the clock. */
  expireStops(): void {
    const now = this.clock.now();
    for (const [id, stops] of [...this.waitingStops]) {
      if (stops.some((s) => s.deadlineMs <= now)) this.exit(id, 137);
    }
  }

  async listPodKeys(): Promise<PodKey[]> {
    this.record.enter('listPodKeys');
    return podKeysOf([...this.sandboxItems.values()].map((s) => s.item));
  }

  async relist(): Promise<RelistSnapshot> {
    this.record.enter('relist');
    return relistSnapshot(
      [...this.sandboxItems.values()].map((s) => s.item),
      [...this.containerItems.values()].map((c) => c.item),
    );
  }

  async observePod(key: PodKey): Promise<ObservedPod> {
    this.record.enter('observePod', podKeyString(key));
    const sandboxes = [...this.sandboxItems.values()].filter((s) => ofKey(s.item.labels, key)).map((s) => observedSandbox(s.item, s.ip));
    const containers = [...this.containerItems.values()]
      .filter((c) => ofKey(c.item.labels, key))
      .map((c) => observedContainer(c.item, c.status));
    return { key, sandboxes: sandboxes.sort(newestFirst), containers: containers.sort(newestFirst) };
  }

  async runSandbox(pod: edge.EdgePodSpec, attempt: number): Promise<string> {
    this.record.enter('runSandbox', pod.uid, attempt);
    const config = sandboxConfig(LAYOUT, pod, attempt);
    const id = this.newId('sandbox');
    const item = create(cri.PodSandboxSchema, {
      id,
      metadata: config.metadata,
      state: cri.PodSandboxState.SANDBOX_READY,
      createdAt: msToNs(this.clock.now()),
      labels: config.labels,
      annotations: config.annotations,
    });
    const ip = pod.hostNetwork ? '' : `${this.ipPrefix}.${2 + ((this.nextId - 1) % 253)}`;
    this.sandboxItems.set(id, { item, ip });
    return id;
  }

  async sandboxIps(id: string): Promise<string[]> {
    this.record.enter('sandboxIps', id);
    const ip = this.sandboxItems.get(id)?.ip;
    return ip ? [ip] : [];
  }

  async stopSandbox(id: string): Promise<void> {
    this.record.enter('stopSandbox', id);
    this.stopSandboxNow(id);
  }

  async removeSandbox(id: string): Promise<void> {
    this.record.enter('removeSandbox', id);
    this.stopSandboxNow(id);
    this.sandboxItems.delete(id);
    for (const [cid, c] of this.containerItems) if (c.item.podSandboxId === id) this.forgetContainer(cid);
  }

  async ensureImage(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string> {
    this.record.enter('ensureImage', container.image);
    return (await this.images.imageId(container.image)) ?? this.images.pullImage(container.image);
  }

  async createContainer(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    options: ContainerCreateOptions,
  ): Promise<string> {
    this.record.enter('createContainer', sandbox.id, container.name, options);
    if (!this.sandboxItems.has(sandbox.id)) throw new RuntimeError(`sandbox ${sandbox.id} not found`, 'not-found');
    const config = containerConfig(pod, container, options);
    const id = this.newId('container');
    const imageRef = (await this.images.imageId(container.image)) ?? '';
    const common = {
      id,
      metadata: config.metadata,
      image: config.image,
      imageRef,
      state: cri.ContainerState.CONTAINER_CREATED,
      createdAt: msToNs(this.clock.now()),
      labels: config.labels,
      annotations: config.annotations,
    };
    this.containerItems.set(id, {
      item: create(cri.ContainerSchema, { ...common, podSandboxId: sandbox.id }),
      status: create(cri.ContainerStatusSchema, { ...common, logPath: config.logPath }),
    });
    return id;
  }

  async startContainer(id: string): Promise<void> {
    this.record.enter('startContainer', id);
    const c = this.mustContainer(id);
    if (c.item.state !== cri.ContainerState.CONTAINER_CREATED) throw new RuntimeError(`container ${id} is not in state created`, 'other');
    setState(c, RUNNING);
    c.status.startedAt = msToNs(this.clock.now());
  }

  async stopContainer(id: string, gracePeriodSec: number): Promise<void> {
    this.record.enter('stopContainer', id, gracePeriodSec);
    const c = this.containerItems.get(id);
    if (!c || c.item.state !== RUNNING) return;
    if (!this.termIgnored.has(id) || gracePeriodSec <= 0) {
      this.exit(id, 137);
      return;
    }
    const deadlineMs = this.clock.now() + gracePeriodSec * 1000;
    await new Promise<void>((done) => {
      const stops = this.waitingStops.get(id) ?? [];
      stops.push({ graceSec: gracePeriodSec, deadlineMs, done });
      this.waitingStops.set(id, stops);
    });
  }

  async removeContainer(id: string): Promise<void> {
    this.record.enter('removeContainer', id);
    this.forgetContainer(id);
  }

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecResult> {
    this.record.enter('execSync', id, cmd, timeoutSec);
    if (this.mustContainer(id).item.state !== RUNNING) throw new RuntimeError(`container ${id} is not running`, 'other');
    return this.execHandler(id, cmd, timeoutSec);
  }

  async health(): Promise<RuntimeHealth> {
    this.record.enter('health');
    return this.healthValue;
  }

  async version(): Promise<RuntimeVersion> {
    this.record.enter('version');
    return this.versionValue;
  }

  async listImages(): Promise<RuntimeImage[]> {
    this.record.enter('listImages');
    return (await this.images.listImages()).map((i) => ({ names: i.names, sizeBytes: i.sizeBytes }));
  }

  async rootDir(): Promise<string> {
    this.record.enter('rootDir');
    return '';
  }

  private stopSandboxNow(id: string): void {
    const s = this.sandboxItems.get(id);
    if (!s) return;
    for (const c of this.containerItems.values()) if (c.item.podSandboxId === id) this.exit(c.item.id, 137);
    s.item.state = cri.PodSandboxState.SANDBOX_NOTREADY;
  }

  private forgetContainer(id: string): void {
    this.containerItems.delete(id);
    this.termIgnored.delete(id);
    this.releaseStops(id);
  }

  private releaseStops(id: string): void {
    const stops = this.waitingStops.get(id);
    if (!stops) return;
    this.waitingStops.delete(id);
    for (const s of stops) s.done();
  }

  private newId(kind: string): string {
    return `${kind}-${(this.nextId++).toString(36)}`;
  }

  private mustContainer(id: string): MemoryContainer {
    const c = this.containerItems.get(id);
    if (!c) throw new RuntimeError(`container ${id} not found`, 'not-found');
    return c;
  }
}

function ofKey(labels: Record<string, string>, key: PodKey): boolean {
  return labels[Labels.podNamespace] === key.namespace && labels[Labels.podName] === key.name;
}

function setState(c: MemoryContainer, state: cri.ContainerState): void {
  c.item.state = state;
  c.status.state = state;
}
