/**
 * PodController: for every pod bound to a node this provider serves, keeps the node's desired state on the hub in
 * step with the API, and the API's pod status in step with the agent's reports.
 *
 * Level-triggered: the queue carries pod keys (`ns/name`); `sync` re-reads the pod from the informer cache and the
 * latest report for it, decides, then acts. Safe to call any number of times.
 */
import type { Logger } from 'pino';
import type { CoreV1Event } from '@kubernetes/client-node';
import { edge, WorkQueue, type PodKey } from '@edgefarm/proto';
import type { KubeClient, Pod, PodWatch } from '../kube/client.js';
import { isConflict } from '../kube/errors.js';
import type { DesiredPublisher, DesiredRecord } from '../bus/hub.js';
import { translatePod, specFingerprint } from './translate.js';
import { podStatusFromReport, statusDiffers } from './status.js';

export interface PodControllerDeps {
  kube: KubeClient;
  bus: DesiredPublisher & { forgetPodStatus(node: string, uid: string): Promise<void> };
  log: Logger;
  /** InternalIP of a node, for status.hostIP. */
  hostIP(node: string): string | undefined;
  /** Whether the node's heartbeats are fresh (its reports are then the authority on pod status, as a kubelet's). */
  connected?(node: string): boolean;
  now?: () => Date;
}

