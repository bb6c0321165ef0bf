/**
 * PodController: the pod publisher. For every pod bound to a node this replica serves, keeps the node's desired
 * state on the hub in step with the API: the pod's EdgePodSpec (translate.ts), the objects it uses before it, and a
 * tombstone once it is gone. The jobs around a pod are done by parts that each own their state:
 *
 * - ObjectManager (objects.ts): ConfigMaps and Secrets on each node; TokenManager (tokens.ts): ServiceAccount tokens,
 *   renewed at 80% of their lifetime;
 * - NodeClients (kube/node-clients.ts): what is done for a node (reading its pods' objects, their tokens, their status
 *   and deletion) is done as that node, so the apiserver scopes it as it scopes a kubelet (decision 0010);
 * - StatusManager (status-manager.ts): reports -> pod status, and the force-delete once the edge confirmed removal;
 * - rejectAtAdmission (admit.ts): pods the kubelet would refuse (SysctlForbidden, PodOSNotSupported);
 * - rejectUnsupported (reject.ts): pods the edge cannot run; PodWarnings (warnings.ts): Warning Events, once each;
 * - PublishedPods (published.ts): what is on the hub per pod, written only here;
 * - ServiceEnv (service-env.ts): the kubelet's service environment variables, from a Service informer; a Service
 *   change syncs the pods of its namespace (all, for default/kubernetes), whose spec then carries the new values.
 *
 * Level-triggered: the queue carries pod keys (`ns/name`) and `sync` re-reads the pod from the informer cache,
 * decides, then acts; safe to run any number of times. Pod, ConfigMap and Secret changes, reports, due tokens and a
 * node's reconnect queue pod keys; nothing calls back out of a sync except through the bus and the API.
 *
 * Which nodes are served it reads from the membership, whose announcements it follows: taking a node over seeds what
 * the hub holds (nothing still wanted is republished or tombstoned); giving it up forgets it; a deleted EdgeNode's
 * pods are tombstoned; a node with a new wire id gets everything published again (the bus names it by the new id).
 * What it knows of a node (allocatable, hostIP, connectivity) it reads from the node facts.
 */
import type { Logger } from 'pino';
import { objectKey, parseObjectKey, parsePodKey, podKeyString, podObjectKeys, type ObjectKey, type edge } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { V1Service } from '@kubernetes/client-node';
import type { KubeClient, Pod, PodWatch, Watcher } from '../kube/client.js';
import { ProviderAsNodes, podCallsAsNodes, type NodeClients } from '../kube/node-clients.js';
import { BoundPods } from '../kube/bound-pods.js';
import type { PodBus } from '../bus/instrumented.js';
import type { MembershipListener, ReleaseReason, Rekey, ServedNodes, Takeover } from '../membership/membership.js';
import type { NodeFactsReader } from '../nodecontroller/facts.js';
import type { ProviderMetrics } from '../metrics/metrics.js';
import { translatePod, specFingerprint } from './translate.js';
import { ObjectManager } from './objects.js';
import { TokenManager } from './tokens.js';
import { StatusManager } from './status-manager.js';
import { PublishedPods } from './published.js';
import { PodWarnings } from './warnings.js';
import { rejectUnsupported } from './reject.js';
import { admissionRefusal, rejectAtAdmission, type AdmissionReason } from './admit.js';
import { ServiceEnv } from './service-env.js';

export interface PodControllerDeps {
  kube: KubeClient;
  /** The API as each served node (default: every node as `kube`, the provider itself). */
  nodes?: NodeClients;
  /** Where desired state goes (the hub, through DesiredSequences). */
  bus: PodBus;
  /** The pod informer (pods bound to any node); started and stopped here. */
  pods: PodWatch;
  /**
   * The Service informer (every Service): the kubelet's service environment variables; started and stopped here.
   * Without it, pods get none.
   */
  services?: Watcher<V1Service>;
  /** The nodes served now. */
  served: ServedNodes;
  /**
   * allocatable (resourceFieldRef of limits a container does not set), hostIP (status.hostIP), connectivity (while
   * connected, the node's reports are the authority on pod status, as a kubelet's) and reconnects.
   */
  facts: NodeFactsReader;
  log: Logger;
  /** Status report outcomes, apply times, conflicts and pod startup times; none recorded without it. */
  metrics?: Pick<ProviderMetrics, 'statusReport' | 'statusApplied' | 'statusConflict' | 'podStarted'> &
    Partial<Pick<ProviderMetrics, 'podRejected'>>;
  now?: () => Date;
  /**
   * Pods synced at once (default 16). A sync is I/O: publish to the hub, write the status to the API (~0.1 s each
   * under load); with 4 workers a burst of 10,000 pods went at ~25 pods/s and a site's pods waited minutes behind other
   * sites' (docs/decisions/0007).
   */
  workers?: number;
}

