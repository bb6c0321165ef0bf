/**
 * PodRuntime over CRI v1 (containerd) with the typed clients from @edgefarm/cri. Identity is read back from CRI
 * labels only; the only local state is a cache of facts that never change for a given id (a sandbox's IP, an
 * exited container's status), so a restart loses nothing. The clients are lent: whoever made them (the Agent, one
 * connection for the runtime, the image service and the streaming server) closes them.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { cri, edge, podKeyString, type PodKey } from '@edgefarm/proto';
import { CriError, type ImageServiceClient, type RuntimeServiceClient } from '@edgefarm/cri';
import type { Logger } from 'pino';
import { removePodCgroup } from './cgroups.js';
import {
  containerConfig,
  newestFirst,
  observedContainer,
  observedSandbox,
  podCgroupParent,
  podKeysOf,
  podLogDirectory,
  relistSnapshot,
  sandboxConfig,
  type NodeLayout,
} from './cri-config.js';
import { Annotations, Labels, MANAGED } from './labels.js';
import { ContainerConfigError } from './env.js';
import { imageUser, linuxResources, linuxSecurityContext, runAsNonRootViolation, type NodeResources } from './linux.js';
import { readTerminationMessage, withTerminationMessage } from './termination.js';
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

export interface CriRuntimeOptions {
  layout: NodeLayout;
  /** Mount point of the cgroup hierarchies, for removing pod cgroups; '' disables it. Default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Memory capacity and swap controller for container resources; default: this machine's (os.totalmem, cgroup v1 memsw). */
  node?: NodeResources;
}

/** The two CRI services on one endpoint, as criClients() makes them (metrics/instrumented-cri.ts wraps them). */
export interface CriClients {
  runtime: RuntimeServiceClient;
  image: ImageServiceClient;
}

interface KeyCache {
  ips: Map<string, string>;
  exited: Map<string, cri.ContainerStatus>;
}

const GRPC_NOT_FOUND = 5;
const GRPC_UNAVAILABLE = 14;
const GRPC_DEADLINE_EXCEEDED = 4;

function toRuntimeError(err: unknown, what: string): RuntimeError {
  if (err instanceof RuntimeError) return err;
  if (err instanceof CriError) {
    const kind = err.code === GRPC_NOT_FOUND ? 'not-found' : err.code === GRPC_UNAVAILABLE ? 'unavailable' : 'other';
    return new RuntimeError(`${what}: ${err.message}`, kind, { cause: err });
  }
  return new RuntimeError(`${what}: ${(err as Error)?.message ?? String(err)}`, 'other', { cause: err });
}

async function ignoreNotFound(p: Promise<unknown>, what: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    const e = toRuntimeError(err, what);
    if (e.kind !== 'not-found') throw e;
  }
}

/** Appends the kubelet's termination message (file or log tail, see termination.ts) to an exited container's. */
async function addTerminationMessage(status: cri.ContainerStatus): Promise<void> {
  const termination = await readTerminationMessage({
    exitCode: status.exitCode,
    reason: status.reason,
    path: status.annotations[Annotations.terminationMessagePath] ?? '',
    policy: status.annotations[Annotations.terminationMessagePolicy] ?? '',
    mounts: status.mounts,
    logPath: status.logPath,
  });
  status.message = withTerminationMessage(status.message, termination);
}

export class CriPodRuntime implements PodRuntime {
  private readonly cache = new Map<string, KeyCache>();
  private rootDirCache: string | undefined;
  private nodeCache: NodeResources | undefined;
  private readonly runtime: RuntimeServiceClient;
  private readonly image: ImageServiceClient;

  constructor(
    clients: CriClients,
    private readonly options: CriRuntimeOptions,
    private readonly log: Logger,
  ) {
    this.runtime = clients.runtime;
    this.image = clients.image;
  }

  async listPodKeys(): Promise<PodKey[]> {
    const res = await this.call(
      'ListPodSandbox',
      this.runtime.listPodSandbox({ filter: { labelSelector: { [Labels.managed]: MANAGED } } }),
    );
    return podKeysOf(res.items);
  }

  async relist(): Promise<RelistSnapshot> {
    const filter = { labelSelector: { [Labels.managed]: MANAGED } };
    const [sbs, cs] = await Promise.all([
      this.call('ListPodSandbox', this.runtime.listPodSandbox({ filter })),
      this.call('ListContainers', this.runtime.listContainers({ filter })),
    ]);
    return relistSnapshot(sbs.items, cs.containers);
  }

