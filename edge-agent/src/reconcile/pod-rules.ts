/**
 * The kubelet's pod-level rules that both the sync's decision (actions.ts) and the status (status/build.ts) apply:
 * restart policy, a pod's completion, and activeDeadlineSeconds counted from the pod's start at the edge. Pure.
 */
import { edge } from '@edgefarm/proto';
import type { ObservedContainer, ObservedPod, ObservedSandbox } from '../runtime/types.js';

/** Running, or in a state the runtime cannot tell (treated as running: it may still be). */
export const isLive = (c: ObservedContainer): boolean => c.state === 'running' || c.state === 'unknown';

/** Whether a container that exited with `exitCode` is started again under the pod's restartPolicy. */
export function shouldRestart(policy: edge.RestartPolicy, exitCode: number): boolean {
  if (policy === edge.RestartPolicy.NEVER) return false;
  if (policy === edge.RestartPolicy.ON_FAILURE) return exitCode !== 0;
  return true; // Always, and unspecified (the Kubernetes default)
}

/** The attempts of one container name, newest first (the runtime's order already; kept robust). */
export function byName(containers: ObservedContainer[], name: string): ObservedContainer[] {
  return containers.filter((c) => c.name === name).sort((x, y) => y.attempt - x.attempt || y.createdAtMs - x.createdAtMs);
}

/**
 * True when the pod has run to completion and nothing will restart: every main container exited and the policy
 * says no restart, or an init container failed under restartPolicy Never.
 */
export function podIsDone(desired: edge.EdgePodSpec, containers: ObservedContainer[]): boolean {
  if (desired.restartPolicy === edge.RestartPolicy.ALWAYS || desired.restartPolicy === edge.RestartPolicy.UNSPECIFIED) {
    return false;
  }
  for (const ic of desired.initContainers) {
    const latest = byName(containers, ic.name)[0];
    if (latest?.state === 'exited' && latest.exitCode !== 0 && !shouldRestart(desired.restartPolicy, latest.exitCode)) return true;
  }
  return desired.containers.every((c) => {
    const latest = byName(containers, c.name)[0];
    return latest?.state === 'exited' && !shouldRestart(desired.restartPolicy, latest.exitCode);
  });
}

/** How the kubelet's activeDeadlineHandler words a pod it stopped; the pod is reported Failed with these. */
export const DEADLINE_EXCEEDED = {
  reason: 'DeadlineExceeded',
  message: 'Pod was active on the node longer than the specified deadline',
} as const;

/**
 * When the pod started at the edge: the creation of its oldest sandbox (read back from the runtime, so an agent
 * restart keeps it; the status reports it as start_time_ms). 0 before the first sandbox.
 */
export function podStartMs(desired: edge.EdgePodSpec, sandboxes: readonly ObservedSandbox[]): number {
  const own = sandboxes.filter((s) => s.uid === desired.uid);
  return own.length > 0 ? Math.min(...own.map((s) => s.createdAtMs)) : 0;
}

/** When the pod's activeDeadlineSeconds runs out (ms since the epoch), or 0 when it has none or has not started. */
export function activeDeadlineMs(desired: edge.EdgePodSpec, sandboxes: readonly ObservedSandbox[]): number {
  if (desired.activeDeadlineSeconds <= 0n) return 0;
  const start = podStartMs(desired, sandboxes);
  return start > 0 ? start + Number(desired.activeDeadlineSeconds) * 1000 : 0;
}

/**
 * True when the pod has been active longer than its activeDeadlineSeconds (now - start >= deadline): it is stopped,
 * nothing of it starts again, and it is reported Failed/DeadlineExceeded. A pod whose containers had all finished
 * before the deadline ran to completion and keeps its own phase.
 */
export function pastActiveDeadline(desired: edge.EdgePodSpec, observed: ObservedPod, nowMs: number): boolean {
  const at = activeDeadlineMs(desired, observed.sandboxes);
  if (at === 0 || nowMs < at) return false;
  const ownIds = new Set(observed.sandboxes.filter((s) => s.uid === desired.uid).map((s) => s.id));
  const containers = observed.containers.filter((c) => ownIds.has(c.sandboxId));
  const finishedBefore = containers.every((c) => !isLive(c) && c.finishedAtMs < at);
  return !(containers.length > 0 && finishedBefore && podIsDone(desired, containers));
}
