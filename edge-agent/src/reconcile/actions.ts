/**
 * computePodActions: the pure decision of one pod sync, in the manner of the kubelet's kuberuntime. It compares the
 * desired spec (undefined after a tombstone or for an orphan) with what the runtime holds under the pod's key and
 * returns a plain record of what to do. No I/O, no clock reads: `now` comes in. The executor carries it out in a
 * fixed order (kill, stop, remove, create sandbox, start containers); what fails is retried by the next sync.
 */
import { allContainers, edge, podKeyString } from '@edgefarm/proto';
import { containerHash, gracePeriodSec, sandboxHash } from '../runtime/labels.js';
import { backoffKey, crashLoopMessage, type BackoffView } from './backoff.js';
import type { ObservedContainer, ObservedPod, ObservedSandbox, SandboxRef } from '../runtime/types.js';
import { activeDeadlineMs, byName, isLive, pastActiveDeadline, podIsDone, shouldRestart } from './pod-rules.js';

export interface ContainerToKill {
  id: string;
  /** UID of the pod the container belongs to (not always the desired one: an earlier pod under the same name). */
  podUid: string;
  name: string;
  gracePeriodSec: number;
  reason: string;
}
export interface ObjectToDrop {
  id: string;
  reason: string;
}
export interface ContainerToStart {
  name: string;
  init: boolean;
  /** An ephemeral container (kubectl debug): started once, never restarted. */
  ephemeral?: boolean;
  /**
   * An ephemeral container's targetContainerName and the id of that container's newest instance ('' when it has none:
   * the start fails, as the kubelet's getTargetID), whose process namespace it joins.
   */
  target?: { name: string; id: string };
  /** CRI metadata attempt: unique per container name within the pod UID. */
  attempt: number;
  restartCount: number;
  reason: string;
  /** Set for a restart of an exited container: the caller advances this backoff key (the kubelet's backOff.Next). */
  backoff?: { key: string; sinceMs: number };
}
export interface BackoffWait {
  name: string;
  restartCount: number;
  /** When the restart becomes due (ms since the epoch). */
  untilMs: number;
  /** The kubelet's CrashLoopBackOff message: `back-off 20s restarting failed container=c pod=p_ns(uid)`. */
  message: string;
}

export interface PodActions {
  key: string;
  /** UID of the desired pod ('' when there is no desired spec). */
  uid: string;
  killContainers: ContainerToKill[];
  stopSandboxes: ObjectToDrop[];
  removeContainers: ObjectToDrop[];
  removeSandboxes: ObjectToDrop[];
  createSandbox: { attempt: number; reason: string } | null;
  /** The ready sandbox containers start in; null when createSandbox makes a new one (or nothing starts). */
  sandbox: SandboxRef | null;
  startContainers: ContainerToStart[];
  /** Restarts held back by the restart backoff; the next sync after untilMs starts them. */
  backoff: BackoffWait[];
  /** When the pod's activeDeadlineSeconds runs out (ms since the epoch; 0: no deadline, not started, or passed). */
  deadlineAtMs: number;
}

/** Which probe found a running container unhealthy (by container id): it is killed and restarted per restartPolicy. */
export type ProbeFailure = 'liveness' | 'startup';

export interface ActionContext {
  nowMs: number;
  /** The restart backoff (CrashLoopBackOff) state, read only. */
  backoff: BackoffView;
  /** Running containers whose liveness or startup probe has failed (failureThreshold in a row), by container id. */
  probeFailures?: ReadonlyMap<string, ProbeFailure>;
  /** The node evicted the pod (eviction/): its containers are killed at once and nothing of it starts again. */
  evicted?: boolean;
}

export function emptyActions(key: string, uid: string): PodActions {
  return {
    key,
    uid,
    killContainers: [],
    stopSandboxes: [],
    removeContainers: [],
    removeSandboxes: [],
    createSandbox: null,
    sandbox: null,
    startContainers: [],
    backoff: [],
    deadlineAtMs: 0,
  };
}

/** True when the actions change nothing in the runtime (a backoff wait alone changes nothing). */
export function isNoop(a: PodActions): boolean {
  return (
    a.killContainers.length === 0 &&
    a.stopSandboxes.length === 0 &&
    a.removeContainers.length === 0 &&
    a.removeSandboxes.length === 0 &&
    a.createSandbox === null &&
    a.startContainers.length === 0
  );
}

