/**
 * ProbeManager: the kubelet's prober manager at the edge. One worker per (pod UID, container, probe kind), each on
 * its own timer (period_seconds; the first step at once), stepping through the rules of results.ts and keeping the
 * published results in a cache keyed by container id (so a new container starts from the initial value).
 *
 * The manager owns the cache; the reconciler reads it: `failures()` (liveness/startup failed: computePodActions
 * kills and restarts those containers) and `statuses()` (started/ready for the status report). A published result
 * that changes calls `onChange(podKey)`, which queues the pod, so the effect reaches the runtime and the outbox
 * without waiting for the next resync. Workers learn about pods and containers from `sync()`, which the reconciler
 * calls with every observation of a pod; a pod that is gone (or replaced by another UID) loses its workers.
 *
 * Not kept from the kubelet: the random initial delay a restarted kubelet gives its workers, the immediate readiness
 * run on a status update, and prober retries (the kubelet runs a probe that errors up to 3 times in a row).
 */
import { equals } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { ProbeFailure } from '../reconcile/actions.js';
import { Reasons, containerFieldPath, type EventSink } from '../events/recorder.js';
import type { ObservedContainer, ObservedPod } from '../runtime/types.js';
import type { Clock } from '../util/time.js';
import { errorMessage } from '../util/time.js';
import type { Prober } from './prober.js';
import {
  afterProbe,
  beforeProbe,
  initialWorkerState,
  type ContainerSnapshot,
  type ProbeKind,
  type ProbeResult,
  type WorkerState,
} from './results.js';

/** Runs `fn` every `ms`; returns a cancel function. Tests pass one they drive by hand. */
export interface Scheduler {
  every(ms: number, fn: () => void): () => void;
}

export const timerScheduler: Scheduler = {
  every(ms, fn) {
    const first = setTimeout(fn, 0);
    const t = setInterval(fn, ms);
    return () => {
      clearTimeout(first);
      clearInterval(t);
    };
  },
};

export interface ProbeManagerDeps {
  prober: Prober;
  clock: Clock;
  log: Logger;
  /** A published result changed for a container of the pod under `key`. */
  onChange(key: string): void;
  scheduler?: Scheduler;
  /** Kubernetes Events: Unhealthy (Warning) for every failed probe, as the kubelet's prober records it. */
  events?: EventSink;
}

export interface ContainerProbeStatus {
  started: boolean;
  ready: boolean;
}

const KINDS: readonly ProbeKind[] = ['startup', 'liveness', 'readiness'];

function probeOf(c: edge.EdgeContainer, kind: ProbeKind): edge.Probe | undefined {
  const p = kind === 'liveness' ? c.livenessProbe : kind === 'readiness' ? c.readinessProbe : c.startupProbe;
  return p && p.handler.case !== undefined ? p : undefined;
}

interface PodEntry {
  key: string;
  spec: edge.EdgePodSpec;
  podIp: string;
  /** Newest container per name in the pod's current sandbox. */
  containers: Map<string, ContainerSnapshot>;
}

interface Worker {
  id: string;
  uid: string;
  container: edge.EdgeContainer;
  kind: ProbeKind;
  probe: edge.Probe;
  state: WorkerState;
  busy: Promise<void> | undefined;
  stopped: boolean;
  cancel: () => void;
}

/** The newest container per name in the newest sandbox of the pod's UID. */
function currentContainers(spec: edge.EdgePodSpec, observed: ObservedPod): Map<string, ObservedContainer> {
  const current = observed.sandboxes.find((s) => s.uid === spec.uid);
  const out = new Map<string, ObservedContainer>();
  if (!current) return out;
  for (const c of observed.containers) {
    if (c.sandboxId !== current.id) continue;
    const seen = out.get(c.name);
    if (!seen || c.attempt > seen.attempt || (c.attempt === seen.attempt && c.createdAtMs > seen.createdAtMs)) out.set(c.name, c);
  }
  return out;
}

export class ProbeManager {
  private readonly pods = new Map<string, PodEntry>();
  private readonly workers = new Map<string, Worker>();
  private readonly results = new Map<string, Map<ProbeKind, ProbeResult>>();
  private readonly scheduler: Scheduler;
  private started = false;

