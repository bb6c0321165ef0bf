/**
 * Pure construction of a PodStatusReport from the desired spec and the observed runtime state, following the
 * kubelet's rules for phase and container states. Generation and observed_at are left 0: the reporter stamps them.
 */
import { create, edge } from '@edgefarm/proto';
import { DEADLINE_EXCEEDED, pastActiveDeadline, podStartMs, shouldRestart } from '../reconcile/pod-rules.js';
import type { BackoffWait } from '../reconcile/actions.js';
import type { ContainerFailure } from '../reconcile/executor.js';
import type { ObservedContainer, ObservedPod } from '../runtime/types.js';

export interface StatusContext {
  /** Pod IP of hostNetwork pods. */
  nodeIp: string;
  /** Prefix of container ids in reports, as the kubelet's `<runtime>://<id>`. */
  runtimeName: string;
  /** Why containers could not be started in the last sync. */
  containerFailures: ReadonlyMap<string, ContainerFailure>;
  sandboxFailure: ContainerFailure | null;
  backoff: readonly BackoffWait[];
  nowMs: number;
  /**
   * Probe results of running containers by container id (the ProbeManager's): started gates on the startup probe,
   * ready on the readiness probe. A running container without an entry is started and ready (it has no probes).
   */
  probes?: ReadonlyMap<string, { started: boolean; ready: boolean }>;
  /** The node evicted the pod (eviction/): it is reported Failed with this reason and message. */
  evicted?: { reason: string; message: string };
}

export interface PodRef {
  uid: string;
  namespace: string;
  name: string;
}

type State = edge.ContainerState;

const waiting = (reason: string, message = ''): State =>
  create(edge.ContainerStateSchema, { state: { case: 'waiting', value: { reason, message } } });

function terminated(c: ObservedContainer, runtimeName: string): State {
  return create(edge.ContainerStateSchema, {
    state: {
      case: 'terminated',
      value: {
        exitCode: c.exitCode,
        reason: c.reason || (c.exitCode === 0 ? 'Completed' : 'Error'),
        message: c.message,
        startedAtMs: BigInt(c.startedAtMs),
        finishedAtMs: BigInt(c.finishedAtMs),
        containerId: `${runtimeName}://${c.id}`,
      },
    },
  });
}

function containerStatus(
  spec: edge.EdgeContainer,
  history: ObservedContainer[],
  ctx: StatusContext,
  pendingReason: string,
  kind: 'regular' | 'init' | 'ephemeral' = 'regular',
): edge.ContainerStatus {
  const init = kind === 'init';
  const [latest, previous] = history;
  const failure = ctx.containerFailures.get(spec.name);
  const backoff = ctx.backoff.find((b) => b.name === spec.name);
  let state: State;
  let last: State | undefined = previous?.state === 'exited' ? terminated(previous, ctx.runtimeName) : undefined;

  if (!latest) {
    state = failure ? waiting(failure.reason, failure.message) : waiting(pendingReason);
  } else if (latest.state === 'running') {
    state = create(edge.ContainerStateSchema, { state: { case: 'running', value: { startedAtMs: BigInt(latest.startedAtMs) } } });
  } else if (latest.state === 'exited') {
    if (backoff || failure) {
      last = terminated(latest, ctx.runtimeName);
      state = failure ? waiting(failure.reason, failure.message) : waiting('CrashLoopBackOff', backoff!.message);
    } else {
      state = terminated(latest, ctx.runtimeName);
    }
  } else if (latest.state === 'created') {
    state = failure ? waiting(failure.reason, failure.message) : waiting('ContainerCreating');
  } else {
    state = waiting('ContainerStatusUnknown', 'the container runtime cannot tell the container state');
  }

  const running = latest?.state === 'running';
  const probed = running ? ctx.probes?.get(latest.id) : undefined;
  // Like the prober manager's UpdatePodStatus: an init container is Ready once it has terminated with exit code 0.
  const succeeded = state.state.case === 'terminated' && state.state.value.exitCode === 0;
  return create(edge.ContainerStatusSchema, {
    name: spec.name,
    image: spec.image,
    imageId: latest?.imageRef ?? '',
    containerId: latest ? `${ctx.runtimeName}://${latest.id}` : '',
    // An ephemeral container is never ready (the kubelet's prober leaves it out).
    ready: kind === 'ephemeral' ? false : init ? succeeded : running && (probed?.ready ?? true),
    started: running && (probed?.started ?? true),
    restartCount: latest?.restartCount ?? 0,
    state,
    lastState: last,
  });
}