/** One line per non-empty part, for logs. */
export function describePodActions(a: PodActions): string {
  const parts: string[] = [];
  const list = <T>(label: string, xs: T[], f: (x: T) => string): void => {
    if (xs.length > 0) parts.push(`${label}: ${xs.map(f).join(', ')}`);
  };
  list('kill', a.killContainers, (c) => `${c.name}/${c.id.slice(0, 12)} (${c.reason}, grace ${c.gracePeriodSec}s)`);
  list('stop sandbox', a.stopSandboxes, (s) => `${s.id.slice(0, 12)} (${s.reason})`);
  list('remove container', a.removeContainers, (c) => `${c.id.slice(0, 12)} (${c.reason})`);
  list('remove sandbox', a.removeSandboxes, (s) => `${s.id.slice(0, 12)} (${s.reason})`);
  if (a.createSandbox) parts.push(`create sandbox: attempt ${a.createSandbox.attempt} (${a.createSandbox.reason})`);
  list('start', a.startContainers, (c) => `${c.init ? 'init ' : c.ephemeral ? 'ephemeral ' : ''}${c.name}#${c.restartCount} (${c.reason})`);
  list('backoff', a.backoff, (b) => `${b.name} until ${new Date(b.untilMs).toISOString()}`);
  return `${a.key}: ${parts.length === 0 ? 'nothing' : parts.join('; ')}`;
}

/** Kills, stops and removes all of the given sandboxes and their containers. */
function dropSandboxes(a: PodActions, pod: ObservedPod, sandboxes: ObservedSandbox[], reason: string, grace?: number): void {
  for (const s of sandboxes) {
    for (const c of pod.containers) {
      if (c.sandboxId === s.id && isLive(c)) {
        a.killContainers.push({ id: c.id, podUid: c.podUid, name: c.name, gracePeriodSec: grace ?? c.terminationGracePeriodSec, reason });
      }
    }
    if (s.state === 'ready') a.stopSandboxes.push({ id: s.id, reason });
    a.removeSandboxes.push({ id: s.id, reason });
  }
}

function nextAttempt(containers: ObservedContainer[], name: string): number {
  let max = -1;
  for (const c of containers) if (c.name === name) max = Math.max(max, c.attempt);
  return max + 1;
}

