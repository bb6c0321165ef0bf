/**
 * Carries out a PodActions record against a PodRuntime in a fixed order, numbering each step and recording its
 * result. It never retries: a failed step is recorded and the next sync (a new decision on fresh observations)
 * tries again. Steps that depend on a failed one are recorded as skipped.
 *
 * Order: kill, stop sandbox, remove container, remove sandbox, set up volumes (one step per volume, for a pod that
 * runs or is about to: also on syncs that change nothing else, so projected volumes follow their objects), create
 * sandbox, then per container pull image, create (environment and mounts resolved here, as the kubelet does at
 * container creation), start. A volume that cannot be set up holds back the sandbox and every start
 * (ContainerCreating, with the kubelet's MountVolume.SetUp message); a reference that cannot be resolved holds back
 * its container (CreateContainerConfigError). Lifecycle hooks run as the kubelet runs them: a container's postStart
 * right after its start (a failure kills it: FailedPostStartHook), its preStop before its kill, within the grace period.
 */
import { allContainers, parsePodKey, type edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import { isContainerConfigError, needsPodIps, resolveContainerConfig, ContainerConfigError, type ObjectSource } from '../runtime/env.js';
import { terminationMessagePath } from '../runtime/cri-config.js';
import {
  isImagePullError,
  isRuntimeError,
  type ContainerCreateOptions,
  type ObservedPod,
  type PodRuntime,
  type SandboxRef,
} from '../runtime/types.js';
import { isVolumeSetUpError, type PodVolumes } from '../volumes/manager.js';
import type { ContainerToKill, PodActions } from './actions.js';
import { DEADLINE_EXCEEDED } from './pod-rules.js';
import { gracePeriodSec } from '../runtime/labels.js';
import { Reasons, containerFieldPath, type EventKind, type EventSink } from '../events/recorder.js';
import { errorMessage } from '../util/time.js';
import type { HookRunner } from '../lifecycle/hooks.js';

export type StepOp =
  | 'kill-container'
  | 'stop-sandbox'
  | 'remove-container'
  | 'remove-sandbox'
  | 'setup-volume'
  | 'create-sandbox'
  | 'pull-image'
  | 'create-container'
  | 'start-container';

export interface StepResult {
  step: number;
  op: StepOp;
  target: string;
  outcome: 'ok' | 'failed' | 'skipped';
  error?: string;
  durationMs: number;
}

/** Why a container could not be started, as the kubelet names it (ErrImagePull, CreateContainerError, ...). */
export interface ContainerFailure {
  reason: string;
  message: string;
}

export interface SyncResult {
  steps: StepResult[];
  /** The sandbox containers were started in, if any. */
  sandbox: SandboxRef | null;
  /** Per container name: why it could not be started in this sync. */
  containerFailures: Map<string, ContainerFailure>;
  /** Names of the containers started in this sync. */
  started: string[];
  /** Set when the sandbox could not be created. */
  sandboxFailure: ContainerFailure | null;
  ok: boolean;
}

/** What the executor reads besides the runtime: delivered objects, the pods' volumes, the node's IP. */
export interface ExecutorDeps {
  /** Makes images present (pull policy, pull secrets, backoff: images/puller.ts); default: the runtime's ensureImage. */
  images?: ImageEnsurer;
  objects?: ObjectSource;
  /** Without it, a pod with volumes or volume mounts cannot start. */
  volumes?: PodVolumes;
  nodeIp?: string;
  /** Kubernetes Events as the kubelet records them (Created, Started, Killing, Failed, BackOff, FailedMount). */
  events?: EventSink;
  /** Runs postStart and preStop hooks (lifecycle/hooks.ts); without it, hooks are not run. */
  hooks?: Pick<HookRunner, 'run'>;
  /** The clock a preStop hook's time is measured with (ms); default Date.now. */
  clockMs?: () => number;
}

/** The bound of a postStart hook (the kubelet sets none; a hook that never ends would hold the pod's sync for good). */
export const POST_START_TIMEOUT_SEC = 300;
/** The kubelet's minimumGracePeriodInSeconds: what is left to a container after its preStop hook, at least. */
const MIN_GRACE_AFTER_PRE_STOP_SEC = 2;

const NO_OBJECTS: ObjectSource = { object: () => undefined };

/** The part of the ImageManager (images/puller.ts) the executor uses. */
export interface ImageEnsurer {
  ensureImage(pod: edge.EdgePodSpec, container: edge.EdgeContainer): Promise<unknown>;
}

export class PodExecutor {
  constructor(
    private readonly runtime: PodRuntime,
    private readonly now: () => number = () => performance.now(),
    /** Carries out a kill (the Reconciler passes its ContainerStopper's, so a shorter grace period reaches it). */
    private readonly kill: (key: string, kill: ContainerToKill) => Promise<void> = (_key, k) =>
      runtime.stopContainer(k.id, k.gracePeriodSec),
    private readonly deps: ExecutorDeps = {},
  ) {}

  /** True when a sync with nothing else to do still has volumes to refresh (a pod with volumes that runs). */
  refreshesVolumes(desired: edge.EdgePodSpec | undefined, actions: PodActions): boolean {
    return (
      !!desired &&
      !desired.deleting &&
      desired.volumes.length > 0 &&
      (!!actions.createSandbox || !!actions.sandbox || actions.startContainers.length > 0)
    );
  }

  async execute(desired: edge.EdgePodSpec | undefined, actions: PodActions, log: Logger, observed?: ObservedPod): Promise<SyncResult> {
    const steps: StepResult[] = [];
    const result: SyncResult = {
      steps,
      sandbox: actions.sandbox,
      containerFailures: new Map(),
      started: [],
      sandboxFailure: null,
      ok: true,
    };
    const run = async (op: StepOp, target: string, fn: () => Promise<void>): Promise<boolean> => {
      const step = steps.length + 1;
      const t0 = this.now();
      try {
        await fn();
        steps.push({ step, op, target, outcome: 'ok', durationMs: this.now() - t0 });
        return true;
      } catch (err) {
        steps.push({ step, op, target, outcome: 'failed', error: errorMessage(err), durationMs: this.now() - t0 });
        result.ok = false;
        log.warn({ step, op, target, err: isRuntimeError(err) ? err.message : err }, 'sync step failed');
        return false;
      }
    };
    const { namespace, name } = parsePodKey(actions.key);
    const event = (uid: string | undefined, container: string | undefined, type: EventKind, reason: string, message: string): void => {
      if (!uid) return;
      const kind = !container
        ? undefined
        : desired?.initContainers.some((c) => c.name === container)
          ? 'init'
          : desired?.ephemeralContainers.some((c) => c.name === container)
            ? 'ephemeral'
            : 'regular';
      this.deps.events?.event(
        { uid, namespace, name, ...(container ? { fieldPath: containerFieldPath(container, kind) } : {}) },
        type,
        reason,
        message,
      );
    };
    if (actions.killContainers.some((k) => k.reason === 'active deadline exceeded')) {
      event(desired?.uid, undefined, 'Normal', DEADLINE_EXCEEDED.reason, DEADLINE_EXCEEDED.message);
    }
    const skip = (op: StepOp, target: string): void => {
      steps.push({ step: steps.length + 1, op, target, outcome: 'skipped', durationMs: 0 });
    };

    /** The pod's IP for httpGet hooks: the node's for hostNetwork pods, else its sandbox's (observed, or asked for). */
    const podIp = async (hook: edge.LifecycleHandler, sandboxId?: string): Promise<string> => {
      if (hook.handler.case !== 'httpGet' || hook.handler.value.host) return '';
      if (desired?.hostNetwork) return this.deps.nodeIp ?? '';
      if (sandboxId) return (await this.runtime.sandboxIps(sandboxId).catch(() => []))[0] ?? '';
      return observed?.sandboxes.find((x) => x.uid === desired?.uid && x.state === 'ready' && x.ip)?.ip ?? '';
    };
    /**
     * Like the kubelet's killContainer: the preStop hook (of a container of the desired pod, with a grace period) runs
     * first, bounded by the grace period, and what it took is taken from it (at least 2 s are left).
     */
    const killWithPreStop = async (k: ContainerToKill): Promise<void> => {
      const spec =
        desired && k.podUid === desired.uid ? [...desired.initContainers, ...desired.containers].find((c) => c.name === k.name) : undefined;
      if (!spec?.preStop || !this.deps.hooks || k.gracePeriodSec <= 0) return this.kill(actions.key, k);
      const t0 = this.deps.clockMs?.() ?? Date.now();
      const outcome = await this.deps.hooks.run(
        desired!,
        k.name,
        spec.preStop,
        { containerId: k.id, podIp: await podIp(spec.preStop) },
        k.gracePeriodSec,
      );
      const elapsedSec = Math.floor(((this.deps.clockMs?.() ?? Date.now()) - t0) / 1000);
      if (!outcome.ok) {
        log.warn({ container: k.name, message: outcome.message }, 'preStop hook failed');
        event(k.podUid, k.name, 'Warning', 'FailedPreStopHook', 'PreStopHook failed');
      }
      return this.kill(actions.key, { ...k, gracePeriodSec: Math.max(MIN_GRACE_AFTER_PRE_STOP_SEC, k.gracePeriodSec - elapsedSec) });
    };

    // Kills run in parallel: each may wait out a grace period.
    const kills = await Promise.all(
      actions.killContainers.map((k) => {
        event(k.podUid, k.name, 'Normal', Reasons.killing, `Stopping container ${k.name}`);
        return run('kill-container', k.id, () => killWithPreStop(k));
      }),
    );
    const killsOk = kills.every(Boolean);
    for (const s of actions.stopSandboxes) await run('stop-sandbox', s.id, () => this.runtime.stopSandbox(s.id));
    for (const c of actions.removeContainers) await run('remove-container', c.id, () => this.runtime.removeContainer(c.id));
    for (const s of actions.removeSandboxes) await run('remove-sandbox', s.id, () => this.runtime.removeSandbox(s.id));

    if (desired && this.refreshesVolumes(desired, actions)) {
      let blocking = '';
      for (const v of desired.volumes) {
        let error: unknown;
        await run('setup-volume', v.name, async () => {
          if (!this.deps.volumes) throw new Error('no volume directory configured');
          try {
            await this.deps.volumes.setUp(desired, v);
          } catch (err) {
            error = err;
            event(
              desired.uid,
              undefined,
              'Warning',
              Reasons.failedMount,
              `MountVolume.SetUp failed for volume "${v.name}" : ${errorMessage(err)}`,
            );
            throw err;
          }
        });
        // A volume set up before keeps serving when a refresh fails (like the kubelet's remount): it blocks nothing.
        if (error !== undefined && !(isVolumeSetUpError(error) && error.usable)) blocking ||= errorMessage(error);
      }
      if (blocking) {
        if (actions.createSandbox) skip('create-sandbox', `attempt ${actions.createSandbox.attempt}`);
        for (const start of actions.startContainers) {
          skip('start-container', start.name);
          result.containerFailures.set(start.name, { reason: start.init ? 'PodInitializing' : 'ContainerCreating', message: blocking });
        }
        return result;
      }
    }

    if (!desired || (actions.startContainers.length === 0 && !actions.createSandbox)) return result;

    let sandbox = actions.sandbox;
    if (actions.createSandbox) {
      const attempt = actions.createSandbox.attempt;
      const ok = await run('create-sandbox', `attempt ${attempt}`, async () => {
        sandbox = { id: await this.runtime.runSandbox(desired, attempt), attempt };
      });
      if (!ok) {
        const failed = steps[steps.length - 1]!;
        result.sandboxFailure = { reason: 'FailedCreatePodSandBox', message: failed.error ?? '' };
      }
    }
    result.sandbox = sandbox;

    const all = allContainers(desired);
    for (const start of actions.startContainers) {
      const spec = all.find((c) => c.name === start.name);
      if (!sandbox || !spec || !killsOk) {
        skip('start-container', start.name);
        continue;
      }
      const sb: SandboxRef = sandbox;
      let pullError: unknown;
      const pulled = await run('pull-image', `${start.name}: ${spec.image}`, async () => {
        try {
          await (this.deps.images ?? this.runtime).ensureImage(desired, spec);
        } catch (err) {
          pullError = err;
          throw err;
        }
      });
      if (!pulled) {
        const kind = isRuntimeError(pullError) ? pullError.kind : '';
        result.containerFailures.set(start.name, {
          reason:
            kind === 'image-never-pull'
              ? 'ErrImageNeverPull'
              : kind === 'image-pull-backoff'
                ? 'ImagePullBackOff'
                : isImagePullError(pullError)
                  ? 'ErrImagePull'
                  : 'ImageInspectError',
          message: errorMessage(pullError),
        });
        continue;
      }
      let id = '';
      let createError: unknown;
      const created = await run('create-container', start.name, async () => {
        try {
          // As the kubelet's getTargetID: the target container must exist (its process namespace is joined).
          if (start.target && !start.target.id) throw new ContainerConfigError(`unable to find target container ${start.target.name}`);
          const config = await this.containerConfig(desired, sb, spec, log);
          id = await this.runtime.createContainer(desired, sb, spec, {
            attempt: start.attempt,
            restartCount: start.restartCount,
            ...(start.target ? { targetId: start.target.id } : {}),
            ...config,
          });
        } catch (err) {
          createError = err;
          throw err;
        }
      });
      if (!created) {
        const reason = isContainerConfigError(createError) ? 'CreateContainerConfigError' : 'CreateContainerError';
        result.containerFailures.set(start.name, { reason, message: steps[steps.length - 1]!.error ?? '' });
        event(desired.uid, start.name, 'Warning', Reasons.failed, `Error: ${errorMessage(createError)}`);
        continue;
      }
      event(desired.uid, start.name, 'Normal', Reasons.created, `Created container: ${start.name}`);
      const started = await run('start-container', `${start.name}/${id.slice(0, 12)}`, () => this.runtime.startContainer(id));
      if (!started) {
        result.containerFailures.set(start.name, { reason: 'RunContainerError', message: steps[steps.length - 1]!.error ?? '' });
        event(desired.uid, start.name, 'Warning', Reasons.failed, `Error: ${steps[steps.length - 1]!.error ?? ''}`);
      } else {
        result.started.push(start.name);
        event(desired.uid, start.name, 'Normal', Reasons.started, `Started container ${start.name}`);
        if (spec.postStart && this.deps.hooks) {
          // Like the kubelet's startContainer: postStart runs right after the start; when it fails the container is
          // killed (reason FailedPostStartHook; its preStop hook runs first, as for any kill) and restarted per
          // restartPolicy. The message stays out of the Event.
          const target = { containerId: id, podIp: await podIp(spec.postStart, sandbox.id) };
          const outcome = await this.deps.hooks.run(desired, start.name, spec.postStart, target, POST_START_TIMEOUT_SEC);
          if (!outcome.ok) {
            log.warn({ container: start.name, message: outcome.message }, 'postStart hook failed');
            event(desired.uid, start.name, 'Warning', 'FailedPostStartHook', 'PostStartHook failed');
            event(desired.uid, start.name, 'Normal', Reasons.killing, 'FailedPostStartHook');
            const kill = {
              id,
              podUid: desired.uid,
              name: start.name,
              gracePeriodSec: gracePeriodSec(desired),
              reason: 'FailedPostStartHook',
            };
            await run('kill-container', `${start.name}/${id.slice(0, 12)}`, () => killWithPreStop(kill));
          }
        }
      }
    }
    return result;
  }

  /** Environment, command, args and mounts of a container about to be created (throws ContainerConfigError). */
  private async containerConfig(
    pod: edge.EdgePodSpec,
    sandbox: SandboxRef,
    container: edge.EdgeContainer,
    log: Logger,
  ): Promise<Pick<ContainerCreateOptions, 'env' | 'command' | 'args' | 'mounts'>> {
    const hostIps = this.deps.nodeIp ? [this.deps.nodeIp] : [];
    const podIps = pod.hostNetwork ? hostIps : needsPodIps(container) ? await this.runtime.sandboxIps(sandbox.id) : [];
    const resolved = resolveContainerConfig(pod, container, this.deps.objects ?? NO_OBJECTS, { podIps, hostIps });
    if (resolved.invalidKeys.length > 0) {
      log.warn(
        { container: container.name, keys: resolved.invalidKeys },
        'envFrom keys skipped: they are not valid environment variable names',
      );
    }
    let mounts: ContainerCreateOptions['mounts'] = [];
    if (container.volumeMounts.length > 0) {
      if (!this.deps.volumes)
        throw new ContainerConfigError(`cannot mount volumes into container "${container.name}": no volume directory configured`);
      mounts = await this.deps.volumes.mounts(pod, container);
    }
    if (this.deps.volumes?.terminationLogFile) {
      // As the kubelet: a fresh empty file per container instance, mounted read-write; a failure only logs.
      try {
        const hostPath = await this.deps.volumes.terminationLogFile(pod, container);
        mounts = [...mounts, { containerPath: terminationMessagePath(container), hostPath, readOnly: false }];
      } catch (err) {
        log.warn({ container: container.name, err: errorMessage(err) }, 'could not create the termination message file');
      }
    }
    // As the kubelet: the pod's managed /etc/hosts (hosts/hosts.ts), unless the container mounts its own.
    const hosts = await this.deps.volumes?.etcHosts?.(pod, container, () => this.runtime.sandboxIps(sandbox.id));
    if (hosts) mounts = [...mounts, hosts];
    return { env: resolved.env, command: resolved.command, args: resolved.args, mounts };
  }
}

/** Compact rendering of step results for logs: "1 kill-container abc ok 12ms; 2 ...". */
export function describeSteps(steps: StepResult[]): string {
  return steps
    .map((s) => `${s.step} ${s.op} ${s.target} ${s.outcome}${s.error ? ` (${s.error})` : ''} ${Math.round(s.durationMs)}ms`)
    .join('; ');
}