interface Published {
  node: string;
  uid: string;
  fingerprint: string;
}

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
function splitKey(key: string): PodKey {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

export class PodController {
  private readonly queue: WorkQueue;
  private readonly watch: PodWatch;
  /** What this process knows it published per pod key (seeded from the hub at start). */
  private readonly published = new Map<string, Published>();
  /** Latest report per pod UID, and the highest generation applied (older reports are dropped). */
  private readonly reports = new Map<string, edge.PodStatusReport>();
  /** Node of each report in `reports`. */
  private readonly reportNode = new Map<string, string>();
  /**
   * Per pod UID, the report generation already written to the API. While its node is disconnected a report is
   * applied once: a pod update that brings no new report (the node lifecycle controller marking the pods of an
   * unreachable node not Ready) is not overwritten with the same old report. While connected, the edge's reports
   * are the authority and any drift is put back, as a kubelet's status manager does.
   */
  private readonly appliedGeneration = new Map<string, bigint>();
  /** Nodes this replica serves now. */
  private readonly nodes = new Set<string>();
  /** Pod keys whose unsupported-spec Event was already recorded. */
  private readonly rejected = new Set<string>();
  private readonly now: () => Date;
  /** Hub sequence of the last desired-state message this process published per node. */
  private readonly lastSequence = new Map<string, number>();

  constructor(private readonly deps: PodControllerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.watch = deps.kube.podWatch();
    this.queue = new WorkQueue((key) => this.sync(key), {
      onError: (key, err, attempt) => deps.log.warn({ key, attempt, err: (err as Error).message }, 'pod sync failed; will retry'),
    });
  }

  /** Starts the pod watch. Pods are synced only for nodes added with {@link addNodes}. */
  async start(): Promise<void> {
    await this.watch.start({
      changed: (pod) => this.enqueue(pod),
      deleted: (pod) => this.enqueue(pod),
      error: (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'pod watch failed; restarting'),
    });
  }

  /**
   * Starts serving nodes. `existing`: the hub's current desired state for them, so taking a node over (at start, or
   * from another replica) republishes and deletes nothing that is still wanted.
   */
  addNodes(names: readonly string[], existing: readonly DesiredRecord[]): void {
    const added = new Set(names);
    for (const r of existing) {
      if (!added.has(r.node)) continue;
      this.noteSequence(r.node, r.seq);
      const key = keyOf(r.key.namespace, r.key.name);
      if (r.kind === 'pod' && r.spec) this.published.set(key, { node: r.node, uid: r.spec.uid, fingerprint: specFingerprint(r.spec) });
    }
    for (const n of names) this.nodes.add(n);
    // Pods that were published but are gone from the API (deleted while nobody served the node) get tombstones now.
    for (const [key, p] of this.published) if (added.has(p.node)) this.queue.add(key);
    for (const pod of this.podsBoundTo(added)) this.enqueue(pod);
  }

  /** Stops serving nodes another replica takes over: forgets them without touching their desired state. */
  releaseNodes(names: readonly string[]): void {
    const gone = new Set(names);
    for (const n of names) {
      this.nodes.delete(n);
      this.lastSequence.delete(n);
    }
    for (const [key, p] of this.published) if (gone.has(p.node)) this.published.delete(key);
    for (const [uid, n] of this.reportNode) if (gone.has(n)) this.forgetReport(uid);
  }

  /** The node's EdgeNode was deleted: every pod published to it gets a tombstone, so its site stops them. */
  decommissionNode(name: string): void {
    this.nodes.delete(name);
    for (const [key, p] of this.published) if (p.node === name) this.queue.add(key);
  }

  /** Syncs every pod of a node again (the node reconnected: its reports are the authority again). */
  resyncNode(name: string): void {
    for (const pod of this.podsBoundTo(new Set([name]))) this.enqueue(pod);
  }

  /** Pods the API binds to a node (from the informer cache). */
  podsOnNode(name: string): number {
    return this.podsBoundTo(new Set([name])).length;
  }

  /** Pods in the informer cache bound to any of the nodes. */
  private podsBoundTo(nodes: ReadonlySet<string>): Pod[] {
    return this.watch.list().filter((p) => nodes.has(p.spec?.nodeName ?? ''));
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.watch.stop();
  }

  /** Called for every status report from the hub (any order, possibly repeated). */
  onReport(node: string, report: edge.PodStatusReport): void {
    if (!this.nodes.has(node)) return;
    const prev = this.reports.get(report.uid);
    if (prev && prev.generation >= report.generation) return;
    this.reports.set(report.uid, report);
    this.reportNode.set(report.uid, node);
    this.queue.add(keyOf(report.namespace, report.name));
  }

  private forgetReport(uid: string): void {
    this.reports.delete(uid);
    this.reportNode.delete(uid);
    this.appliedGeneration.delete(uid);
  }

  private noteSequence(node: string, seq: number): void {
    this.lastSequence.set(node, Math.max(seq, this.lastSequence.get(node) ?? 0));
  }

  /** Hub sequence of the last desired-state message published for `node` by this process. */
  desiredSequence(node: string): number | undefined {
    return this.lastSequence.get(node);
  }

  /** Resolves once no sync is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  private enqueue(pod: Pod): void {
    this.queue.add(keyOf(pod.metadata!.namespace!, pod.metadata!.name!));
  }

  private async sync(key: string): Promise<void> {
    const { namespace, name } = splitKey(key);
    const pod = this.watch.get(namespace, name);
    const node = pod?.spec?.nodeName;
    const published = this.published.get(key);

    if (!pod || !node || !this.nodes.has(node)) {
      if (published) {
        const seq = await this.deps.bus.tombstonePod(published.node, { namespace, name });
        this.noteSequence(published.node, seq);
        await this.deps.bus.forgetPodStatus(published.node, published.uid);
        this.forgetReport(published.uid);
        this.published.delete(key);
        this.deps.log.info({ key, node: published.node }, 'pod gone from the API: tombstone published');
      }
      return;
    }
    const uid = pod.metadata!.uid!;
    const log = this.deps.log.child({ pod: key, node });
    const report = this.reports.get(uid);

    // The edge confirmed that nothing of a deleting pod remains: finish the delete as a kubelet does.
    if (pod.metadata!.deletionTimestamp && report?.removed) {
      await this.deps.kube.deletePod(namespace, name, { uid, gracePeriodSeconds: 0 });
      await this.deps.bus.forgetPodStatus(node, uid);
      this.forgetReport(uid);
      log.info('edge confirmed removal; pod deleted');
      return;
    }

    const translation = translatePod(pod);
    if (!translation.ok) {
      if (published) {
        await this.deps.bus.tombstonePod(published.node, { namespace, name });
        this.published.delete(key);
      }
      await this.reject(pod, translation.unsupported, log);
      return;
    }
    const fingerprint = specFingerprint(translation.spec);
    if (published?.fingerprint !== fingerprint || published.uid !== uid || published.node !== node) {
      const seq = await this.deps.bus.publishPod(node, translation.spec);
      this.noteSequence(node, seq);
      this.published.set(key, { node, uid, fingerprint });
      log.debug({ seq, deleting: translation.spec.deleting }, 'desired state published');
    }

    const fresh = report && report.generation > (this.appliedGeneration.get(uid) ?? -1n);
    if (report && !report.removed && (fresh || this.deps.connected?.(node))) {
      await this.applyStatus(pod, report, node);
      this.appliedGeneration.set(uid, report.generation);
    }
  }

  private async applyStatus(pod: Pod, report: edge.PodStatusReport, node: string): Promise<void> {
    let current: Pod | undefined = pod;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      if (current.metadata!.uid !== report.uid) return; // a report about an older pod of the same name
      const status = podStatusFromReport(current, report, this.deps.hostIP(node), this.now());
      if (!statusDiffers(current.status, status)) return;
      try {
        await this.deps.kube.replacePodStatus({ ...current, status });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
        current = await this.deps.kube.getPod(current.metadata!.namespace!, current.metadata!.name!);
      }
    }
  }

  private async reject(pod: Pod, problems: string[], log: Logger): Promise<void> {
    const key = keyOf(pod.metadata!.namespace!, pod.metadata!.name!);
    const message = `the edge cannot run this pod: ${problems.join('; ')}`;
    if (pod.metadata!.deletionTimestamp) {
      // Nothing ever ran at the edge: finish the delete.
      await this.deps.kube.deletePod(pod.metadata!.namespace!, pod.metadata!.name!, { uid: pod.metadata!.uid!, gracePeriodSeconds: 0 });
      return;
    }
    if (pod.status?.phase !== 'Failed' || pod.status.reason !== 'EdgeUnsupported') {
      await this.deps.kube.replacePodStatus({
        ...pod,
        status: { ...pod.status, phase: 'Failed', reason: 'EdgeUnsupported', message },
      });
    }
    if (!this.rejected.has(key)) {
      this.rejected.add(key);
      await this.deps.kube.createEvent(podEvent(pod, 'Warning', 'EdgeUnsupported', message, this.now()));
      log.warn({ problems }, 'pod rejected: unsupported at the edge');
    }
  }
}

export function podEvent(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, now: Date): CoreV1Event {
  return {
    metadata: { generateName: `${pod.metadata!.name}.`, namespace: pod.metadata!.namespace },
    involvedObject: {
      kind: 'Pod',
      apiVersion: 'v1',
      namespace: pod.metadata!.namespace,
      name: pod.metadata!.name,
      uid: pod.metadata!.uid,
      resourceVersion: pod.metadata!.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component: 'edgefarm-provider', host: pod.spec?.nodeName },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
