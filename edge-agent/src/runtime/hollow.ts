/**
 * HollowPodRuntime: a production PodRuntime that runs nothing. It keeps sandboxes and containers in memory as CRI
 * would hand them back (the same labels and annotations, built by cri-config.ts's sandboxConfig/containerConfig and
 * read back by its observedSandbox/observedContainer), so everything above the runtime is the real agent code. Used by
 * hollow sites (edge-agent/src/hollow/) to run thousands of edge nodes on one machine for scale tests.
 *
 * Behaviour: a sandbox is ready at once, a started container runs until it is stopped or told to {@link exit}; a stop
 * kills it at once (exit 137, no grace period is waited out), exec commands succeed. Identity lives only in the
 * labels, so an Agent started again on the same HollowPodRuntime (the runtime outlives its agents, as containerd does)
 * re-adopts its pods. Unlike FakePodRuntime (unit tests) it records no calls and takes no injected errors.
 */
import { create } from '@bufbuild/protobuf';
import { cri, type edge, type PodKey } from '@edgefarm/proto';
import { HollowImageService } from '../images/hollow.js';
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
  type ObservedPod,
  type PodRuntime,
  type RelistSnapshot,
  type RuntimeHealth,
  type RuntimeImage,
  type RuntimeVersion,
  type SandboxRef,
} from './types.js';

export interface HollowRuntimeOptions {
  /** Image side of the node (default: a new HollowImageService over this runtime's containers). */
  images?: HollowImageService;
  clock?: Clock;
  /** Pod IPs are handed out from `<ipPrefix>.<n>` (n from 2 to 254, cycling); default 10.254.0. */
  ipPrefix?: string;
}

interface HollowSandbox {
  item: cri.PodSandbox;
  ip: string;
}

interface HollowContainer {
  item: cri.Container;
  status: cri.ContainerStatus;
}

/** Layout handed to sandboxConfig: hollow pods write no logs and have no cgroups, the paths only fill the config. */
const LAYOUT: NodeLayout = { podLogRoot: '/hollow/pods', cgroupParent: '/hollow' };
const msToNs = (ms: number): bigint => BigInt(Math.trunc(ms)) * 1_000_000n;

export class HollowPodRuntime implements PodRuntime {
  readonly images: HollowImageService;
  private readonly sandboxes = new Map<string, HollowSandbox>();
  private readonly containers = new Map<string, HollowContainer>();
  private readonly clock: Clock;
  private readonly ipPrefix: string;
  private nextId = 1;

  constructor(options: HollowRuntimeOptions = {}) {
    this.images = options.images ?? new HollowImageService(() => this.imageRefsInUse());
    this.clock = options.clock ?? systemClock;
    this.ipPrefix = options.ipPrefix ?? '10.254.0';
  }

  /** Image ids used by any container (for the image GC). */
  imageRefsInUse(): Set<string> {
    return new Set([...this.containers.values()].map((c) => c.item.imageRef));
  }

  /** Makes a running container exit with `exitCode` (a crash or a completed job). */
  exit(id: string, exitCode: number): void {
    const c = this.mustContainer(id);
    if (c.item.state !== cri.ContainerState.CONTAINER_RUNNING) return;
    this.setState(c, cri.ContainerState.CONTAINER_EXITED);
    c.status.exitCode = exitCode;
    c.status.finishedAt = msToNs(this.clock.now());
    c.status.reason = exitCode === 0 ? 'Completed' : 'Error';
  }

  /** Ids of the containers of a pod key (any state), for tests and fault injection. */
  containerIds(key: PodKey): string[] {
    return [...this.containers.values()]
      .filter((c) => c.item.labels[Labels.podNamespace] === key.namespace && c.item.labels[Labels.podName] === key.name)
      .map((c) => c.item.id);
  }

  async listPodKeys(): Promise<PodKey[]> {
    return podKeysOf([...this.sandboxes.values()].map((s) => s.item));
  }

  async relist(): Promise<RelistSnapshot> {
    return relistSnapshot(
      [...this.sandboxes.values()].map((s) => s.item),
      [...this.containers.values()].map((c) => c.item),
    );
  }