/** The kubelet's getPhase, for main containers after init containers are done. */
function mainPhase(statuses: edge.ContainerStatus[], policy: edge.RestartPolicy): edge.PodPhase {
  let waitingCount = 0;
  let running = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    switch (s.state?.state.case) {
      case 'running':
        running++;
        break;
      case 'terminated':
        stopped++;
        if (s.state.state.value.exitCode === 0) succeeded++;
        break;
      case 'waiting':
        if (s.lastState?.state.case === 'terminated') stopped++;
        else waitingCount++;
        break;
      default:
        waitingCount++;
    }
  }
  if (waitingCount > 0) return edge.PodPhase.PENDING;
  if (running > 0) return edge.PodPhase.RUNNING;
  if (stopped > 0) {
    if (policy === edge.RestartPolicy.ALWAYS || policy === edge.RestartPolicy.UNSPECIFIED) return edge.PodPhase.RUNNING;
    if (stopped === succeeded) return edge.PodPhase.SUCCEEDED;
    if (policy === edge.RestartPolicy.NEVER) return edge.PodPhase.FAILED;
    return edge.PodPhase.RUNNING; // OnFailure: a failed container is being restarted
  }
  return edge.PodPhase.PENDING;
}

export function buildPodStatus(desired: edge.EdgePodSpec, observed: ObservedPod, ctx: StatusContext): edge.PodStatusReport {
  const own = observed.sandboxes.filter((s) => s.uid === desired.uid);
  const current = own[0];
  const ownIds = new Set(own.map((s) => s.id));
  const containers = observed.containers.filter((c) => ownIds.has(c.sandboxId));
  const history = (name: string): ObservedContainer[] =>
    containers.filter((c) => c.name === name).sort((x, y) => y.attempt - x.attempt || y.createdAtMs - x.createdAtMs);

  const initStatuses = desired.initContainers.map((c) => containerStatus(c, history(c.name), ctx, 'PodInitializing', 'init'));
  let initDone = true;
  let initFailed = false;
  for (const s of initStatuses) {
    const t = s.state?.state.case === 'terminated' ? s.state.state.value : undefined;
    if (t?.exitCode === 0) continue;
    initDone = false;
    if (t && !shouldRestart(desired.restartPolicy, t.exitCode)) initFailed = true;
    break;
  }
  const statuses = desired.containers.map((c) =>
    containerStatus(c, history(c.name), ctx, initDone ? 'ContainerCreating' : 'PodInitializing'),
  );

  // Ephemeral containers count in neither the phase nor readiness; one not started yet waits as the app containers do.
  const ephemeralStatuses = desired.ephemeralContainers.map((c) =>
    containerStatus(c, history(c.name), ctx, initDone ? 'ContainerCreating' : 'PodInitializing', 'ephemeral'),
  );

  let phase = initFailed ? edge.PodPhase.FAILED : initDone ? mainPhase(statuses, desired.restartPolicy) : edge.PodPhase.PENDING;
  let reason = '';
  let message = '';
  if (ctx.sandboxFailure && !current) {
    phase = edge.PodPhase.PENDING;
    reason = ctx.sandboxFailure.reason;
    message = ctx.sandboxFailure.message;
  }
  if (pastActiveDeadline(desired, observed, ctx.nowMs)) {
    phase = edge.PodPhase.FAILED;
    ({ reason, message } = DEADLINE_EXCEEDED);
  }
  if (ctx.evicted) {
    phase = edge.PodPhase.FAILED;
    ({ reason, message } = ctx.evicted);
  }
  const podIp = desired.hostNetwork ? (current ? ctx.nodeIp : '') : (current?.ip ?? '');
  const startMs = podStartMs(desired, observed.sandboxes);

  return create(edge.PodStatusReportSchema, {
    uid: desired.uid,
    namespace: desired.namespace,
    name: desired.name,
    observedResourceVersion: desired.resourceVersion,
    phase,
    reason,
    message,
    podIp,
    podIps: podIp ? [podIp] : [],
    startTimeMs: BigInt(startMs),
    containerStatuses: statuses,
    initContainerStatuses: initStatuses,
    ephemeralContainerStatuses: ephemeralStatuses,
    removed: false,
  });
}

/** The final report of a pod of which nothing remains at the edge; it keeps the last phase reported, if any. */
export function buildRemovedStatus(
  pod: PodRef,
  observedResourceVersion: string,
  lastPhase = edge.PodPhase.UNSPECIFIED,
): edge.PodStatusReport {
  return create(edge.PodStatusReportSchema, {
    uid: pod.uid,
    namespace: pod.namespace,
    name: pod.name,
    observedResourceVersion,
    phase: lastPhase,
    removed: true,
  });
}
