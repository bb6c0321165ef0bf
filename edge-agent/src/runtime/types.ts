/**
 * PodRuntime: what the agent needs from a container runtime, in pod terms. The CRI implementation (cri-runtime.ts)
 * talks to containerd; MemoryPodRuntime (memory.ts) keeps pods in memory for hollow sites and unit tests.
 *
 * Rules every implementation follows:
 * - Pod identity lives only in the runtime's own labels/annotations (see labels.ts): everything returned by
 *   {@link PodRuntime.listPodKeys} and {@link PodRuntime.observePod} is rebuilt from the runtime alone, so a
 *   restarted agent re-adopts what is running.
 * - Only objects the agent manages (label edgefarm.io/managed=true) are ever returned or touched.
 * - Every mutating method may be called again after a failure or a crash; removing or stopping something already
 *   gone succeeds (NotFound is success).
 * - Methods throw {@link RuntimeError}s; callers classify them with the predicates below, never by message text.
 */
import { type PodKey } from '@edgefarm/proto';
import type { edge } from '@edgefarm/proto';

export type SandboxState = 'ready' | 'notready';
export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ObservedSandbox {
  id: string;
  uid: string;
  namespace: string;
  name: string;
  attempt: number;
  state: SandboxState;
  createdAtMs: number;
  /** Pod IP from the runtime's network status ('' for hostNetwork or not yet known). */
  ip: string;
  hostNetwork: boolean;
  /** Hash of the sandbox-level spec the sandbox was created from (a change means a new sandbox). */
  configHash: string;
  /** resourceVersion of the spec the sandbox was created from. */
  resourceVersion: string;
}

export interface ObservedContainer {
  id: string;
  sandboxId: string;
  podUid: string;
  name: string;
  attempt: number;
  state: ContainerState;
  /** Hash of the container spec it was created from. */
  hash: string;
  restartCount: number;
  /** Grace period recorded at creation, used when the pod's spec is gone (tombstone, orphan). */
  terminationGracePeriodSec: number;
  image: string;
  imageRef: string;
  createdAtMs: number;
  /** 0 when not started. */
  startedAtMs: number;
  /** 0 when not finished. */
  finishedAtMs: number;
  exitCode: number;
  reason: string;
  message: string;
}

/** Everything the runtime holds for one pod key (any UID: a pod re-created under the same name has a new one). */
export interface ObservedPod {
  key: PodKey;
  sandboxes: ObservedSandbox[];
  containers: ObservedContainer[];
}

export interface SandboxRef {
  id: string;
  attempt: number;
}

/** A bind mount of a host path into a container. */
export interface ContainerMount {
  containerPath: string;
  hostPath: string;
  readOnly: boolean;
}

export interface ContainerCreateOptions {
  attempt: number;
  restartCount: number;
  /** The resolved environment (envFrom, key references, field paths, $(VAR) expanded); default: the spec's values. */
  env?: { name: string; value: string }[];
  /** Command and args with $(VAR) expanded; default: the spec's. */
  command?: string[];
  args?: string[];
  mounts?: ContainerMount[];
  /** An ephemeral container's target: the id of the container whose process namespace it joins (CRI pid TARGET). */
  targetId?: string;
}

/** What a command run in a container (CRI ExecSync) gave back. */
export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The command did not finish within its timeout (exitCode is then meaningless). */
  timedOut: boolean;
}

export interface RuntimeHealth {
  runtimeReady: boolean;
  networkReady: boolean;
  /** Why not ready ('' when ready). */
  message: string;
}

export interface RuntimeVersion {
  runtimeName: string;
  runtimeVersion: string;
}

export interface RuntimeImage {
  names: string[];
  sizeBytes: number;
}

/**
 * One cheap look at every managed pod (the kubelet's PLEG relist): per pod key ("<namespace>/<name>"), a digest of
 * its sandboxes' and containers' ids and states. Two equal digests mean nothing a sync would act on has changed
 * state; a key that has a digest now and had none before, or the reverse, changed too.
 */
export type RelistSnapshot = Map<string, string>;

export interface PodRuntime {
  /** Keys of every pod that has at least one managed sandbox. */
  listPodKeys(): Promise<PodKey[]>;
  /** Digests of every managed pod's state, from one listing of sandboxes and one of containers. */
  relist(): Promise<RelistSnapshot>;
  /** Sandboxes and containers of one pod key, newest first. */
  observePod(key: PodKey): Promise<ObservedPod>;
  /** Creates and starts the pod's sandbox (network, log directory, cgroup parent); returns its id. */
  runSandbox(pod: edge.EdgePodSpec, attempt: number): Promise<string>;
  /** The IPs of a sandbox's pod network (first the primary; empty for hostNetwork or when not known). */
  sandboxIps(id: string): Promise<string[]>;
  /** Stops every container of the sandbox and the sandbox itself. Idempotent. */
  stopSandbox(id: string): Promise<void>;
  /** Removes a sandbox and its containers; it is stopped first when needed. Idempotent. */
  removeSandbox(id: string): Promise<void>;
  /** Makes the container's image present according to its pull policy; returns the image reference. */
  ensureImage(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<string>;
  /** Creates (does not start) a container in a sandbox; returns its id. */
  createContainer(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    options: ContainerCreateOptions,
  ): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** Stops a container: SIGTERM, then SIGKILL after the grace period. Idempotent. */
  stopContainer(id: string, gracePeriodSec: number): Promise<void>;
  /** Removes a stopped container. Idempotent. */
  removeContainer(id: string): Promise<void>;
  /** Runs a command in a running container and waits for it, at most `timeoutSec` (exec probes). */
  execSync(id: string, cmd: string[], timeoutSec: number): Promise<ExecResult>;
  health(): Promise<RuntimeHealth>;
  version(): Promise<RuntimeVersion>;
  listImages(): Promise<RuntimeImage[]>;
  /** Filesystem the runtime keeps images and containers on (for ephemeral-storage), or '' when unknown. */
  rootDir(): Promise<string>;
}

export type RuntimeErrorKind = 'not-found' | 'image-pull' | 'image-pull-backoff' | 'image-never-pull' | 'unavailable' | 'other';

export class RuntimeError extends Error {
  override name = 'RuntimeError';
  constructor(
    message: string,
    readonly kind: RuntimeErrorKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export function isRuntimeError(err: unknown): err is RuntimeError {
  return err instanceof RuntimeError;
}
export function isRuntimeNotFound(err: unknown): boolean {
  return isRuntimeError(err) && err.kind === 'not-found';
}
export function isImagePullError(err: unknown): boolean {
  return isRuntimeError(err) && (err.kind === 'image-pull' || err.kind === 'image-pull-backoff' || err.kind === 'image-never-pull');
}
export function isRuntimeUnavailable(err: unknown): boolean {
  return isRuntimeError(err) && err.kind === 'unavailable';
}
