/**
 * The provider's view of the Kubernetes API: the few calls it makes, behind an interface so controllers can be
 * unit-tested with {@link ./fake.ts}. The real implementation wraps @kubernetes/client-node.
 */
import * as k8s from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.js';
import { DEVICE, DEVICE_MODEL, type Device, type DeviceModel, type DeviceStatus } from '../devices/types.js';

export type Pod = k8s.V1Pod;
export type Node = k8s.V1Node;
export type Lease = k8s.V1Lease;

/** status of an EdgeNode (edgefarm.io/v1alpha1), as manifests/crds/edgenode-crd.yaml defines it. */
export interface EdgeNodeStatus {
  connected: boolean;
  lastHeartbeatTime?: string;
  agentVersion?: string;
  podCount?: number;
  desiredSequence?: number;
  appliedSequence?: number;
  /**
   * The node's NATS identity, written by the registrar at join and renewal (decision 0008); the provider only reads it
   * (its own status patches leave it alone). `publicKey` is the node's wire id.
   */
  identity?: EdgeNodeIdentity;
}

/** status.identity of an EdgeNode: the NATS user key the node joined with, and its credentials' lifetime (RFC 3339). */
export interface EdgeNodeIdentity {
  publicKey: string;
  issuedAt?: string;
  expiresAt?: string;
}

export const EDGENODE = { group: 'edgefarm.io', version: 'v1alpha1', plural: 'edgenodes' } as const;

/** spec of an EdgeNode, as manifests/crds/edgenode-crd.yaml defines it (the apiserver validated it against the schema). */
export interface EdgeNodeSpec {
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
  autonomy?: { policy?: 'keep' | 'evict'; evictAfterSeconds?: number };
  reserved?: Record<string, string | number>;
  /** Unsafe sysctls (names, or prefixes ending in `*`) pods on the node may set: the kubelet's allowedUnsafeSysctls. */
  allowedUnsafeSysctls?: string[];
}

export interface EdgeNode {
  apiVersion?: string;
  kind?: string;
  metadata?: k8s.V1ObjectMeta;
  spec?: EdgeNodeSpec;
  status?: EdgeNodeStatus;
}

/** A list+watch cache of one kind of object (an informer). */
export interface Watcher<T> {
  /** Called for add/update; `deleted` for deletes. Handlers must be cheap: queue keys. */
  start(handlers: { changed: (obj: T) => void; deleted: (obj: T) => void; error?: (err: unknown) => void }): Promise<void>;
  /** From the informer cache; `namespace` is empty for cluster-scoped objects. */
  get(namespace: string, name: string): T | undefined;
  list(): readonly T[];
  stop(): Promise<void>;
}
export type PodWatch = Watcher<Pod>;

/** The objects a pod uses that the provider watches one by one (a watch per object, as the kubelet's managers do). */
export type WatchedKind = 'configmap' | 'secret';
export type WatchedObject = k8s.V1ConfigMap | k8s.V1Secret;

export interface TokenRequest {
  /** Empty: the apiserver's own audiences. */
  audience: string;
  expirationSeconds: number;
  pod: { name: string; uid: string };
}

/** Who a request is from, as authentication found it (authentication/v1 UserInfo). */
export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** What a request wants to do (authorization/v1 ResourceAttributes or NonResourceAttributes). */
export interface AccessAttributes {
  verb: string;
  resource?: { group: string; resource: string; subresource?: string; name?: string; namespace?: string };
  path?: string;
}

