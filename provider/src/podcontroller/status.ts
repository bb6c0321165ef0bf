/**
 * Pure mapping of an agent's PodStatusReport onto corev1.PodStatus, keeping what the API already holds where the
 * report says nothing new (condition transition times, PodScheduled) and the conditions other writers own (a readiness
 * gate's condition, written through pods/status). Ready is the kubelet's GeneratePodReadyCondition: containers ready
 * and every readiness gate's condition True.
 */
import { edge } from '@edgefarm/proto';
import type { V1ContainerState, V1ContainerStatus, V1Pod, V1PodCondition, V1PodStatus } from '@kubernetes/client-node';

const PHASE: Record<number, string> = {
  [edge.PodPhase.PENDING]: 'Pending',
  [edge.PodPhase.RUNNING]: 'Running',
  [edge.PodPhase.SUCCEEDED]: 'Succeeded',
  [edge.PodPhase.FAILED]: 'Failed',
  [edge.PodPhase.UNKNOWN]: 'Unknown',
};

/**
 * A time as the API keeps it: metav1.Time is RFC 3339 with whole seconds. A finer time never compares equal to what
 * the API gives back, so every report would look like a change and be written again (an endless status write loop).
 */
export const apiTime = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

const ms = (v: bigint): Date | undefined => (v > 0n ? apiTime(new Date(Number(v))) : undefined);

function state(s: edge.ContainerState | undefined): V1ContainerState {
  switch (s?.state.case) {
    case 'running':
      return { running: { startedAt: ms(s.state.value.startedAtMs) } };
    case 'terminated': {
      const t = s.state.value;
      return {
        terminated: {
          exitCode: t.exitCode,
          signal: t.signal || undefined,
          reason: t.reason || undefined,
          message: t.message || undefined,
          startedAt: ms(t.startedAtMs),
          finishedAt: ms(t.finishedAtMs),
          containerID: t.containerId || undefined,
        },
      };
    }
    case 'waiting':
      return { waiting: { reason: s.state.value.reason || undefined, message: s.state.value.message || undefined } };
    default:
      return { waiting: { reason: 'ContainerCreating' } };
  }
}

function containerStatus(c: edge.ContainerStatus): V1ContainerStatus {
  const last = c.lastState?.state.case ? state(c.lastState) : {};
  return {
    name: c.name,
    image: c.image,
    imageID: c.imageId,
    containerID: c.containerId || undefined,
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
    state: state(c.state),
    lastState: last,
  };
}

/**
 * An ephemeral container's status as the kubelet writes it: never ready, no `started` (the prober sets it for regular
 * and init containers only), never restarted.
 */
function ephemeralContainerStatus(c: edge.ContainerStatus): V1ContainerStatus {
  const { started: _started, ...rest } = containerStatus(c);
  return { ...rest, ready: false };
}

function condition(
  type: string,
  ok: boolean,
  prev: V1PodCondition[] | undefined,
  now: Date,
  reason?: string,
  message?: string,
): V1PodCondition {
  const status = ok ? 'True' : 'False';
  const old = prev?.find((c) => c.type === type);
  const unchanged = old?.status === status;
  return {
    type,
    status,
    lastTransitionTime: unchanged && old?.lastTransitionTime ? old.lastTransitionTime : now,
    reason: ok ? undefined : reason,
    message: ok ? undefined : message,
  };
}

/** The condition types the node owns; every other one in the pod's status belongs to another writer and is kept. */
const NODE_CONDITIONS = new Set(['Initialized', 'Ready', 'ContainersReady', 'PodScheduled']);

/**
 * Why the readiness gates keep the pod from Ready, in the kubelet's words (generatePodReadyConditionForReadinessGates),
 * or undefined when every gate's condition is True.
 */
export function readinessGatesNotReady(pod: V1Pod): string | undefined {
  const unready: string[] = [];
  for (const gate of pod.spec?.readinessGates ?? []) {
    const c = pod.status?.conditions?.find((x) => x.type === gate.conditionType);
    if (!c) unready.push(`corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`);
    else if (c.status !== 'True') unready.push(`the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`);
  }
  return unready.length ? unready.join(', ') : undefined;
}

/**
 * The Initialized condition as the kubelet's GeneratePodInitializedCondition (pkg/kubelet/status/generate.go) writes
 * it: False/ContainersNotInitialized with "containers with incomplete status: [init1 init2]" (Go's %s of a string
 * slice) while an init container has not succeeded (a sidecar: not started), True/PodCompleted for a Succeeded pod,
 * True once any app container has run (init containers being re-run do not un-initialize the pod).
 */