  async observePod(key: PodKey): Promise<ObservedPod> {
    const labelSelector = { [Labels.managed]: MANAGED, [Labels.podNamespace]: key.namespace, [Labels.podName]: key.name };
    const [sbs, cs] = await Promise.all([
      this.call('ListPodSandbox', this.runtime.listPodSandbox({ filter: { labelSelector } })),
      this.call('ListContainers', this.runtime.listContainers({ filter: { labelSelector } })),
    ]);
    const k = podKeyString(key);
    const old = this.cache.get(k);
    const fresh: KeyCache = { ips: new Map(), exited: new Map() };

    const sandboxes: ObservedSandbox[] = await Promise.all(
      sbs.items.map(async (item) => {
        let ip = old?.ips.get(item.id) ?? '';
        if (!ip && item.state === cri.PodSandboxState.SANDBOX_READY) ip = await this.sandboxIp(item.id);
        if (ip) fresh.ips.set(item.id, ip);
        return observedSandbox(item, ip);
      }),
    );
    const containers: ObservedContainer[] = [];
    await Promise.all(
      cs.containers.map(async (item) => {
        let status = old?.exited.get(item.id);
        if (!status) {
          try {
            status = (await this.runtime.containerStatus({ containerId: item.id })).status;
            if (status?.state === cri.ContainerState.CONTAINER_EXITED) await addTerminationMessage(status);
          } catch (err) {
            const e = toRuntimeError(err, 'ContainerStatus');
            if (e.kind === 'not-found') return; // removed meanwhile
            throw e;
          }
        }
        if (status?.state === cri.ContainerState.CONTAINER_EXITED) fresh.exited.set(item.id, status);
        containers.push(observedContainer(item, status));
      }),
    );
    if (sandboxes.length > 0 || containers.length > 0) this.cache.set(k, fresh);
    else this.cache.delete(k);
    sandboxes.sort(newestFirst);
    containers.sort(newestFirst);
    return { key, sandboxes, containers };
  }

  private async sandboxIp(id: string): Promise<string> {
    try {
      const res = await this.runtime.podSandboxStatus({ podSandboxId: id });
      return res.status?.network?.ip ?? '';
    } catch (err) {
      const e = toRuntimeError(err, 'PodSandboxStatus');
      if (e.kind === 'not-found') return '';
      throw e;
    }
  }

  async runSandbox(pod: edge.EdgePodSpec, attempt: number): Promise<string> {
    const config = sandboxConfig(this.options.layout, pod, attempt);
    await mkdir(podLogDirectory(this.options.layout, pod), { recursive: true });
    const res = await this.call('RunPodSandbox', this.runtime.runPodSandbox({ config }));
    return res.podSandboxId;
  }

  async sandboxIps(id: string): Promise<string[]> {
    const res = await this.call('PodSandboxStatus', this.runtime.podSandboxStatus({ podSandboxId: id }));
    const net = res.status?.network;
    return [net?.ip ?? '', ...(net?.additionalIps ?? []).map((i) => i.ip)].filter(Boolean);
  }

  async stopSandbox(id: string): Promise<void> {
    await ignoreNotFound(this.runtime.stopPodSandbox({ podSandboxId: id }), 'StopPodSandbox');
  }

  /** Also removes the pod's cgroup parent and log directory once its last sandbox is gone. */
  async removeSandbox(id: string): Promise<void> {
    let labels: Record<string, string>;
    try {
      labels = (await this.runtime.podSandboxStatus({ podSandboxId: id })).status?.labels ?? {};
    } catch (err) {
      if (toRuntimeError(err, 'PodSandboxStatus').kind === 'not-found') return;
      throw toRuntimeError(err, 'PodSandboxStatus');
    }
    await this.stopSandbox(id);
    await ignoreNotFound(this.runtime.removePodSandbox({ podSandboxId: id }), 'RemovePodSandbox');
    const uid = labels[Labels.podUid];
    const namespace = labels[Labels.podNamespace];
    const name = labels[Labels.podName];
    if (!uid || !namespace || !name) return;
    const rest = await this.call('ListPodSandbox', this.runtime.listPodSandbox({ filter: { labelSelector: { [Labels.podUid]: uid } } }));
    if (rest.items.length > 0) return;
    const root = this.options.cgroupRoot ?? '/sys/fs/cgroup';
    if (root) await removePodCgroup(root, podCgroupParent(this.options.layout, uid), this.log);
    const logDir = podLogDirectory(this.options.layout, { namespace, name, uid });
    if (path.dirname(logDir) === path.resolve(this.options.layout.podLogRoot)) await rm(logDir, { recursive: true, force: true });
  }

