/**
 * PodController: for every pod bound to a node this provider serves, keeps the node's desired state on the hub in
 * step with the API, and the API's pod status in step with the agent's reports.
 *
 * Level-triggered: the queue carries pod keys (`ns/name`); `sync` re-reads the pod from the informer cache and the
 * latest report for it, decides, then acts. Safe to call any number of times.
 *
 * Which nodes are served it reads from the membership, whose announcements it follows ({@link MembershipListener}).
 * What it knows of a node (hostIP, allocatable, connectivity) it reads from {@link NodeFactsReader}; when a node
 * reconnects, its pods are synced again (its reports are the authority again).
 */
import type { Logger } from 'pino';
import type { CoreV1Event, KubernetesObject, V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { create } from '@bufbuild/protobuf';
import {
  edge,
  isPayloadTooLarge,
  objectKey,
  parseObjectKey,
  parsePodKey,
  podKeyString,
  podObjectKeys,
  type ObjectKey,
  type ObjectKind,
} from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { KubeClient, Pod, PodWatch, Watcher } from '../kube/client.js';
import { isConflict } from '../kube/errors.js';
import { BoundPods } from '../kube/bound-pods.js';
import type { DesiredRecord } from '../bus/hub.js';
import type { PodBus } from '../bus/instrumented.js';
import type { MembershipListener, ReleaseReason, ServedNodes, Takeover } from '../membership/membership.js';
import type { NodeFactsReader } from '../nodecontroller/facts.js';
import { translatePod, specFingerprint, parseTokenKey } from './translate.js';
import { configMapObject, secretObject, specTokenKeys } from './objects.js';
import { podStatusFromReport, statusDiffers } from './status.js';
import type { ProviderMetrics } from '../metrics/metrics.js';

export interface PodControllerDeps {
  kube: KubeClient;
  /** Where desired state goes (the hub, through DesiredSequences). */
  bus: PodBus;
  /** The pod informer (pods bound to any node); started and stopped here. */
  pods: PodWatch;
  /** The nodes served now. */
  served: ServedNodes;
  /**
   * hostIP (status.hostIP), allocatable (resourceFieldRef of limits a container does not set), connectivity (while
   * connected, the node's reports are the authority on pod status, as a kubelet's) and reconnects.
   */
  facts: NodeFactsReader;
  log: Logger;
  /** Status report outcomes, apply times, conflicts and pod startup times; none recorded without it. */
  metrics?: Pick<ProviderMetrics, 'statusReport' | 'statusApplied' | 'statusConflict' | 'podStarted'>;
  now?: () => Date;
  /**
   * Pods synced at once (default 16). A sync is I/O: publish to the hub, write the status to the API (~0.1 s each
   * under load); with 4 workers a burst of 10,000 pods went at ~25 pods/s and a site's pods waited minutes behind other
   * sites' (docs/decisions/0007).
   */
  workers?: number;
}

interface Published {
  node: string;
  uid: string;
  fingerprint: string;
  /** Objects the published spec refers to. */
  refs: ObjectKey[];
}

/** An object on a node's desired state: which version, and for tokens when to renew them. */
interface PublishedObject {
  /** resourceVersion of the ConfigMap/Secret; for tokens the issue time. */
  version: string;
  tokens?: { podUid: string; keys: string; refreshAtMs: number };
}

/** How often token lifetimes are checked. */
const TOKEN_CHECK_MS = 15_000;

const keyOf = (namespace: string, name: string) => podKeyString({ namespace, name });

export class PodController implements MembershipListener {
  private readonly queue: WorkQueue;
  private readonly watch: PodWatch;
  private readonly bound: BoundPods;
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
  /** Pod keys whose unsupported-spec Event was already recorded. */
  private readonly rejected = new Set<string>();
  private readonly now: () => Date;
  /** Objects on each served node's desired state. */
  private readonly objects = new Map<string, Map<ObjectKey, PublishedObject>>();
  private readonly configMaps: Watcher<V1ConfigMap>;
  private readonly secrets: Watcher<V1Secret>;
  /** Object problems already recorded as Events, by pod key and object version. */
  private readonly objectProblems = new Set<string>();
  private tokenTimer?: NodeJS.Timeout;

  constructor(private readonly deps: PodControllerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.watch = deps.pods;
    this.bound = new BoundPods(deps.pods);
    this.configMaps = deps.kube.configMapWatch();
    this.secrets = deps.kube.secretWatch();
    this.queue = new WorkQueue((key) => this.sync(key), {
      workers: deps.workers ?? 16,
      onError: (key, err, attempt) => deps.log.warn({ key, attempt, err: (err as Error).message }, 'pod sync failed; will retry'),
    });
    deps.facts.onConnectivity((node, connected) => {
      if (connected) this.resyncNode(node);
    });
  }

  /** Starts the pod, ConfigMap and Secret watches. Pods are synced only for served nodes. */
  async start(): Promise<void> {
    const objectChanged = (kind: ObjectKind) => (o: KubernetesObject) =>
      this.objectChanged(objectKey(kind, { namespace: o.metadata!.namespace!, name: o.metadata!.name! }));
    const failed = (what: string) => (err: unknown) =>
      this.deps.log.warn({ err: (err as Error)?.message }, `${what} watch failed; restarting`);
    await this.configMaps.start({ changed: objectChanged('configmap'), deleted: objectChanged('configmap'), error: failed('ConfigMap') });
    await this.secrets.start({ changed: objectChanged('secret'), deleted: objectChanged('secret'), error: failed('Secret') });
    await this.watch.start({
      changed: (pod) => this.enqueue(pod),
      deleted: (pod) => this.enqueue(pod),
      error: failed('pod'),
    });
    this.tokenTimer = setInterval(() => this.renewDueTokens(), TOKEN_CHECK_MS);
  }

  /** A ConfigMap or Secret changed: sync every published pod that uses it (the sync republishes it). */
  private objectChanged(key: ObjectKey): void {
    for (const [podKey, p] of this.published) if (p.refs.includes(key)) this.queue.add(podKey);
  }

  /** Queues the pods whose ServiceAccount tokens are due for renewal (80% of their lifetime, as the kubelet). */
  renewDueTokens(): void {
    const now = this.now().getTime();
    for (const objects of this.objects.values()) {
      for (const [key, o] of objects) {
        if (o.tokens && o.tokens.refreshAtMs <= now) {
          const { key: pod } = parseObjectKey(key);
          this.queue.add(keyOf(pod.namespace, pod.name));
        }
      }
    }
  }

  /**
   * Membership: starts serving nodes. `desired`: the hub's current desired state for them, so taking a node over (at
   * start, or from another replica) republishes and deletes nothing that is still wanted.
   */
  taking({ nodes, desired }: Takeover): void {
    this.addNodes(
      nodes.map((n) => n.name),
      desired,
    );
  }

  /**
   * Membership: the node is no longer served. Handed over: forgotten without touching its desired state (the new
   * owner's now). Deleted (its EdgeNode is gone): every pod published to it gets a tombstone, so its site stops them.
   */
  released(node: string, reason: ReleaseReason): void {
    if (reason === 'deleted') {
      for (const [key, p] of this.published) if (p.node === node) this.queue.add(key);
      return;
    }
    for (const [key, p] of this.published) if (p.node === node) this.published.delete(key);
    this.objects.delete(node);
    for (const [uid, n] of this.reportNode) if (n === node) this.forgetReport(uid);
  }

  private addNodes(names: readonly string[], existing: readonly DesiredRecord[]): void {
    const added = new Set(names);
    for (const n of names) this.objects.set(n, new Map());
    for (const r of existing) {
      if (!added.has(r.node)) continue;
      if (r.kind === 'pod') {
        if (r.spec)
          this.published.set(keyOf(r.key.namespace, r.key.name), {
            node: r.node,
            uid: r.spec.uid,
            fingerprint: specFingerprint(r.spec),
            refs: podObjectKeys(r.spec),
          });
      } else if (r.object) {
        this.objects.get(r.node)!.set(objectKey(r.kind, r.key), publishedObject(r.kind, r.object));
      }
    }
    // Objects no published pod uses any more (their pod was tombstoned before the object was).
    for (const n of names)
      void this.releaseRefs(n, [...this.objects.get(n)!.keys()]).catch((err: unknown) =>
        this.deps.log.warn({ node: n, err: (err as Error).message }, 'object cleanup failed'),
      );
    // Pods that were published but are gone from the API (deleted while nobody served the node) get tombstones now.
    for (const [key, p] of this.published) if (added.has(p.node)) this.queue.add(key);
    for (const pod of this.bound.on(added)) this.enqueue(pod);
  }

  /** Syncs every pod of a node again (the node reconnected: its reports are the authority again). */
  resyncNode(name: string): void {
    for (const pod of this.bound.on([name])) this.enqueue(pod);
  }

  async stop(): Promise<void> {
    clearInterval(this.tokenTimer);
    await this.queue.stop();
    await this.watch.stop();
    await this.configMaps.stop();
    await this.secrets.stop();
  }

  /** Called for every status report from the hub (any order, possibly repeated). */
  onReport(node: string, report: edge.PodStatusReport): void {
    if (!this.deps.served.serves(node)) return;
    const prev = this.reports.get(report.uid);
    if (prev && prev.generation >= report.generation) return this.deps.metrics?.statusReport('stale');
    this.reports.set(report.uid, report);
    this.reportNode.set(report.uid, node);
    this.queue.add(keyOf(report.namespace, report.name));
  }

  private forgetReport(uid: string): void {
    this.reports.delete(uid);
    this.reportNode.delete(uid);
    this.appliedGeneration.delete(uid);
  }

  /** Resolves once no sync is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  private enqueue(pod: Pod): void {
    this.queue.add(keyOf(pod.metadata!.namespace!, pod.metadata!.name!));
  }

  private async sync(key: string): Promise<void> {
    const { namespace, name } = parsePodKey(key);
    const pod = this.watch.get(namespace, name);
    const node = pod?.spec?.nodeName;
    const published = this.published.get(key);

    if (!pod || !node || !this.deps.served.serves(node)) {
      if (published) {
        await this.deps.bus.tombstonePod(published.node, { namespace, name });
        await this.deps.bus.forgetPodStatus(published.node, published.uid);
        this.forgetReport(published.uid);
        this.published.delete(key);
        await this.releaseRefs(published.node, published.refs);
        this.deps.log.info({ key, node: published.node }, 'pod gone from the API: tombstone published');
      }
      return;
    }
    const uid = pod.metadata!.uid!;
    const log = this.deps.log.child({ pod: key, node });
    const report = this.reports.get(uid);

    // The edge confirmed that nothing of a deleting pod remains: finish the delete as a kubelet does.
    if (pod.metadata!.deletionTimestamp && report?.removed) {
      const start = this.now().getTime();
      await this.deps.kube.deletePod(namespace, name, { uid, gracePeriodSeconds: 0 });
      this.deps.metrics?.statusApplied((this.now().getTime() - start) / 1000, Number(report.observedAtMs));
      await this.deps.bus.forgetPodStatus(node, uid);
      this.forgetReport(uid);
      log.info('edge confirmed removal; pod deleted');
      return;
    }

    const translation = translatePod(pod, { allocatable: this.deps.facts.allocatable(node) });
    if (!translation.ok && translation.unsupported.length === 0) {
      log.info({ waiting: translation.waiting }, 'pod waits for what the node has not reported yet');
      this.queue.addAfter(key, 5_000);
      return;
    }
    if (!translation.ok) {
      if (published) {
        await this.deps.bus.tombstonePod(published.node, { namespace, name });
        this.published.delete(key);
        await this.releaseRefs(published.node, published.refs);
      }
      await this.reject(pod, translation.unsupported, log);
      return;
    }
    const spec = translation.spec;
    const refs = podObjectKeys(spec);
    // The objects go first, so the site has them when the pod arrives (the site stream keeps this order).
    if (!spec.deleting) await this.syncObjects(node, pod, spec, refs, log);
    const fingerprint = specFingerprint(spec);
    if (published?.fingerprint !== fingerprint || published.uid !== uid || published.node !== node) {
      const seq = await this.deps.bus.publishPod(node, spec);
      this.published.set(key, { node, uid, fingerprint, refs });
      log.debug({ seq, deleting: spec.deleting }, 'desired state published');
      if (published)
        await this.releaseRefs(
          published.node,
          published.refs.filter((r) => published.node !== node || !refs.includes(r)),
        );
    }

    const fresh = report && report.generation > (this.appliedGeneration.get(uid) ?? -1n);
    if (report && !report.removed && (fresh || this.deps.facts.connected(node))) {
      const start = this.now().getTime();
      await this.applyStatus(pod, report, node);
      this.appliedGeneration.set(uid, report.generation);
      if (fresh) this.deps.metrics?.statusApplied((this.now().getTime() - start) / 1000, Number(report.observedAtMs));
    }
  }

  /** Publishes to the node each object the pod uses that the node lacks in its current version. */
  private async syncObjects(node: string, pod: Pod, spec: edge.EdgePodSpec, refs: ObjectKey[], log: Logger): Promise<void> {
    const objects = this.objects.get(node);
    if (!objects) return;
    for (const ref of refs) {
      const { kind, key } = parseObjectKey(ref);
      if (kind === 'token') {
        await this.syncTokens(node, pod, spec, ref, log);
        continue;
      }
      const source = (kind === 'configmap' ? this.configMaps : this.secrets).get(key.namespace, key.name);
      const have = objects.get(ref);
      if (!source) {
        // Deleted (or not created yet): the edge reports what the kubelet would (missing object) until it exists.
        if (have) {
          await this.deps.bus.tombstoneObject(node, kind, key);
          objects.delete(ref);
        }
        continue;
      }
      const version = source.metadata!.resourceVersion!;
      if (have?.version === version) continue;
      const object = kind === 'configmap' ? configMapObject(source) : secretObject(source);
      try {
        await this.deps.bus.publishObject(node, kind, object);
      } catch (err) {
        if (!isPayloadTooLarge(err)) throw err;
        const what = `${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${key.namespace}/${key.name}`;
        await this.objectProblem(
          pod,
          `${ref}@${version}`,
          'EdgeObjectTooLarge',
          `${what} cannot be delivered to the edge: ${err.message}`,
          log,
        );
        continue;
      }
      objects.set(ref, { version });
      log.debug({ object: ref, version }, 'object published');
    }
  }

  /**
   * Requests the pod's ServiceAccount tokens (TokenRequest bound to the pod) when the node has none for this pod,
   * the set of audiences/lifetimes changed, or 80% of their lifetime has passed; publishes them as one object.
   */
  private async syncTokens(node: string, pod: Pod, spec: edge.EdgePodSpec, ref: ObjectKey, log: Logger): Promise<void> {
    const objects = this.objects.get(node)!;
    const keys = specTokenKeys(spec);
    const have = objects.get(ref)?.tokens;
    const nowMs = this.now().getTime();
    if (have && have.podUid === spec.uid && have.keys === keys.join(',') && nowMs < have.refreshAtMs) return;
    const serviceAccount = pod.spec?.serviceAccountName || 'default';
    const data: Record<string, Uint8Array> = {};
    let expiresAtMs = Number.MAX_SAFE_INTEGER;
    try {
      for (const k of keys) {
        const { audience, expirationSeconds } = parseTokenKey(k);
        const t = await this.deps.kube.createToken(spec.namespace, serviceAccount, {
          audience,
          expirationSeconds,
          pod: { name: spec.name, uid: spec.uid },
        });
        data[k] = new TextEncoder().encode(t.token);
        expiresAtMs = Math.min(expiresAtMs, t.expiresAtMs);
      }
    } catch (err) {
      const message = `requesting a token for ServiceAccount ${spec.namespace}/${serviceAccount} failed: ${(err as Error).message}`;
      await this.objectProblem(pod, `${ref}@token`, 'FailedTokenRequest', message, log);
      this.queue.addAfter(keyOf(spec.namespace, spec.name), 10_000);
      return;
    }
    const object = create(edge.EdgeObjectSchema, {
      namespace: spec.namespace,
      name: spec.name,
      resourceVersion: String(nowMs),
      data,
      expiresAtMs: BigInt(expiresAtMs),
      podUid: spec.uid,
    });
    await this.deps.bus.publishObject(node, 'token', object);
    objects.set(ref, publishedObject('token', object));
    log.debug({ expiresAt: new Date(expiresAtMs).toISOString() }, 'service account tokens published');
  }

  /** Tombstones each of the objects that no pod published to the node uses any more. */
  private async releaseRefs(node: string, refs: readonly ObjectKey[]): Promise<void> {
    const objects = this.objects.get(node);
    if (!objects) return;
    for (const ref of refs) {
      if (!objects.has(ref)) continue;
      if ([...this.published.values()].some((p) => p.node === node && p.refs.includes(ref))) continue;
      const { kind, key } = parseObjectKey(ref);
      objects.delete(ref);
      await this.deps.bus.tombstoneObject(node, kind, key);
      this.deps.log.debug({ node, object: ref }, 'object no longer used on the node: tombstone published');
    }
  }

  /** Records a Warning Event on the pod, once per problem key. */
  private async objectProblem(pod: Pod, problemKey: string, reason: string, message: string, log: Logger): Promise<void> {
    const k = `${pod.metadata!.uid}/${problemKey}`;
    log.warn({ reason }, message);
    if (this.objectProblems.has(k)) return;
    this.objectProblems.add(k);
    await this.deps.kube.createEvent(podEvent(pod, 'Warning', reason, message, this.now()));
  }

  private async applyStatus(pod: Pod, report: edge.PodStatusReport, node: string): Promise<void> {
    let current: Pod | undefined = pod;
    for (let attempt = 0; attempt < 5 && current; attempt++) {
      if (current.metadata!.uid !== report.uid) return; // a report about an older pod of the same name
      const status = podStatusFromReport(current, report, this.deps.facts.hostIP(node), this.now());
      if (!statusDiffers(current.status, status)) return;
      try {
        await this.deps.kube.replacePodStatus({ ...current, status });
        const created = current.metadata!.creationTimestamp;
        if (status.phase === 'Running' && current.status?.phase !== 'Running' && created) {
          this.deps.metrics?.podStarted(new Date(created).getTime(), this.now().getTime());
        }
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
        this.deps.metrics?.statusConflict();
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

function publishedObject(kind: ObjectKind, object: edge.EdgeObject): PublishedObject {
  if (kind !== 'token') return { version: object.resourceVersion };
  const issuedMs = Number(object.resourceVersion);
  const expiresMs = Number(object.expiresAtMs);
  return {
    version: object.resourceVersion,
    tokens: {
      podUid: object.podUid,
      keys: Object.keys(object.data).sort().join(','),
      refreshAtMs: issuedMs + 0.8 * Math.max(0, expiresMs - issuedMs),
    },
  };
}