  constructor(private readonly deps: ProbeManagerDeps) {
    this.scheduler = deps.scheduler ?? timerScheduler;
  }

  /** Starts the timers of workers added so far and of those added later. */
  start(): void {
    this.started = true;
    for (const w of this.workers.values()) this.arm(w);
  }

  /** Stops every worker and waits for probes in flight. */
  async stop(): Promise<void> {
    this.started = false;
    const busy = [...this.workers.values()].flatMap((w) => (w.busy ? [w.busy] : []));
    for (const w of [...this.workers.values()]) this.stopWorker(w);
    await Promise.all(busy);
  }

  /** Worker ids (`<uid>/<container>/<kind>`), for tests and diagnostics. */
  workerIds(): string[] {
    return [...this.workers.keys()];
  }

  /**
   * Tells the manager what a sync of `key` observed: workers for the desired pod's probes are added (or replaced
   * when a probe changed), workers of other UIDs under the key and of probes no longer in the spec are stopped.
   */
  sync(key: string, spec: edge.EdgePodSpec | undefined, observed: ObservedPod, nodeIp: string): void {
    for (const [uid, p] of this.pods) {
      if (p.key === key && uid !== spec?.uid) this.dropPod(uid);
    }
    if (!spec) return;
    const current = observed.sandboxes.find((s) => s.uid === spec.uid);
    const containers = new Map<string, ContainerSnapshot>();
    for (const [name, c] of currentContainers(spec, observed))
      containers.set(name, { id: c.id, state: c.state, startedAtMs: c.startedAtMs });
    const podIp = spec.hostNetwork ? nodeIp : (current?.ip ?? '');
    this.pods.set(spec.uid, { key, spec, podIp, containers });

    const wanted = new Set<string>();
    for (const c of spec.containers) {
      for (const kind of KINDS) {
        const probe = probeOf(c, kind);
        if (!probe) continue;
        const id = `${spec.uid}/${c.name}/${kind}`;
        wanted.add(id);
        const w = this.workers.get(id);
        if (w && equals(edge.ProbeSchema, w.probe, probe)) {
          w.container = c;
          continue;
        }
        if (w) this.stopWorker(w);
        this.addWorker({
          id,
          uid: spec.uid,
          container: c,
          kind,
          probe,
          state: initialWorkerState(kind),
          busy: undefined,
          stopped: false,
          cancel: () => undefined,
        });
      }
    }
    for (const w of [...this.workers.values()]) {
      if (w.uid === spec.uid && !wanted.has(w.id)) this.stopWorker(w);
    }
  }

  /** Running containers to kill for a failed liveness (or startup) probe, by container id. */
  failures(): Map<string, ProbeFailure> {
    const out = new Map<string, ProbeFailure>();
    for (const [id, r] of this.results) {
      if (r.get('liveness') === 'failure') out.set(id, 'liveness');
      else if (r.get('startup') === 'failure') out.set(id, 'startup');
    }
    return out;
  }

  /**
   * started/ready of the pod's running containers that have probes, as the kubelet's UpdatePodStatus: started once
   * the startup probe succeeded (no startup probe: once running); ready once started and the readiness probe
   * succeeded (no readiness probe: once started).
   */
  statuses(spec: edge.EdgePodSpec | undefined, observed: ObservedPod): Map<string, ContainerProbeStatus> {
    const out = new Map<string, ContainerProbeStatus>();
    if (!spec) return out;
    const own = new Set(observed.sandboxes.filter((s) => s.uid === spec.uid).map((s) => s.id));
    for (const c of observed.containers) {
      if (!own.has(c.sandboxId) || c.state !== 'running') continue;
      const s = spec.containers.find((x) => x.name === c.name);
      if (!s) continue;
      const hasStartup = !!probeOf(s, 'startup');
      const hasReadiness = !!probeOf(s, 'readiness');
      if (!hasStartup && !hasReadiness) continue;
      const r = this.results.get(c.id);
      const started = !hasStartup || r?.get('startup') === 'success';
      out.set(c.id, { started, ready: started && (!hasReadiness || r?.get('readiness') === 'success') });
    }
    return out;
  }