export interface KubeClient {
  getNode(name: string): Promise<Node | undefined>;
  createNode(node: Node): Promise<Node>;
  /** JSON merge patch of the Node object (metadata/spec). */
  patchNode(name: string, patch: object): Promise<Node>;
  /** JSON merge patch of the status subresource. */
  patchNodeStatus(name: string, patch: object): Promise<Node>;
  getLease(namespace: string, name: string): Promise<Lease | undefined>;
  createLease(lease: Lease): Promise<Lease>;
  /** Replace with optimistic concurrency (metadata.resourceVersion); throws a 409 on conflict. */
  replaceLease(lease: Lease): Promise<Lease>;
  getPod(namespace: string, name: string): Promise<Pod | undefined>;
  /** PUT of the status subresource with optimistic concurrency; throws a 409 on conflict. */
  replacePodStatus(pod: Pod): Promise<Pod>;
  /** Delete with a UID precondition so a same-named successor is never deleted. */
  deletePod(namespace: string, name: string, options: { uid: string; gracePeriodSeconds: number }): Promise<void>;
  /** Throws a 409 when metadata.name is set and an event of that name exists. */
  createEvent(event: k8s.CoreV1Event): Promise<void>;
  /** JSON merge patch of an Event; resolves false when no Event of that name exists. */
  patchEvent(namespace: string, name: string, patch: object): Promise<boolean>;
  /** Straight from the API (not a cache); undefined when there is none. */
  getEdgeNode(name: string): Promise<EdgeNode | undefined>;
  /** JSON merge patch of an EdgeNode's status; resolves false when no EdgeNode of that name exists. */
  patchEdgeNodeStatus(name: string, status: EdgeNodeStatus): Promise<boolean>;
  /** Delete with a UID precondition; resolves false when it was gone already. */
  deleteNode(name: string, uid: string): Promise<boolean>;
  /** Leases in a namespace matching a label selector. */
  listLeases(namespace: string, labelSelector: string): Promise<Lease[]>;
  deleteLease(namespace: string, name: string): Promise<void>;
  /** Pods bound to any node (spec.nodeName set); the caller filters for the nodes it serves. */
  podWatch(): PodWatch;
  /** Every Service (the kubelet's service environment variables, podcontroller/service-env.ts). */
  serviceWatch(): Watcher<k8s.V1Service>;
  /**
   * A watch of one ConfigMap or Secret (list and watch with fieldSelector metadata.name=<name> in its namespace): what
   * the Node authorizer lets a node read of an object its pods use, where a cluster-wide watch would need every
   * Secret of the cluster (and hold them all in memory).
   */
  objectWatch(kind: WatchedKind, namespace: string, name: string): Watcher<WatchedObject>;
  /** TokenRequest for a ServiceAccount, bound to a pod (as the kubelet requests projected tokens). */
  createToken(namespace: string, serviceAccount: string, request: TokenRequest): Promise<{ token: string; expiresAtMs: number }>;
  /** Every EdgeNode. */
  edgeNodeWatch(): Watcher<EdgeNode>;
  /** Every Device (devices.edgefarm.io), in every namespace; the device controller keeps those of served nodes. */
  deviceWatch(): Watcher<Device>;
  /** Every DeviceModel (devices.edgefarm.io), in every namespace. */
  deviceModelWatch(): Watcher<DeviceModel>;
  /** Merge-patches a Device's status subresource; resolves false when the Device is gone. */
  patchDeviceStatus(namespace: string, name: string, status: DeviceStatus): Promise<boolean>;
  /** TokenReview: the user a bearer token belongs to, or undefined when the apiserver does not accept it. */
  reviewToken(token: string): Promise<UserInfo | undefined>;
  /** SubjectAccessReview: whether the user may do it, and the authorizer's reason. */
  reviewAccess(user: UserInfo, attrs: AccessAttributes): Promise<{ allowed: boolean; reason?: string }>;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export class RealKubeClient implements KubeClient {
  private readonly core: k8s.CoreV1Api;
  private readonly coordination: k8s.CoordinationV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly authn: k8s.AuthenticationV1Api;
  private readonly authz: k8s.AuthorizationV1Api;

  constructor(private readonly kc: k8s.KubeConfig) {
    this.authn = kc.makeApiClient(k8s.AuthenticationV1Api);
    this.authz = kc.makeApiClient(k8s.AuthorizationV1Api);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  getNode(name: string) {
    return orUndefined(this.core.readNode({ name }));
  }
  createNode(node: Node) {
    return this.core.createNode({ body: node });
  }
  patchNode(name: string, patch: object) {
    return this.core.patchNode({ name, body: patch }, mergePatch);
  }
  patchNodeStatus(name: string, patch: object) {
    return this.core.patchNodeStatus({ name, body: patch }, mergePatch);
  }
  getLease(namespace: string, name: string) {
    return orUndefined(this.coordination.readNamespacedLease({ name, namespace }));
  }
  createLease(lease: Lease) {
    return this.coordination.createNamespacedLease({ namespace: lease.metadata!.namespace!, body: lease });
  }
  replaceLease(lease: Lease) {
    return this.coordination.replaceNamespacedLease({
      name: lease.metadata!.name!,
      namespace: lease.metadata!.namespace!,
      body: lease,
    });
  }
  getPod(namespace: string, name: string) {
    return orUndefined(this.core.readNamespacedPod({ name, namespace }));
  }
  replacePodStatus(pod: Pod) {
    return this.core.replaceNamespacedPodStatus({
      name: pod.metadata!.name!,
      namespace: pod.metadata!.namespace!,
      body: pod,
    });
  }
  async deletePod(namespace: string, name: string, options: { uid: string; gracePeriodSeconds: number }) {
    try {
      await this.core.deleteNamespacedPod({
        name,
        namespace,
        gracePeriodSeconds: options.gracePeriodSeconds,
        body: { gracePeriodSeconds: options.gracePeriodSeconds, preconditions: { uid: options.uid } },
      });
    } catch (err) {
      // Gone already, or a different pod (new UID) now holds the name (the UID precondition fails with a Conflict):
      // nothing of ours left to delete.
      if (isNotFound(err) || isConflict(err)) return;
      throw err;
    }
  }
  async createEvent(event: k8s.CoreV1Event) {
    await this.core.createNamespacedEvent({ namespace: event.metadata.namespace ?? 'default', body: event });
  }
  async patchEvent(namespace: string, name: string, patch: object) {
    return (await orUndefined(this.core.patchNamespacedEvent({ name, namespace, body: patch }, mergePatch))) !== undefined;
  }
  getEdgeNode(name: string) {
    return orUndefined(this.custom.getClusterCustomObject({ ...EDGENODE, name }) as Promise<EdgeNode>);
  }
  async patchEdgeNodeStatus(name: string, status: EdgeNodeStatus) {
    try {
      await this.custom.patchClusterCustomObjectStatus({ ...EDGENODE, name, body: { status } }, mergePatch);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
  async deleteNode(name: string, uid: string) {
    try {
      await this.core.deleteNode({ name, body: { preconditions: { uid } } });
      return true;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) return false;
      throw err;
    }
  }
  async deleteLease(namespace: string, name: string) {
    await orUndefined(this.coordination.deleteNamespacedLease({ name, namespace }));
  }
  async listLeases(namespace: string, labelSelector: string) {
    return (await this.coordination.listNamespacedLease({ namespace, labelSelector })).items;
  }
  podWatch(): PodWatch {
    const fieldSelector = 'spec.nodeName!=';
    return this.watcher<Pod>('/api/v1/pods', () => this.core.listPodForAllNamespaces({ fieldSelector }), fieldSelector);
  }
  serviceWatch(): Watcher<k8s.V1Service> {
    return this.watcher<k8s.V1Service>('/api/v1/services', () => this.core.listServiceForAllNamespaces());
  }
  objectWatch(kind: WatchedKind, namespace: string, name: string): Watcher<WatchedObject> {
    const fieldSelector = `metadata.name=${name}`;
    const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/${kind === 'configmap' ? 'configmaps' : 'secrets'}`;
    const list = (): Promise<k8s.KubernetesListObject<WatchedObject>> =>
      kind === 'configmap'
        ? this.core.listNamespacedConfigMap({ namespace, fieldSelector })
        : this.core.listNamespacedSecret({ namespace, fieldSelector });
    return this.watcher<WatchedObject>(path, list, fieldSelector);
  }
  async createToken(namespace: string, serviceAccount: string, request: TokenRequest) {
    const res = await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: {
        spec: {
          audiences: request.audience ? [request.audience] : [],
          expirationSeconds: request.expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: request.pod.name, uid: request.pod.uid },
        },
      },
    });
    if (!res.status?.token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    const expires = res.status.expirationTimestamp;
    return { token: res.status.token, expiresAtMs: expires ? new Date(expires).getTime() : Date.now() + request.expirationSeconds * 1000 };
  }
  edgeNodeWatch(): Watcher<EdgeNode> {
    const { group, version, plural } = EDGENODE;
    return this.watcher<EdgeNode>(
      `/apis/${group}/${version}/${plural}`,
      () => this.custom.listClusterCustomObject({ group, version, plural }) as Promise<k8s.KubernetesListObject<EdgeNode>>,
    );
  }

  deviceWatch(): Watcher<Device> {
    const { group, version, plural } = DEVICE;
    return this.watcher<Device>(
      `/apis/${group}/${version}/${plural}`,
      () => this.custom.listClusterCustomObject({ group, version, plural }) as Promise<k8s.KubernetesListObject<Device>>,
    );
  }
  async patchDeviceStatus(namespace: string, name: string, status: DeviceStatus) {
    try {
      await this.custom.patchNamespacedCustomObjectStatus({ ...DEVICE, namespace, name, body: { status } }, mergePatch);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
  deviceModelWatch(): Watcher<DeviceModel> {
    const { group, version, plural } = DEVICE_MODEL;
    return this.watcher<DeviceModel>(
      `/apis/${group}/${version}/${plural}`,
      () => this.custom.listClusterCustomObject({ group, version, plural }) as Promise<k8s.KubernetesListObject<DeviceModel>>,
    );
  }

  async reviewToken(token: string): Promise<UserInfo | undefined> {
    const res = await this.authn.createTokenReview({ body: { spec: { token } } });
    const u = res.status?.user;
    if (!res.status?.authenticated || !u?.username) return undefined;
    return { username: u.username, uid: u.uid, groups: u.groups ?? [], extra: u.extra };
  }
  async reviewAccess(user: UserInfo, attrs: AccessAttributes) {
    const res = await this.authz.createSubjectAccessReview({
      body: {
        spec: {
          user: user.username,
          uid: user.uid,
          groups: user.groups,
          extra: user.extra,
          resourceAttributes: attrs.resource ? { verb: attrs.verb, ...attrs.resource } : undefined,
          nonResourceAttributes: attrs.path !== undefined ? { verb: attrs.verb, path: attrs.path } : undefined,
        },
      },
    });
    return { allowed: res.status?.allowed === true && res.status.denied !== true, reason: res.status?.reason };
  }

  private watcher<T extends k8s.KubernetesObject>(
    path: string,
    list: () => Promise<k8s.KubernetesListObject<T>>,
    fieldSelector?: string,
  ): Watcher<T> {
    const informer = new k8s.ListWatch<T>(path, new k8s.Watch(this.kc), list, false, undefined, fieldSelector);
    // client-node's ListWatch stops for good on an error other than 410: restart it (relist + watch) with backoff.
    let stopped = false;
    let restartTimer: NodeJS.Timeout | undefined;
    let delayMs = 500;
    return {
      start: async (handlers) => {
        informer.on('add', handlers.changed);
        informer.on('update', handlers.changed);
        informer.on('delete', handlers.deleted);
        informer.on('connect', () => (delayMs = 500));
        informer.on('error', (err) => {
          handlers.error?.(err);
          if (stopped) return;
          restartTimer = setTimeout(() => void informer.start().catch(() => undefined), delayMs);
          delayMs = Math.min(delayMs * 2, 30_000);
        });
        await informer.start();
      },
      get: (namespace, name) => informer.get(name, namespace || undefined),
      list: () => informer.list(),
      stop: async () => {
        stopped = true;
        clearTimeout(restartTimer);
        await informer.stop();
      },
    };
  }
}