/** How often token lifetimes are checked. */
const TOKEN_CHECK_MS = 15_000;

const keyOf = (pod: Pod) => podKeyString({ namespace: pod.metadata!.namespace!, name: pod.metadata!.name! });

export class PodController implements MembershipListener {
  private readonly queue: WorkQueue;
  private readonly bound: BoundPods;
  private readonly now: () => Date;
  private readonly published = new PublishedPods();
  private readonly warnings: PodWarnings;
  private readonly objects: ObjectManager;
  private readonly tokens: TokenManager;
  private readonly status: StatusManager;
  private readonly nodes: NodeClients;
  /** Pod status writes and deletes, as the pod's node. */
  private readonly podCalls: Pick<KubeClient, 'replacePodStatus' | 'getPod' | 'deletePod'>;
  /** Per node, how often its wire id changed: a publish begun before a change is not recorded as published after it. */
  private readonly rekeys = new Map<string, number>();
  private tokenTimer?: NodeJS.Timeout;
  private readonly services?: ServiceEnv;

  constructor(private readonly deps: PodControllerDeps) {
    const { kube, bus, log, facts, metrics } = deps;
    const now = (this.now = deps.now ?? (() => new Date()));
    const nodes = (this.nodes = deps.nodes ?? new ProviderAsNodes(kube));
    this.bound = new BoundPods(deps.pods);
    if (deps.services) this.services = new ServiceEnv(deps.services);
    this.warnings = new PodWarnings(kube, now);
    this.objects = new ObjectManager({ nodes, bus, warnings: this.warnings, log });
    this.tokens = new TokenManager({ nodes, bus, warnings: this.warnings, now });
    this.podCalls = podCallsAsNodes(nodes, kube, (ns, name) => deps.pods.get(ns, name)?.spec?.nodeName);
    const podCalls = this.podCalls;
    // Pod status and deletes as the pod's node; the Warning Event about refused reports as the provider (a Node's Event).
    const statusKube: Pick<KubeClient, 'replacePodStatus' | 'getPod' | 'deletePod' | 'createEvent'> = {
      replacePodStatus: (...a) => podCalls.replacePodStatus(...a),
      getPod: (...a) => podCalls.getPod(...a),
      deletePod: (...a) => podCalls.deletePod(...a),
      createEvent: (...a) => kube.createEvent(...a),
    };
    this.status = new StatusManager({ kube: statusKube, bus, facts, metrics, now });
    this.queue = new WorkQueue((key) => this.sync(key), {
      workers: deps.workers ?? 16,
      onError: (key, err, attempt) => log.warn({ key, attempt, err: (err as Error).message }, 'pod sync failed; will retry'),
    });
    facts.onConnectivity((node, connected) => {
      if (connected) this.resyncNode(node);
    });
  }

  /**
   * Starts the ConfigMap, Secret, Service and pod watches and the token check. Pods are synced only for served nodes;
   * the Services are listed before the first pod is translated.
   */
  async start(): Promise<void> {
    await this.objects.start((key) => this.objectChanged(key));
    await this.services?.start(
      (namespace, name) => this.serviceChanged(namespace, name),
      (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'service watch failed; restarting'),
    );
    await this.deps.pods.start({
      changed: (pod) => this.queue.add(keyOf(pod)),
      deleted: (pod) => this.queue.add(keyOf(pod)),
      error: (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'pod watch failed; restarting'),
    });
    this.tokenTimer = setInterval(() => this.renewDueTokens(), TOKEN_CHECK_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.tokenTimer);
    await this.queue.stop();
    await this.deps.pods.stop();
    await this.services?.stop();
    await this.objects.stop();
  }