  /** The published result of one probe of a container, if any. */
  result(containerId: string, kind: ProbeKind): ProbeResult | undefined {
    return this.results.get(containerId)?.get(kind);
  }

  /** One step of a worker (what its timer runs); exported for tests. A step still running is not overlapped. */
  async step(workerId: string): Promise<void> {
    const w = this.workers.get(workerId);
    if (!w || w.stopped || w.busy) return w?.busy;
    w.busy = this.doStep(w).finally(() => {
      w.busy = undefined;
    });
    return w.busy;
  }

  private async doStep(w: Worker): Promise<void> {
    const pod = this.pods.get(w.uid);
    if (!pod) return;
    const c = pod.containers.get(w.container.name);
    const d = beforeProbe(w.state, {
      kind: w.kind,
      probe: w.probe,
      container: c,
      started: !probeOf(w.container, 'startup') || (c ? this.results.get(c.id)?.get('startup') === 'success' : false),
      restartPolicyNever: pod.spec.restartPolicy === edge.RestartPolicy.NEVER,
      deleting: pod.spec.deleting,
      nowMs: this.deps.clock.now(),
    });
    w.state = d.state;
    if (d.remove) this.removeResult(d.remove, w.kind);
    if (d.set) this.setResult(pod.key, w.state.containerId, w.kind, d.set);
    if (d.stop) {
      this.stopWorker(w, false);
      return;
    }
    if (!d.probe || !c) return;
    let outcome;
    try {
      outcome = await this.deps.prober.run(w.probe, { containerId: c.id, podIp: pod.podIp });
    } catch (err) {
      outcome = { result: 'unknown' as const, output: errorMessage(err) };
    }
    if (w.stopped || w.state.containerId !== c.id) return; // the container changed while the probe ran
    const a = afterProbe(w.state, w.kind, w.probe, outcome.result);
    w.state = a.state;
    if (outcome.result !== 'success') {
      const kind = `${w.kind[0]!.toUpperCase()}${w.kind.slice(1)}`;
      this.deps.events?.event(
        { uid: pod.spec.uid, namespace: pod.spec.namespace, name: pod.spec.name, fieldPath: containerFieldPath(w.container.name) },
        'Warning',
        Reasons.unhealthy,
        outcome.result === 'failure'
          ? `${kind} probe failed: ${outcome.output ?? ''}`
          : `${kind} probe errored and resulted in unknown state: ${outcome.output ?? ''}`,
      );
      this.deps.log.debug(
        { pod: pod.key, container: w.container.name, probe: w.kind, result: outcome.result, output: outcome.output },
        'probe did not succeed',
      );
    }
    if (a.set) this.setResult(pod.key, c.id, w.kind, a.set);
  }

  private addWorker(w: Worker): void {
    this.workers.set(w.id, w);
    if (this.started) this.arm(w);
  }

  private arm(w: Worker): void {
    w.cancel();
    w.cancel = this.scheduler.every(Math.max(1, w.probe.periodSeconds) * 1000, () => void this.step(w.id));
  }

  private stopWorker(w: Worker, dropResult = true): void {
    w.stopped = true;
    w.cancel();
    this.workers.delete(w.id);
    if (dropResult && w.state.containerId) this.removeResult(w.state.containerId, w.kind);
  }

  private dropPod(uid: string): void {
    for (const w of [...this.workers.values()]) if (w.uid === uid) this.stopWorker(w);
    this.pods.delete(uid);
  }

  private setResult(key: string, containerId: string, kind: ProbeKind, result: ProbeResult): void {
    let r = this.results.get(containerId);
    if (!r) {
      r = new Map();
      this.results.set(containerId, r);
    }
    if (r.get(kind) === result) return;
    r.set(kind, result);
    this.deps.onChange(key);
  }

  private removeResult(containerId: string, kind: ProbeKind): void {
    const r = this.results.get(containerId);
    if (!r) return;
    r.delete(kind);
    if (r.size === 0) this.results.delete(containerId);
  }
}
