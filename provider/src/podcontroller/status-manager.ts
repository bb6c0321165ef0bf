/**
 * StatusManager: the agents' pod status reports -> the API's pod status, as the kubelet's status manager.
 *
 * - Reports arrive in any order and repeated (the hub replays, a forwarder re-sends): the latest per pod UID and
 *   reporting node is kept, and a report whose generation is not newer than the one held is dropped (counted `stale`).
 * - A node speaks only for its own pods: a report is used only when the node it came in for (the subject's wire id)
 *   is the pod's spec.nodeName. A report about a pod bound to another node is refused (counted `rejected`,
 *   `wrong_node`; logged and a Warning Event on the reporting Node, once a minute per node) and its copy on the hub purged: a site cannot write another node's pod status
 *   nor force-delete its pods with a forged `removed`, and its forgeries never make the real node's reports stale.
 * - A report no pod has claimed yet (its pod is not in the API, or not on a node served here) is kept for
 *   `unclaimedTtlMs` (default 10 min) and at most `maxUnclaimed` (default 10,000) of them, oldest out first; then it is
 *   refused (`unknown_pod`, `overflow`) and its copy on the hub purged (4 purges at a time, at most 10,000 waiting),
 *   so a site that reports made-up UIDs grows neither the provider's memory nor EF_STATUS. A report a pod claimed
 *   is kept while the pod lives.
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
import type { ProviderMetrics, StatusRejectReason } from '../metrics/metrics.js';
import { RefusalNotices } from '../events/refusals.js';
import { podStatusFromReport, statusDiffers } from './status.js';

export interface StatusManagerDeps {
  /** createEvent: the Warning Event on a Node whose reports about other nodes' pods were refused. */
  kube: Pick<KubeClient, 'replacePodStatus' | 'getPod' | 'deletePod' | 'createEvent'>;
  bus: Pick<PodBus, 'forgetPodStatus'>;
  /** hostIP (status.hostIP) and whether the node is connected. */
  facts: Pick<NodeFactsReader, 'hostIP' | 'connected'>;
  /** Report outcomes, apply times, conflicts and pod startup times; none recorded without it. */
  metrics?: Pick<ProviderMetrics, 'statusReport' | 'statusApplied' | 'statusConflict' | 'podStarted'>;
  now: () => Date;
  /** How long a report no pod claimed is kept (default 10 minutes). */
  unclaimedTtlMs?: number;
  /** Reports no pod claimed kept at most (default 10,000). */
  maxUnclaimed?: number;
  /** Where refusals are logged (once a minute per node); none without it. */
  log?: Logger;
}

/** A report held, with the node it came in for and whether a pod of that node claimed it. */
interface Held {
  node: string;
  report: edge.PodStatusReport;
  /** A pod bound to `node` with this UID asked for it: kept while the pod lives. */
  claimed: boolean;
}

const DEFAULT_UNCLAIMED_TTL_MS = 10 * 60_000;
const DEFAULT_MAX_UNCLAIMED = 10_000;

/** Hub purges of refused reports: at most this many at once, and this many waiting (beyond, skipped). */
const PURGE_WORKERS = 4;
const MAX_PENDING_PURGES = 10_000;

const heldKey = (node: string, uid: string) => `${node} ${uid}`;

export class StatusManager {
  /** Latest report per pod UID, per node it came in for. */
  private readonly reports = new Map<string, Map<string, Held>>();
  /** Reports no pod claimed, by `<node> <uid>`, oldest received first, with when they were received. */
  private readonly unclaimed = new Map<string, { node: string; uid: string; atMs: number }>();
  /** Per pod UID, the report generation already written to the API. */
  private readonly applied = new Map<string, bigint>();
  private readonly ttlMs: number;
  private readonly maxUnclaimed: number;
  /** Hub purges of refused reports waiting, and how many run now. */
  private readonly purges: { node: string; uid: string }[] = [];
  private purgesRunning = 0;
  /** Wrong-node refusals: logged and told on the reporting Node (a Warning Event), once a minute per node. */
  private readonly notices: RefusalNotices;

  constructor(private readonly deps: StatusManagerDeps) {
    this.ttlMs = deps.unclaimedTtlMs ?? DEFAULT_UNCLAIMED_TTL_MS;
    this.maxUnclaimed = deps.maxUnclaimed ?? DEFAULT_MAX_UNCLAIMED;
    this.notices = new RefusalNotices({ kube: deps.kube, log: deps.log, now: deps.now });
  }

  /** Reports held (claimed or not). */
  get held(): number {
    let n = 0;
    for (const byNode of this.reports.values()) n += byNode.size;
    return n;
  }