  async observePod(key: PodKey): Promise<ObservedPod> {
    const ofKey = (labels: Record<string, string>) => labels[Labels.podNamespace] === key.namespace && labels[Labels.podName] === key.name;
    const sandboxes = [...this.sandboxes.values()].filter((s) => ofKey(s.item.labels)).map((s) => observedSandbox(s.item, s.ip));
    const containers = [...this.containers.values()].filter((c) => ofKey(c.item.labels)).map((c) => observedContainer(c.item, c.status));
    return { key, sandboxes: sandboxes.sort(newestFirst), containers: containers.sort(newestFirst) };
  }

  async runSandbox(pod: edge.EdgePodSpec, attempt: number): Promise<string> {
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
    this.sandboxes.set(id, { item, ip });
    return id;
  }

  async sandboxIps(id: string): Promise<string[]> {
    const ip = this.sandboxes.get(id)?.ip;
    return ip ? [ip] : [];
  }

  async stopSandbox(id: string): Promise<void> {
    const s = this.sandboxes.get(id);
    if (!s) return;
    for (const c of this.containers.values()) if (c.item.podSandboxId === id) this.exit(c.item.id, 137);
    s.item.state = cri.PodSandboxState.SANDBOX_NOTREADY;
  }

  async removeSandbox(id: string): Promise<void> {
    await this.stopSandbox(id);
    this.sandboxes.delete(id);
    for (const [cid, c] of this.containers) if (c.item.podSandboxId === id) this.containers.delete(cid);
  }

  async ensureImage(_pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string> {
    return (await this.images.imageId(container.image)) ?? this.images.pullImage(container.image);
  }

  async createContainer(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    options: ContainerCreateOptions,
  ): Promise<string> {
    if (!this.sandboxes.has(sandbox.id)) throw new RuntimeError(`sandbox ${sandbox.id} not found`, 'not-found');
    const config = containerConfig(pod, container, options);
    const id = this.newId('container');
    const createdAt = msToNs(this.clock.now());
    const imageRef = (await this.images.imageId(container.image)) ?? '';
    const common = {
      id,
      metadata: config.metadata,
      image: config.image,
      imageRef,
      state: cri.ContainerState.CONTAINER_CREATED,
      createdAt,
      labels: config.labels,
      annotations: config.annotations,
    };
    this.containers.set(id, {
      item: create(cri.ContainerSchema, { ...common, podSandboxId: sandbox.id }),
      status: create(cri.ContainerStatusSchema, { ...common, logPath: config.logPath }),
    });
    return id;
  }

  async startContainer(id: string): Promise<void> {
    const c = this.mustContainer(id);
    if (c.item.state !== cri.ContainerState.CONTAINER_CREATED) throw new RuntimeError(`container ${id} is not in state created`, 'other');
    this.setState(c, cri.ContainerState.CONTAINER_RUNNING);
    c.status.startedAt = msToNs(this.clock.now());
  }

  async stopContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (c) this.exit(id, 137);
  }

  async removeContainer(id: string): Promise<void> {
    this.containers.delete(id);
  }

  async execSync(id: string): Promise<ExecResult> {
    if (this.mustContainer(id).item.state !== cri.ContainerState.CONTAINER_RUNNING)
      throw new RuntimeError(`container ${id} is not running`, 'other');
    return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
  }

  async health(): Promise<RuntimeHealth> {
    return { runtimeReady: true, networkReady: true, message: '' };
  }

  async version(): Promise<RuntimeVersion> {
    return { runtimeName: 'hollow', runtimeVersion: '0.1.0' };
  }

  async listImages(): Promise<RuntimeImage[]> {
    return (await this.images.listImages()).map((i) => ({ names: i.names, sizeBytes: i.sizeBytes }));
  }

  async rootDir(): Promise<string> {
    return '';
  }

  /** Nothing to release: the state stays for the next agent on this runtime. */
  close(): void {}

  private newId(kind: string): string {
    return `hollow-${kind}-${(this.nextId++).toString(36)}`;
  }

  private mustContainer(id: string): HollowContainer {
    const c = this.containers.get(id);
    if (!c) throw new RuntimeError(`container ${id} not found`, 'not-found');
    return c;
  }

  private setState(c: HollowContainer, state: cri.ContainerState): void {
    c.item.state = state;
    c.status.state = state;
  }
}
