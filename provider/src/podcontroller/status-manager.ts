/**
 * StatusManager: the agents' pod status reports -> the API's pod status, as the kubelet's status manager.
 *
 * - Reports arrive in any order and repeated (the hub replays, a forwarder re-sends): the latest per pod UID is kept,
 *   and a report whose generation is not newer than the one held is dropped (counted `stale`).
 * - A report is written once per generation: while its node is disconnected, a pod update that brings no new report
 *   (the node lifecycle controller marking the pods of an unreachable node not Ready) is not overwritten with the
 *   same old report. While connected, the edge's reports are the authority and any drift is put back.
 * - A write that meets a conflict (409) reads the pod again and retries, at most 5 times.
 * - A pod being deleted whose edge confirmed that nothing of it remains (`removed`) is deleted, grace 0, as a
 *   kubelet finishes a graceful delete.
 *
 * It owns the reports and the generations applied; the PodController calls it from a pod's sync.
 */
import type { Logger } from 'pino';
import type { edge } from '@edgefarm/proto';
import type { KubeClient, Pod } from '../kube/client.js';
import { isConflict } from '../kube/errors.js';
import type { PodBus } from '../bus/instrumented.js';
import type { NodeFactsReader } from '../nodecontroller/facts.js';
import type { ProviderMetrics } from '../metrics/metrics.js';
import { podStatusFromReport, statusDiffers } from './status.js';

export interface StatusManagerDeps {
  kube: Pick<KubeClient, 'replacePodStatus' | 'getPod' | 'deletePod'>;
  bus: Pick<PodBus, 'forgetPodStatus'>;
  /** hostIP (status.hostIP) and whether the node is connected. */
  facts: Pick<NodeFactsReader, 'hostIP' | 'connected'>;
  /** Report outcomes, apply times, conflicts and pod startup times; none recorded without it. */
  metrics?: Pick<ProviderMetrics, 'statusReport' | 'statusApplied' | 'statusConflict' | 'podStarted'>;
  now: () => Date;
}

export class StatusManager {
  /** Latest report per pod UID, with the node it came from. */
  private readonly reports = new Map<string, { node: string; report: edge.PodStatusReport }>();
  /** Per pod UID, the report generation already written to the API. */
  private readonly applied = new Map<string, bigint>();

  constructor(private readonly deps: StatusManagerDeps) {}

  /** Keeps the report unless one of this generation or newer is held (then counted stale). True when kept. */
  record(node: string, report: edge.PodStatusReport): boolean {
    const prev = this.reports.get(report.uid)?.report;
    if (prev && prev.generation >= report.generation) {
      this.deps.metrics?.statusReport('stale');
      return false;
    }
    this.reports.set(report.uid, { node, report });
    return true;
  }

  /** The latest report about the pod UID. */
  latest(uid: string): edge.PodStatusReport | undefined {
    return this.reports.get(uid)?.report;
  }

  /**
   * A deleting pod whose edge reported it removed: deletes it (grace 0, UID precondition) and forgets it. True when
   * it did; then nothing else is to be done for the pod.
   */
  async finishDelete(pod: Pod, node: string, log: Logger): Promise<boolean> {
    const uid = pod.metadata!.uid!;
    const report = this.latest(uid);
    if (!pod.metadata!.deletionTimestamp || !report?.removed) return false;
    const start = this.deps.now().getTime();
    await this.deps.kube.deletePod(pod.metadata!.namespace!, pod.metadata!.name!, { uid, gracePeriodSeconds: 0 });
    this.deps.metrics?.statusApplied((this.deps.now().getTime() - start) / 1000, Number(report.observedAtMs));
    await this.podGone(node, uid);
    log.info('edge confirmed removal; pod deleted');
    return true;
  }

  /** Writes the pod's status from its latest report: a new report once; while the node is connected, whenever it drifted. */
  async sync(pod: Pod, node: string): Promise<void> {
    const uid = pod.metadata!.uid!;
    const report = this.latest(uid);
    if (!report || report.removed) return;
    const fresh = report.generation > (this.applied.get(uid) ?? -1n);
    if (!fresh && !this.deps.facts.connected(node)) return;
    const start = this.deps.now().getTime();
    await this.write(pod, report, node);
    this.applied.set(uid, report.generation);
    if (fresh) this.deps.metrics?.statusApplied((this.deps.now().getTime() - start) / 1000, Number(report.observedAtMs));
  }

  /** The pod is gone: its last status on the hub is dropped (the status stream stays bounded) and its report forgotten. */
  async podGone(node: string, uid: string): Promise<void> {
    await this.deps.bus.forgetPodStatus(node, uid);
    this.forget(uid);
  }

  /** A node given up: its pods' reports are another replica's now. */
  forgetNode(node: string): void {
    for (const [uid, r] of this.reports) if (r.node === node) this.forget(uid);
  }

  private forget(uid: string): void {
    this.reports.delete(uid);
    this.applied.delete(uid);
  }

  private async write(pod: Pod, report: edge.PodStatusReport, node: string): Promise<void> {
    let current: Pod | undefined = pod;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      if (current.metadata!.uid !== report.uid) return; // a report about an older pod of the same name
      const status = podStatusFromReport(current, report, this.deps.facts.hostIP(node), this.deps.now());
      if (!statusDiffers(current.status, status)) return;
      try {
        await this.deps.kube.replacePodStatus({ ...current, status });
        const created = current.metadata!.creationTimestamp;
        if (status.phase === 'Running' && current.status?.phase !== 'Running' && created) {
          this.deps.metrics?.podStarted(new Date(created).getTime(), this.deps.now().getTime());
        }
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
        this.deps.metrics?.statusConflict();
        current = await this.deps.kube.getPod(current.metadata!.namespace!, current.metadata!.name!);
      }
    }
  }
}