  async ensureImage(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string> {
    const spec = { image: container.image };
    const policy = container.imagePullPolicy;
    if (policy !== edge.PullPolicy.ALWAYS) {
      const present = await this.call('ImageStatus', this.image.imageStatus({ image: spec }));
      if (present.image) return present.image.id;
      if (policy === edge.PullPolicy.NEVER) {
        throw new RuntimeError(`Container image "${container.image}" is not present with pull policy of Never`, 'image-never-pull');
      }
    }
    try {
      const res = await this.image.pullImage({ image: spec, sandboxConfig: sandboxConfig(this.options.layout, pod, 0) });
      return res.imageRef;
    } catch (err) {
      throw new RuntimeError(`pulling ${container.image}: ${(err as Error).message}`, 'image-pull', { cause: err });
    }
  }

  async createContainer(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    options: ContainerCreateOptions,
  ): Promise<string> {
    // The kubelet's getImageUser + verifyRunAsNonRoot, before anything is created.
    const user = imageUser((await this.call('ImageStatus', this.image.imageStatus({ image: { image: container.image } }))).image);
    const violation = runAsNonRootViolation(pod, container, user);
    if (violation) throw new ContainerConfigError(violation);
    const logDir = podLogDirectory(this.options.layout, pod);
    await mkdir(path.join(logDir, container.name), { recursive: true });
    const res = await this.call(
      'CreateContainer',
      this.runtime.createContainer({
        podSandboxId: sandbox.id,
        config: containerConfig(pod, container, options, {
          resources: linuxResources(pod, container, this.nodeResources()),
          securityContext: linuxSecurityContext(container, user),
        }),
        sandboxConfig: sandboxConfig(this.options.layout, pod, sandbox.attempt),
      }),
    );
    return res.containerId;
  }

  async startContainer(id: string): Promise<void> {
    await this.call('StartContainer', this.runtime.startContainer({ containerId: id }));
  }

  async stopContainer(id: string, gracePeriodSec: number): Promise<void> {
    const timeout = Math.max(0, Math.trunc(gracePeriodSec));
    await ignoreNotFound(
      this.runtime.stopContainer({ containerId: id, timeout: BigInt(timeout) }, { deadlineMs: (timeout + 30) * 1000 }),
      'StopContainer',
    );
  }

  async removeContainer(id: string): Promise<void> {
    await ignoreNotFound(this.runtime.removeContainer({ containerId: id }), 'RemoveContainer');
  }

  async execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecResult> {
    const timeout = Math.max(1, Math.trunc(timeoutSec));
    try {
      const res = await this.runtime.execSync({ containerId: id, cmd, timeout: BigInt(timeout) }, { deadlineMs: (timeout + 5) * 1000 });
      const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
      return { exitCode: res.exitCode, stdout: text(res.stdout), stderr: text(res.stderr), timedOut: false };
    } catch (err) {
      // containerd answers a command past its timeout with DeadlineExceeded (as does our own gRPC deadline).
      if (err instanceof CriError && err.code === GRPC_DEADLINE_EXCEEDED) return { exitCode: -1, stdout: '', stderr: '', timedOut: true };
      throw toRuntimeError(err, 'ExecSync');
    }
  }

  async health(): Promise<RuntimeHealth> {
    const res = await this.call('Status', this.runtime.status({}));
    const conditions = res.status?.conditions ?? [];
    const cond = (type: string) => conditions.find((c) => c.type === type);
    const runtimeReady = cond('RuntimeReady')?.status ?? false;
    const networkReady = cond('NetworkReady')?.status ?? false;
    const message = conditions
      .filter((c) => !c.status)
      .map((c) => `${c.type}: ${c.reason}${c.message ? ` (${c.message})` : ''}`)
      .join('; ');
    return { runtimeReady, networkReady, message };
  }

  async version(): Promise<RuntimeVersion> {
    const res = await this.call('Version', this.runtime.version({ version: 'v1' }));
    return { runtimeName: res.runtimeName, runtimeVersion: res.runtimeVersion };
  }

  async listImages(): Promise<RuntimeImage[]> {
    const res = await this.call('ListImages', this.image.listImages({}));
    return res.images.map((i) => ({ names: [...i.repoDigests, ...i.repoTags], sizeBytes: Number(i.size) }));
  }

  async rootDir(): Promise<string> {
    if (this.rootDirCache !== undefined) return this.rootDirCache;
    const res = await this.call('Status', this.runtime.status({ verbose: true }));
    let dir: string;
    try {
      const config = JSON.parse(res.info.config ?? '{}') as { containerdRootDir?: string };
      dir = config.containerdRootDir ?? '';
    } catch {
      dir = '';
    }
    this.rootDirCache = dir;
    return dir;
  }

  private nodeResources(): NodeResources {
    this.nodeCache ??= this.options.node ?? {
      memoryCapacityBytes: os.totalmem(),
      swapControllerV1: existsSync(path.join(this.options.cgroupRoot || '/sys/fs/cgroup', 'memory/memory.memsw.limit_in_bytes')),
    };
    return this.nodeCache;
  }

  private async call<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw toRuntimeError(err, what);
    }
  }
}