  /** Resolves once no sync is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  /** Membership: starts serving nodes, with the hub's desired state for them as read back. */
  taking({ nodes, desired }: Takeover): void {
    const added = new Set(nodes.map((n) => n.name));
    for (const n of added) {
      this.objects.addNode(n);
      this.tokens.addNode(n);
    }
    const onHub = new Map<string, ObjectKey[]>();
    for (const r of desired) {
      if (!added.has(r.node)) continue;
      if (r.kind === 'pod') {
        if (r.spec) {
          const refs = podObjectKeys(r.spec);
          this.published.set(podKeyString(r.key), { node: r.node, uid: r.spec.uid, fingerprint: specFingerprint(r.spec), refs });
        }
      } else if (r.kind !== 'node' && r.kind !== 'device' && r.object) {
        const key = objectKey(r.kind, r.key);
        (r.kind === 'token' ? this.tokens : this.objects).seed(r.node, key, r.object);
        onHub.set(r.node, [...(onHub.get(r.node) ?? []), key]);
      }
    }
    // Objects no published pod uses any more (their pod was tombstoned before the object was).
    for (const [n, keys] of onHub)
      void this.releaseRefs(n, keys).catch((err: unknown) =>
        this.deps.log.warn({ node: n, err: (err as Error).message }, 'object cleanup failed'),
      );
    // Pods that were published but are gone from the API (deleted while nobody served the node) get tombstones now.
    for (const n of added) for (const key of this.published.onNode(n)) this.queue.add(key);
    for (const pod of this.bound.on(added)) this.queue.add(keyOf(pod));
  }

  /**
   * Membership: the node is no longer served. Handed over: forgotten without touching its desired state (the new
   * owner's now). Deleted (its EdgeNode is gone): every pod published to it gets a tombstone, so its site stops them.
   */
  released(node: string, reason: ReleaseReason): void {
    if (reason === 'deleted') {
      for (const key of this.published.onNode(node)) this.queue.add(key);
      // Its pods are only tombstoned now: nothing more is read or written as the node.
      this.objects.stopWatching(node);
      this.nodes.forget(node);
      return;
    }
    this.published.forgetNode(node);
    this.objects.forgetNode(node);
    this.tokens.forgetNode(node);
    this.status.forgetNode(node);
    this.warnings.forgetNode(node);
    this.rekeys.delete(node);
    this.nodes.forget(node);
  }

  /**
   * Membership: the node's wire id changed; the bus names it by the new one already. Everything is published again
   * under it, as on a node with nothing published: the pods, their ConfigMaps, Secrets and (new) tokens. Nothing in
   * the API changes; the old wire id's subjects are retired elsewhere (bus/retired-ids.ts).
   */
  rekeyed(node: string, change: Rekey): void {
    this.rekeys.set(node, (this.rekeys.get(node) ?? 0) + 1);
    this.published.forgetNode(node);
    this.objects.addNode(node);
    this.tokens.addNode(node);
    this.deps.log.info({ node, from: change.from, to: change.to }, 'publishing the desired state again under the new wire id');
    this.resyncNode(node);
  }

  /** A status report from the hub (any order, possibly repeated); reports of nodes not served are ignored. */
  onReport(node: string, report: edge.PodStatusReport): void {
    if (!this.deps.served.serves(node)) return;
    if (this.status.record(node, report)) this.queue.add(podKeyString(report));
  }

  /** Syncs every pod of a node again (the node reconnected: its reports are the authority again). */
  resyncNode(node: string): void {
    for (const pod of this.bound.on([node])) this.queue.add(keyOf(pod));
  }

  /** Queues the pods whose ServiceAccount tokens are due for renewal. */
  renewDueTokens(): void {
    for (const key of this.tokens.due(this.now().getTime())) this.queue.add(key);
  }

  /** A ConfigMap or Secret changed: sync every published pod that uses it (the sync delivers it). */
  private objectChanged(key: ObjectKey): void {
    for (const podKey of this.published.using(key)) this.queue.add(podKey);
  }

  /**
   * A Service changed: sync every published pod of its namespace (of every namespace, for the default namespace's
   * `kubernetes` Service); a pod whose variables change is published again, which restarts none of its containers.
   */
  private serviceChanged(namespace: string, name: string): void {
    const everywhere = namespace === 'default' && name === 'kubernetes';
    for (const key of this.published.keys()) if (everywhere || parsePodKey(key).namespace === namespace) this.queue.add(key);
  }