export function computePodActions(desired: edge.EdgePodSpec | undefined, observed: ObservedPod, ctx: ActionContext): PodActions {
  const key = podKeyString(observed.key);
  const a = emptyActions(key, desired?.uid ?? '');

  if (!desired) {
    dropSandboxes(a, observed, observed.sandboxes, 'pod no longer desired');
    return a;
  }
  if (desired.deleting) {
    dropSandboxes(a, observed, observed.sandboxes, 'pod deleted', gracePeriodSec(desired));
    return a;
  }

  const own = observed.sandboxes.filter((s) => s.uid === desired.uid);
  const foreign = observed.sandboxes.filter((s) => s.uid !== desired.uid);
  dropSandboxes(a, observed, foreign, 'sandbox of a previous pod UID');

  const stop = ctx.evicted ? 'evicted' : pastActiveDeadline(desired, observed, ctx.nowMs) ? 'active deadline exceeded' : '';
  if (stop) {
    // Like the kubelet's activeDeadlineHandler and eviction manager: kill (an eviction with grace 0, as the kubelet's
    // for local storage), keep the sandboxes (and so the start time) until deletion.
    const ids = new Set(own.map((s) => s.id));
    for (const c of observed.containers) {
      if (ids.has(c.sandboxId) && isLive(c)) {
        a.killContainers.push({
          id: c.id,
          podUid: c.podUid,
          name: c.name,
          gracePeriodSec: ctx.evicted ? 0 : gracePeriodSec(desired),
          reason: stop,
        });
      }
    }
    for (const s of own) if (s.state === 'ready') a.stopSandboxes.push({ id: s.id, reason: stop });
    return a;
  }
  const deadline = activeDeadlineMs(desired, own);
  if (deadline > ctx.nowMs) a.deadlineAtMs = deadline;

  const wantHash = sandboxHash(desired);
  const newest = own[0];
  const current = newest && newest.state === 'ready' && newest.configHash === wantHash ? newest : undefined;
  const stale = own.filter((s) => s !== current);
  const ownIds = new Set(own.map((s) => s.id));
  const ownContainers = observed.containers.filter((c) => ownIds.has(c.sandboxId));
  const grace = gracePeriodSec(desired);

  if (!current) {
    for (const s of stale) {
      for (const c of ownContainers) {
        if (c.sandboxId === s.id && isLive(c))
          a.killContainers.push({ id: c.id, podUid: c.podUid, name: c.name, gracePeriodSec: grace, reason: 'sandbox replaced' });
      }
      if (s.state === 'ready')
        a.stopSandboxes.push({ id: s.id, reason: newest?.configHash !== wantHash ? 'sandbox spec changed' : 'sandbox replaced' });
    }
    if (podIsDone(desired, ownContainers)) return a;
    // Like the kubelet: a restartPolicy Never pod whose containers have run is not given a new sandbox.
    if (desired.restartPolicy === edge.RestartPolicy.NEVER && ownContainers.length > 0) return a;

    const attempt = own.length === 0 ? 0 : Math.max(...own.map((s) => s.attempt)) + 1;
    a.createSandbox = {
      attempt,
      reason: own.length === 0 ? 'no sandbox' : newest?.configHash !== wantHash ? 'sandbox spec changed' : 'sandbox not ready',
    };
    const first =
      desired.initContainers.length > 0
        ? [{ spec: desired.initContainers[0]!, init: true }]
        : desired.containers.map((spec) => ({ spec, init: false }));
    for (const { spec, init } of first) {
      const prev = byName(ownContainers, spec.name)[0];
      a.startContainers.push({
        name: spec.name,
        init,
        attempt: nextAttempt(ownContainers, spec.name),
        restartCount: prev ? prev.restartCount + 1 : 0,
        reason: 'new sandbox',
      });
    }
    return a;
  }

  a.sandbox = { id: current.id, attempt: current.attempt };
  dropSandboxes(a, observed, stale, 'stale sandbox of this pod', grace);
  const inCurrent = ownContainers.filter((c) => c.sandboxId === current.id);

  const known = new Set(allContainers(desired).map((c) => c.name));
  for (const c of inCurrent) {
    if (known.has(c.name)) continue;
    if (isLive(c))
      a.killContainers.push({ id: c.id, podUid: c.podUid, name: c.name, gracePeriodSec: grace, reason: 'container not in spec' });
    a.removeContainers.push({ id: c.id, reason: 'container not in spec' });
  }

  /**
   * Restarts a container unless the kubelet's doBackOff holds it back: the newest exited attempt of the name
   * (`exited`) finished less than the key's current backoff ago. Without an exited attempt there is no backoff.
   */
  const restart = (
    spec: edge.EdgeContainer,
    init: boolean,
    latest: ObservedContainer,
    exited: ObservedContainer | undefined,
    reason: string,
  ): void => {
    const key = backoffKey(desired, spec);
    if (exited && ctx.backoff.isInBackOffSince(key, exited.finishedAtMs, ctx.nowMs)) {
      const delay = ctx.backoff.get(key);
      a.backoff.push({
        name: spec.name,
        restartCount: latest.restartCount,
        untilMs: exited.finishedAtMs + delay,
        message: crashLoopMessage(desired, spec.name, delay),
      });
      return;
    }
    a.startContainers.push({
      name: spec.name,
      init,
      attempt: nextAttempt(ownContainers, spec.name),
      restartCount: latest.restartCount + 1,
      reason,
      ...(exited ? { backoff: { key, sinceMs: exited.finishedAtMs } } : {}),
    });
  };

  /** Decides for one container and says where it stands (init containers gate the next one on "succeeded"). */
  const handle = (spec: edge.EdgeContainer, init: boolean): 'running' | 'succeeded' | 'pending' | 'failed' => {
    const list = byName(inCurrent, spec.name);
    const [latest, previous, ...older] = list;
    for (const c of older) {
      if (!isLive(c)) a.removeContainers.push({ id: c.id, reason: 'old attempt' });
    }
    if (previous && isLive(previous)) {
      a.killContainers.push({
        id: previous.id,
        podUid: previous.podUid,
        name: previous.name,
        gracePeriodSec: grace,
        reason: 'superseded attempt',
      });
    }
    if (!latest) {
      const before = byName(ownContainers, spec.name)[0]; // from a replaced sandbox, if any
      const restartCount = before ? before.restartCount + 1 : 0;
      a.startContainers.push({
        name: spec.name,
        init,
        attempt: nextAttempt(ownContainers, spec.name),
        restartCount,
        reason: 'not started',
      });
      return 'pending';
    }
    switch (latest.state) {
      case 'running':
        if (latest.hash !== containerHash(spec)) {
          a.killContainers.push({ id: latest.id, podUid: latest.podUid, name: latest.name, gracePeriodSec: grace, reason: 'spec changed' });
          a.startContainers.push({
            name: spec.name,
            init,
            attempt: nextAttempt(ownContainers, spec.name),
            restartCount: latest.restartCount + 1,
            reason: 'spec changed',
          });
          return 'pending';
        }
        if (ctx.probeFailures?.has(latest.id)) {
          // Like the kubelet's computePodActions: kill with the probe's grace period (or the pod's), and restart
          // in the same sync unless restartPolicy is Never; the restart goes through the backoff like any other.
          const probe = ctx.probeFailures.get(latest.id)!;
          const p = probe === 'liveness' ? spec.livenessProbe : spec.startupProbe;
          const probeGrace = p && p.terminationGracePeriodSeconds > 0n ? Number(p.terminationGracePeriodSeconds) : grace;
          const why = `Container ${spec.name} failed ${probe} probe`;
          a.killContainers.push({ id: latest.id, podUid: latest.podUid, name: latest.name, gracePeriodSec: probeGrace, reason: why });
          if (desired.restartPolicy !== edge.RestartPolicy.NEVER) {
            restart(
              spec,
              init,
              latest,
              byName(ownContainers, spec.name).find((c) => c.state === 'exited'),
              `${why}, will be restarted`,
            );
          }
          return 'pending';
        }
        return 'running';
      case 'created':
        // Created but never started (e.g. the agent stopped in between): replace it.
        a.removeContainers.push({ id: latest.id, reason: 'created but not started' });
        a.startContainers.push({
          name: spec.name,
          init,
          attempt: nextAttempt(ownContainers, spec.name),
          restartCount: latest.restartCount,
          reason: 'created but not started',
        });
        return 'pending';
      case 'unknown':
        a.killContainers.push({ id: latest.id, podUid: latest.podUid, name: latest.name, gracePeriodSec: grace, reason: 'state unknown' });
        a.removeContainers.push({ id: latest.id, reason: 'state unknown' });
        a.startContainers.push({
          name: spec.name,
          init,
          attempt: nextAttempt(ownContainers, spec.name),
          restartCount: latest.restartCount + 1,
          reason: 'state unknown',
        });
        return 'pending';
      case 'exited': {
        if (init && latest.exitCode === 0) return 'succeeded';
        if (!init && !shouldRestart(desired.restartPolicy, latest.exitCode)) return latest.exitCode === 0 ? 'succeeded' : 'failed';
        if (init && !shouldRestart(desired.restartPolicy, latest.exitCode)) return 'failed';
        restart(spec, init, latest, latest, `exited with ${latest.exitCode}`);
        return 'pending';
      }
    }
  };

  // As the kubelet: ephemeral containers may start before initialization is complete, and each starts only while the
  // pod has no container of its name (in any of its sandboxes): never restarted, whatever the restartPolicy.
  for (const spec of desired.ephemeralContainers) {
    if (byName(ownContainers, spec.name).length > 0) continue;
    const target = spec.targetContainerName
      ? { name: spec.targetContainerName, id: byName(inCurrent, spec.targetContainerName)[0]?.id ?? '' }
      : undefined;
    a.startContainers.push({
      name: spec.name,
      init: false,
      ephemeral: true,
      attempt: 0,
      restartCount: 0,
      reason: 'ephemeral container added',
      ...(target ? { target } : {}),
    });
  }

  for (const spec of desired.initContainers) {
    const r = handle(spec, true);
    if (r === 'failed') {
      a.stopSandboxes.push({ id: current.id, reason: 'init container failed' });
      a.startContainers = a.startContainers.filter((s) => !s.ephemeral); // nothing starts in a sandbox being stopped
      return a;
    }
    if (r !== 'succeeded') return a;
  }
  for (const spec of desired.containers) handle(spec, false);
  if (podIsDone(desired, inCurrent)) {
    a.stopSandboxes.push({ id: current.id, reason: 'pod completed' });
    a.startContainers = a.startContainers.filter((s) => !s.ephemeral); // nothing starts in a sandbox being stopped
  }
  return a;
}
