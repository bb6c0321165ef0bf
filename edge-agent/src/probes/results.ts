/**
 * The decision rules of one probe worker, pure, as the kubelet's prober worker (pkg/kubelet/prober/worker.go
 * doProbe) has them. A worker step is: beforeProbe (new container? on hold? not running? initial delay? gated by the
 * startup probe?) -> run the probe -> afterProbe (count equal results in a row; publish a result once the success or
 * failure threshold is reached; a failed liveness or startup probe puts the worker on hold until a new container).
 */
import type { edge } from '@edgefarm/proto';
import type { ContainerState } from '../runtime/types.js';

export type ProbeKind = 'liveness' | 'readiness' | 'startup';
/** 'unknown': the probe could not be run (an error, not a verdict); it is thrown away like the kubelet does. */
export type ProbeResult = 'success' | 'failure' | 'unknown';

/** What a worker's result starts as for a new container (the kubelet's initialValue). */
export const INITIAL_RESULT: Readonly<Record<ProbeKind, ProbeResult>> = { liveness: 'success', readiness: 'failure', startup: 'unknown' };

export interface WorkerState {
  /** The container the worker probes ('' before the first one). */
  containerId: string;
  lastResult: ProbeResult;
  /** How many times in a row lastResult came back. */
  resultRun: number;
  /** After a liveness/startup failure: no probing until a new container id appears. */
  onHold: boolean;
}

export const initialWorkerState = (kind: ProbeKind): WorkerState => ({
  containerId: '',
  lastResult: INITIAL_RESULT[kind],
  resultRun: 0,
  onHold: false,
});

/** The newest container of the worker's name in the pod's current sandbox, as the worker sees it. */
export interface ContainerSnapshot {
  id: string;
  state: ContainerState;
  startedAtMs: number;
}

export interface BeforeProbeInput {
  kind: ProbeKind;
  probe: edge.Probe;
  container: ContainerSnapshot | undefined;
  /** containerStatus.started: the startup probe succeeded (or there is none). */
  started: boolean;
  restartPolicyNever: boolean;
  /** The pod is being deleted. */
  deleting: boolean;
  nowMs: number;
}

export interface BeforeProbeDecision {
  state: WorkerState;
  /** Run the probe now. */
  probe: boolean;
  /** Result to record for state.containerId (null: leave the cache as it is). */
  set: ProbeResult | null;
  /** A previous container whose result is dropped from the cache. */
  remove: string | null;
  /** The worker ends (the container will not run again, or the pod is shutting down). */
  stop: boolean;
}

export function beforeProbe(prev: WorkerState, input: BeforeProbeInput): BeforeProbeDecision {
  let state = prev;
  const out = (d: Partial<BeforeProbeDecision>): BeforeProbeDecision => ({
    state,
    probe: false,
    set: null,
    remove: null,
    stop: false,
    ...d,
  });
  const c = input.container;
  if (!c) return out({}); // not created yet: keep waiting
  let remove: string | null = null;
  let set: ProbeResult | null = null;
  if (c.id !== state.containerId) {
    remove = state.containerId || null;
    state = { ...state, containerId: c.id, onHold: false };
    set = INITIAL_RESULT[input.kind];
  }
  if (state.onHold) return out({ remove, set });
  if (c.state !== 'running') {
    // Not running (created, exited, unknown): a failure for it; the worker ends if nothing will restart it.
    return out({ remove, set: 'failure', stop: c.state === 'exited' && input.restartPolicyNever });
  }
  if (input.deleting && (input.kind === 'liveness' || input.kind === 'startup')) {
    return out({ remove, set: 'success', stop: true }); // a quiet shutdown
  }
  if (Math.trunc((input.nowMs - c.startedAtMs) / 1000) < input.probe.initialDelaySeconds) return out({ remove, set });
  if (input.started ? input.kind === 'startup' : input.kind !== 'startup') return out({ remove, set });
  return out({ remove, set, probe: true });
}

/** Counts a probe's result; returns the result to publish once a threshold is reached (null: keep the current one). */
export function afterProbe(
  prev: WorkerState,
  kind: ProbeKind,
  probe: edge.Probe,
  result: ProbeResult,
): { state: WorkerState; set: ProbeResult | null } {
  if (result === 'unknown') return { state: prev, set: null }; // a prober error: the result is thrown away
  let state: WorkerState =
    prev.lastResult === result ? { ...prev, resultRun: prev.resultRun + 1 } : { ...prev, lastResult: result, resultRun: 1 };
  const failureThreshold = Math.max(1, probe.failureThreshold);
  const successThreshold = Math.max(1, probe.successThreshold);
  if ((result === 'failure' && state.resultRun < failureThreshold) || (result === 'success' && state.resultRun < successThreshold)) {
    return { state, set: null };
  }
  if ((kind === 'liveness' || kind === 'startup') && result === 'failure') {
    // The container will be restarted: stop probing it until a new container id shows up.
    state = { ...state, onHold: true, resultRun: 0 };
  }
  return { state, set: result };
}