  private async sync(key: string): Promise<void> {
    const { namespace, name } = parsePodKey(key);
    const pod = this.deps.pods.get(namespace, name);
    const node = pod?.spec?.nodeName;
    const published = this.published.get(key);

    if (!pod || !node || !this.deps.served.serves(node)) {
      if (!pod) this.warnings.forget(key);
      if (published) {
        await this.deps.bus.tombstonePod(published.node, { namespace, name });
        await this.status.podGone(published.node, published.uid);
        this.published.delete(key);
        await this.releaseRefs(published.node, published.refs);
        this.deps.log.info({ key, node: published.node }, 'pod gone from the API: tombstone published');
      }
      return;
    }
    const log = this.deps.log.child({ pod: key, node });
    if (await this.status.finishDelete(pod, node, log)) return;

    const refusal = admissionRefusal(pod, this.deps.facts.allowedUnsafeSysctls?.(node));
    if (refusal) {
      if (published) {
        await this.deps.bus.tombstonePod(published.node, { namespace, name });
        this.published.delete(key);
        await this.releaseRefs(published.node, published.refs);
      }
      const rejected = (reason: AdmissionReason) => this.deps.metrics?.podRejected?.(reason);
      await rejectAtAdmission({ kube: this.podCalls, warnings: this.warnings, rejected }, pod, refusal, log);
      return;
    }
    const services = this.services;
    const translation = translatePod(pod, {
      allocatable: this.deps.facts.allocatable(node),
      serviceEnv: services && ((ns, links) => services.env(ns, links)),
    });
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
      await rejectUnsupported({ kube: this.podCalls, warnings: this.warnings }, pod, translation.unsupported, log);
      return;
    }
    const spec = translation.spec;
    for (const why of translation.refusedEphemeral) {
      // The pod keeps running without it, as a kubelet that cannot start an ephemeral container leaves the others be.
      if (await this.warnings.warn(pod, `ephemeral: ${why}`, 'EdgeUnsupported', `ephemeral container not started at the edge: ${why}`))
        log.warn({ problem: why }, 'ephemeral container refused');
    }
    const refs = podObjectKeys(spec);
    // The objects go first, so the site has them when the pod arrives (the site stream keeps this order).
    if (!spec.deleting) await this.deliverObjects(key, node, pod, spec, refs, log);
    const uid = pod.metadata!.uid!;
    const fingerprint = specFingerprint(spec);
    if (published?.fingerprint !== fingerprint || published.uid !== uid || published.node !== node) {
      const rekeys = this.rekeys.get(node);
      const seq = await this.deps.bus.publishPod(node, spec);
      if (this.rekeys.get(node) !== rekeys) {
        this.queue.add(key); // published under the wire id before the change: again under the new one
        return;
      }
      this.published.set(key, { node, uid, fingerprint, refs });
      log.debug({ seq, deleting: spec.deleting }, 'desired state published');
      if (published)
        await this.releaseRefs(
          published.node,
          published.refs.filter((r) => published.node !== node || !refs.includes(r)),
        );
    }
    await this.status.sync(pod, node);
  }

  /** Delivers each object the pod uses to its node: ConfigMaps and Secrets, and the pod's tokens. */
  private async deliverObjects(key: string, node: string, pod: Pod, spec: edge.EdgePodSpec, refs: ObjectKey[], log: Logger): Promise<void> {
    for (const ref of refs) {
      if (parseObjectKey(ref).kind !== 'token') await this.objects.deliver(node, pod, ref, log);
      else if (!(await this.tokens.deliver(node, pod, spec, ref, log))) this.queue.addAfter(key, 10_000);
    }
  }

  /** Tombstones each of the objects that no pod published to the node uses any more. */
  private async releaseRefs(node: string, refs: readonly ObjectKey[]): Promise<void> {
    for (const ref of refs) {
      if (this.published.usedOn(node, ref)) continue;
      const manager = parseObjectKey(ref).kind === 'token' ? this.tokens : this.objects;
      if (await manager.release(node, ref))
        this.deps.log.debug({ node, object: ref }, 'object no longer used on the node: tombstone published');
    }
  }
}
