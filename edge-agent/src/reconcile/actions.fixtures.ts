/**
 * Fixtures of the computePodActions tests (actions.test.ts, actions-restart.test.ts): observed sandboxes and
 * containers of a pod as the runtime reports them, a compact summary of PodActions for table assertions, and the
 * pod most cases start from. Test code only (not built into dist).
 */
import { edge } from '@edgefarm/proto';
import { podSpec } from '@edgefarm/testing';
import { containerHash, sandboxHash } from '../runtime/labels.js';
import type { ObservedContainer, ObservedPod, ObservedSandbox } from '../runtime/types.js';
import type { PodActions } from './actions.js';

/** The clock of every case. */
export const NOW = 1_000_000;

/** A pod named web (uid u1, grace 5 s, one container main). */
export const base = podSpec({ name: 'web', uid: 'u1', terminationGracePeriodSeconds: 5n });

/** The pod's sandbox sb1, ready, created 10 s ago. */
export function sandbox(pod: edge.EdgePodSpec, over: Partial<ObservedSandbox> = {}): ObservedSandbox {
  return {
    id: 'sb1',
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    attempt: 0,
    state: 'ready',
    createdAtMs: NOW - 10_000,
    ip: '10.0.0.2',
    hostNetwork: pod.hostNetwork,
    configHash: sandboxHash(pod),
    resourceVersion: pod.resourceVersion,
    ...over,
  };
}
/** The pod's container `over.name` (default main) c1 in sb1, running for 9 s. */
export function container(pod: edge.EdgePodSpec, over: Partial<ObservedContainer> = {}): ObservedContainer {
  const name = over.name ?? 'main';
  const spec = [...pod.containers, ...pod.initContainers].find((c) => c.name === name);
  return {
    id: 'c1',
    sandboxId: 'sb1',
    podUid: pod.uid,
    name,
    attempt: 0,
    state: 'running',
    hash: spec ? containerHash(spec) : 'x',
    restartCount: 0,
    terminationGracePeriodSec: 7,
    image: spec?.image ?? '',
    imageRef: 'sha256:1',
    createdAtMs: NOW - 9_000,
    startedAtMs: NOW - 9_000,
    finishedAtMs: 0,
    exitCode: 0,
    reason: '',
    message: '',
    ...over,
  };
}
export function observed(pod: edge.EdgePodSpec, sandboxes: ObservedSandbox[], containers: ObservedContainer[]): ObservedPod {
  return { key: { namespace: pod.namespace, name: pod.name }, sandboxes, containers };
}

/** A compact view of PodActions for table assertions. */
export function summary(a: PodActions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (a.killContainers.length) out.kill = a.killContainers.map((k) => `${k.id}@${k.gracePeriodSec}`);
  if (a.stopSandboxes.length) out.stopSandbox = a.stopSandboxes.map((s) => s.id);
  if (a.removeContainers.length) out.removeContainer = a.removeContainers.map((c) => c.id);
  if (a.removeSandboxes.length) out.removeSandbox = a.removeSandboxes.map((s) => s.id);
  if (a.createSandbox) out.createSandbox = a.createSandbox.attempt;
  if (a.startContainers.length)
    out.start = a.startContainers.map((s) => `${s.init ? 'init:' : ''}${s.name}#${s.restartCount}/a${s.attempt}`);
  if (a.backoff.length) out.backoff = a.backoff.map((b) => `${b.name}@${b.untilMs - NOW}`);
  if (a.deadlineAtMs) out.deadlineIn = a.deadlineAtMs - NOW;
  return out;
}