function initializedCondition(pod: V1Pod, report: edge.PodStatusReport, prev: V1PodCondition[] | undefined, now: Date): V1PodCondition {
  const specs = pod.spec?.initContainers ?? report.initContainerStatuses.map((c) => ({ name: c.name, restartPolicy: undefined }));
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const spec of specs) {
    const s = report.initContainerStatuses.find((c) => c.name === spec.name);
    if (!s) unknown.push(spec.name);
    else if (spec.restartPolicy === 'Always') {
      if (!s.started) incomplete.push(spec.name);
    } else if (s.state?.state.case !== 'terminated' || s.state.state.value.exitCode !== 0) incomplete.push(spec.name);
  }
  if (report.phase === edge.PodPhase.SUCCEEDED && unknown.length === 0) {
    return { ...condition('Initialized', true, prev, now), reason: 'PodCompleted' };
  }
  const appNames = new Set((pod.spec?.containers ?? []).map((c) => c.name));
  const appStarted = report.containerStatuses.some(
    (c) => appNames.has(c.name) && (c.state?.state.case === 'running' || c.state?.state.case === 'terminated'),
  );
  if (appStarted) return condition('Initialized', true, prev, now);
  const messages: string[] = [];
  if (unknown.length > 0) messages.push(`containers with unknown status: [${unknown.join(' ')}]`);
  if (incomplete.length > 0) messages.push(`containers with incomplete status: [${incomplete.join(' ')}]`);
  if (messages.length === 0) return condition('Initialized', true, prev, now);
  return condition('Initialized', false, prev, now, 'ContainersNotInitialized', messages.join(', '));
}

/** The status the pod should have given `report`. `hostIP` is the node's InternalIP. */
export function podStatusFromReport(pod: V1Pod, report: edge.PodStatusReport, hostIP: string | undefined, at: Date): V1PodStatus {
  const now = apiTime(at);
  const prev = pod.status?.conditions;
  const containers = report.containerStatuses.map(containerStatus);
  const inits = report.initContainerStatuses.map(containerStatus);
  const expected = pod.spec?.containers.length ?? 0;
  const containersReady = containers.length === expected && containers.every((c) => c.ready);
  const unready = (pod.spec?.containers ?? []).map((c) => c.name).filter((n) => !containers.find((c) => c.name === n)?.ready);
  const containersMessage = `containers with unready status: [${unready.join(' ')}]`;
  const gates = containersReady ? readinessGatesNotReady(pod) : undefined;
  const scheduled = prev?.find((c) => c.type === 'PodScheduled');
  return {
    phase: PHASE[report.phase] ?? 'Pending',
    reason: report.reason || undefined,
    message: report.message || undefined,
    hostIP,
    hostIPs: hostIP ? [{ ip: hostIP }] : undefined,
    podIP: report.podIp || undefined,
    podIPs: report.podIps.length ? report.podIps.map((ip) => ({ ip })) : report.podIp ? [{ ip: report.podIp }] : undefined,
    startTime: ms(report.startTimeMs) ?? pod.status?.startTime,
    qosClass: pod.status?.qosClass,
    conditions: [
      initializedCondition(pod, report, prev, now),
      gates === undefined
        ? condition('Ready', containersReady, prev, now, 'ContainersNotReady', containersMessage)
        : condition('Ready', false, prev, now, 'ReadinessGatesNotReady', gates),
      condition('ContainersReady', containersReady, prev, now, 'ContainersNotReady', containersMessage),
      scheduled ?? { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
      ...(prev ?? []).filter((c) => !NODE_CONDITIONS.has(c.type)),
    ],
    containerStatuses: containers,
    initContainerStatuses: inits.length ? inits : undefined,
    ...(report.ephemeralContainerStatuses.length > 0
      ? { ephemeralContainerStatuses: report.ephemeralContainerStatuses.map(ephemeralContainerStatus) }
      : {}),
  };
}

/** The time fields of a PodStatus (metav1.Time), wherever they nest. */
const TIME_KEYS = new Set(['startTime', 'lastProbeTime', 'lastTransitionTime', 'startedAt', 'finishedAt']);

/**
 * True when two statuses differ in anything the API keeps: times compare in whole seconds whether they are Dates
 * (a typed list, or computed here) or RFC 3339 strings (client-node's watch hands objects over as parsed JSON), null
 * is absent. Comparing a Date with its string said "differs" for every pod the watch had updated, so each status
 * change was followed by a second PUT that the apiserver found to be a no-op. (A replacer sees a Date already turned
 * into its string by toJSON; the holder `this[k]` still has the Date.)
 */
export function statusDiffers(a: V1PodStatus | undefined, b: V1PodStatus): boolean {
  const replacer = function (this: Record<string, unknown>, k: string, v: unknown): unknown {
    const raw = this[k];
    if (raw instanceof Date) return Math.floor(raw.getTime() / 1000);
    if (typeof raw === 'string' && TIME_KEYS.has(k)) {
      const t = Date.parse(raw);
      return Number.isNaN(t) ? raw : Math.floor(t / 1000);
    }
    return v === null ? undefined : v;
  };
  const norm = (s: V1PodStatus | undefined) => JSON.stringify(s ?? {}, replacer);
  return norm(a) !== norm(b);
}
