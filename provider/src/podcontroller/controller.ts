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
  /** Nodes this provider serves. */
  nodes: ReadonlySet<string>;
  /** InternalIP of a node, for status.hostIP. */
  hostIP(node: string): string | undefined;
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

  /** `existing`: the hub's current desired state for our nodes, so a restart republishes and deletes nothing. */
  async start(existing: DesiredRecord[]): Promise<void> {
    for (const r of existing) {
      this.noteSequence(r.node, r.seq);
      if (r.spec) {
        this.published.set(keyOf(r.key.namespace, r.key.name), {
          node: r.node,
          uid: r.spec.uid,
          fingerprint: specFingerprint(r.spec),
        });
      }
    }
    await this.watch.start({
      changed: (pod) => this.enqueue(pod),
      deleted: (pod) => this.enqueue(pod),
      error: (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'pod watch failed; restarting'),
    });
    // Pods that were published but are gone from the API (deleted while we were down) get their tombstones now.
    for (const key of this.published.keys()) this.queue.add(key);
    for (const pod of this.watch.list()) this.enqueue(pod);
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.watch.stop();
  }

  /** Called for every status report from the hub (any order, possibly repeated). */
  onReport(node: string, report: edge.PodStatusReport): void {
    if (!this.deps.nodes.has(node)) return;
    const prev = this.reports.get(report.uid);
    if (prev && prev.generation >= report.generation) return;
    this.reports.set(report.uid, report);
    this.queue.add(keyOf(report.namespace, report.name));
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

    if (!pod || !node || !this.deps.nodes.has(node)) {
      if (published) {
        const seq = await this.deps.bus.tombstonePod(published.node, { namespace, name });
        this.noteSequence(published.node, seq);
        await this.deps.bus.forgetPodStatus(published.node, published.uid);
        this.reports.delete(published.uid);
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
      this.reports.delete(uid);
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

    if (report && !report.removed) await this.applyStatus(pod, report, node);
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