  /**
   * Keeps the report unless one of this generation or newer is held from the same node (then counted stale). True
   * when kept. Whether the node may speak for the pod is decided when the pod claims it ({@link sync}).
   */
  record(node: string, report: edge.PodStatusReport): boolean {
    const nowMs = this.deps.now().getTime();
    this.expire(nowMs);
    const byNode = this.reports.get(report.uid);
    const prev = byNode?.get(node);
    if (prev && prev.report.generation >= report.generation) {
      this.deps.metrics?.statusReport('stale');
      return false;
    }
    if (prev?.claimed) {
      prev.report = report;
      return true;
    }
    if (byNode) byNode.set(node, { node, report, claimed: false });
    else this.reports.set(report.uid, new Map([[node, { node, report, claimed: false }]]));
    const key = heldKey(node, report.uid);
    this.unclaimed.delete(key);
    this.unclaimed.set(key, { node, uid: report.uid, atMs: nowMs });
    while (this.unclaimed.size > this.maxUnclaimed) this.refuseOldest('overflow');
    return true;
  }

  /** The latest report about the pod UID from `node` (default: from any node). */
  latest(uid: string, node?: string): edge.PodStatusReport | undefined {
    const byNode = this.reports.get(uid);
    if (!byNode) return undefined;
    return node === undefined ? byNode.values().next().value?.report : byNode.get(node)?.report;
  }

  /**
   * A deleting pod whose edge reported it removed: deletes it (grace 0, UID precondition) and forgets it. True when
   * it did; then nothing else is to be done for the pod.
   */
  async finishDelete(pod: Pod, node: string, log: Logger): Promise<boolean> {
    const uid = pod.metadata!.uid!;
    const report = this.claim(pod, node, log);
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
    const report = this.claim(pod, node);
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
    this.notices.forget(node);
    for (const [uid, byNode] of this.reports) {
      if (!byNode.delete(node)) continue;
      this.unclaimed.delete(heldKey(node, uid));
      if (byNode.size === 0) this.forget(uid);
    }
  }

  private forget(uid: string): void {
    for (const node of this.reports.get(uid)?.keys() ?? []) this.unclaimed.delete(heldKey(node, uid));
    this.reports.delete(uid);
    this.applied.delete(uid);
  }

  /**
   * The pod bound to `node` asks for its report: the one from `node`, now kept while the pod lives. Reports about it
   * from any other node are refused (`wrong_node`), purged from the hub, logged and told on the reporting Node.
   */
  private claim(pod: Pod, node: string, log?: Logger): edge.PodStatusReport | undefined {
    const uid = pod.metadata!.uid!;
    const byNode = this.reports.get(uid);
    if (!byNode) return undefined;
    for (const from of [...byNode.keys()]) {
      if (from === node) continue;
      this.drop(from, uid);
      this.deps.metrics?.statusReport('rejected', 'wrong_node');
      this.notices.refused('status', from, `${pod.metadata!.namespace}/${pod.metadata!.name}`, node);
      log?.debug({ from }, 'refused a status report about this pod from another node');
    }
    const held = byNode.get(node);
    if (held && !held.claimed) {
      held.claimed = true;
      this.unclaimed.delete(heldKey(node, uid));
    }
    return held?.report;
  }

  /** Refuses the reports no pod claimed within the TTL. */
  private expire(nowMs: number): void {
    for (const u of this.unclaimed.values()) {
      if (nowMs - u.atMs < this.ttlMs) return;
      this.refuseOldest('unknown_pod');
    }
  }

  private refuseOldest(reason: StatusRejectReason): void {
    const oldest = this.unclaimed.values().next().value;
    if (!oldest) return;
    this.drop(oldest.node, oldest.uid);
    this.deps.metrics?.statusReport('rejected', reason);
  }

  /**
   * Forgets the report about `uid` from `node` and purges its copy on the hub, in the background (best effort, a few at
   * a time: a flood of made-up UIDs becomes a queue of purges, not a flood of hub API calls).
   */
  private drop(node: string, uid: string): void {
    const byNode = this.reports.get(uid);
    byNode?.delete(node);
    if (byNode?.size === 0) this.reports.delete(uid);
    this.unclaimed.delete(heldKey(node, uid));
    if (this.purges.length >= MAX_PENDING_PURGES) return; // EF_STATUS's own limit bounds what stays behind
    this.purges.push({ node, uid });
    this.pumpPurges();
  }

  /** Runs the queued hub purges, {@link PURGE_WORKERS} at a time; a failed one is logged, not retried. */
  private pumpPurges(): void {
    while (this.purgesRunning < PURGE_WORKERS && this.purges.length > 0) {
      const { node, uid } = this.purges.shift()!;
      this.purgesRunning++;
      void this.deps.bus
        .forgetPodStatus(node, uid)
        .catch((err: unknown) =>
          this.deps.log?.warn({ node, uid, err: (err as Error).message }, 'could not purge a refused status report from the hub'),
        )
        .finally(() => {
          this.purgesRunning--;
          this.pumpPurges();
        });
    }
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
