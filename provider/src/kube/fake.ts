/**
 * A hand-written KubeClient for unit tests: an in-memory store that records every call and can fail calls on
 * demand (`failNext`). Pods are served to PodWatch handlers synchronously when tests call `emit*`.
 */
import type { CoreV1Event, KubernetesObject, V1ConfigMap, V1Secret, V1Service } from '@kubernetes/client-node';
import type {
  AccessAttributes,
  EdgeNode,
  EdgeNodeStatus,
  KubeClient,
  Lease,
  Node,
  Pod,
  PodWatch,
  TokenRequest,
  UserInfo,
  Watcher,
  WatchedKind,
  WatchedObject,
} from './client.js';
import type { Device, DeviceModel, DeviceStatus } from '../devices/types.js';

/** The reason the apiserver gives for an HTTP status when the fake is not told one. */
const DEFAULT_REASONS: Record<number, string> = { 404: 'NotFound', 409: 'Conflict', 422: 'Invalid', 500: 'InternalError' };

/**
 * An API error as @kubernetes/client-node's ApiException carries it: the HTTP status as `code`, the v1.Status as
 * JSON text in `body` (its `reason` tells a 409 AlreadyExists from a 409 Conflict; see errors.ts).
 */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly body: string;
  constructor(
    readonly code: number,
    message: string,
    readonly reason: string | undefined = DEFAULT_REASONS[code],
  ) {
    super(message);
    this.body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });
  }
}

/** RFC 7386 JSON merge patch, as the apiserver applies it to custom and built-in objects. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** What a client gets back is its own copy, as over the wire: never the stored object a later write changes. */
function copy<T>(o: T): T {
  return o === undefined ? o : structuredClone(o);
}

type Handlers<T> = Parameters<Watcher<T>['start']>[0];

/** An in-memory namespaced object store with its watches (the whole store, or one object); `set` and `delete` notify them. */
export class FakeStore<T extends KubernetesObject> implements Watcher<T> {
  readonly items = new Map<string, T>();
  private readonly watches = new Map<Handlers<T>, string | undefined>();
  private own?: Handlers<T>;
  private rv = 1000;
  async start(handlers: Handlers<T>) {
    this.own = handlers;
    this.watches.set(handlers, undefined);
  }
  get(namespace: string, name: string) {
    return this.items.get(`${namespace}/${name}`);
  }
  list() {
    return [...this.items.values()];
  }
  async stop() {
    if (this.own) this.watches.delete(this.own);
    this.own = undefined;
  }
  /** How many watches are open (each object watch counts once). */
  get openWatches(): number {
    return this.watches.size;
  }
  /** A watch of the one object `namespace/name`, as KubeClient.objectWatch; `fail` makes its start fail with that error. */
  objectWatch(namespace: string, name: string, fail?: unknown): Watcher<T> {
    const key = `${namespace}/${name}`;
    let mine: Handlers<T> | undefined;
    return {
      start: async (handlers) => {
        if (fail !== undefined) {
          handlers.error?.(fail);
          return;
        }
        mine = handlers;
        this.watches.set(handlers, key);
        const obj = this.items.get(key);
        if (obj) handlers.changed(obj);
      },
      get: (ns, n) => (mine && `${ns}/${n}` === key ? this.items.get(key) : undefined),
      list: () => (mine && this.items.has(key) ? [this.items.get(key)!] : []),
      stop: async () => {
        if (mine) this.watches.delete(mine);
        mine = undefined;
      },
    };
  }
  private notify(key: string, f: (h: Handlers<T>) => void): void {
    for (const [h, only] of [...this.watches]) if (only === undefined || only === key) f(h);
  }
  /** Stores the object with a new resourceVersion and notifies the watch. */
  set(obj: T): T {
    const stored = { ...obj, metadata: { uid: `uid-${obj.metadata!.name}`, ...obj.metadata, resourceVersion: String(++this.rv) } };
    const key = `${obj.metadata!.namespace}/${obj.metadata!.name}`;
    this.items.set(key, stored);
    this.notify(key, (h) => h.changed(stored));
    return stored;
  }
  delete(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const obj = this.items.get(key);
    this.items.delete(key);
    if (obj) this.notify(key, (h) => h.deleted(obj));
  }
}

export class FakeKubeClient implements KubeClient {
  readonly calls: string[] = [];
  readonly nodes = new Map<string, Node>();
  readonly leases = new Map<string, Lease>();
  readonly pods = new Map<string, Pod>();
  readonly events: CoreV1Event[] = [];
  /** EdgeNode objects by name. */
  readonly edgeNodes = new Map<string, EdgeNode>();
  readonly configMaps: FakeStore<WatchedObject> = new FakeStore<V1ConfigMap>();
  readonly secrets: FakeStore<WatchedObject> = new FakeStore<V1Secret>();
  /** Tokens issued by createToken, in order. */
  readonly tokens: { namespace: string; serviceAccount: string; request: TokenRequest; token: string }[] = [];
  /** Lifetime of issued tokens; the request's expirationSeconds when undefined. */
  tokenSeconds?: number;
  now = () => Date.now();
  /** Bearer tokens TokenReview accepts, and whose they are. */
  readonly tokenUsers = new Map<string, UserInfo>();
  /** SubjectAccessReview answers: allowed when this returns true (default: members of system:masters). */
  allow: (user: UserInfo, attrs: AccessAttributes) => boolean = (user) => user.groups.includes('system:masters');
  private readonly failures = new Map<string, unknown[]>();
  private handlers?: Handlers<Pod>;
  private edgeNodeHandlers?: Handlers<EdgeNode>;
  private rv = 100;

  /** The next call of `method` throws `err`. */
  failNext(method: string, err: unknown): void {
    this.failures.set(method, [...(this.failures.get(method) ?? []), err]);
  }

  private record(method: string, detail = ''): void {
    this.calls.push(detail ? `${method} ${detail}` : method);
    const queued = this.failures.get(method);
    if (queued?.length) throw queued.shift();
  }
  private nextRv(): string {
    return String(++this.rv);
  }

  async getNode(name: string) {
    this.record('getNode', name);
    return copy(this.nodes.get(name));
  }
  async createNode(node: Node) {
    this.record('createNode', node.metadata!.name);
    if (this.nodes.has(node.metadata!.name!)) throw new ApiError(409, 'exists', 'AlreadyExists');
    const created = { ...node, metadata: { ...node.metadata, uid: `uid-${node.metadata!.name}`, resourceVersion: this.nextRv() } };
    this.nodes.set(node.metadata!.name!, created);
    return copy(created);
  }
  async patchNode(name: string, patch: object) {
    this.record('patchNode', name);
    const n = this.nodes.get(name);
    if (!n) throw new ApiError(404, 'not found');
    const rv = (patch as { metadata?: { resourceVersion?: string } }).metadata?.resourceVersion;
    if (rv !== undefined && rv !== n.metadata!.resourceVersion) throw new ApiError(409, 'conflict');
    const next = mergePatch(n, patch) as Node;
    next.metadata!.resourceVersion = this.nextRv();
    this.nodes.set(name, next);
    return copy(next);
  }
  async deleteNode(name: string, uid: string) {
    this.record('deleteNode', name);
    if (this.nodes.get(name)?.metadata?.uid !== uid) return false;
    this.nodes.delete(name);
    return true;
  }
  async patchNodeStatus(name: string, patch: object) {
    this.record('patchNodeStatus', name);
    const n = this.nodes.get(name);
    if (!n) throw new ApiError(404, 'not found');
    n.status = { ...n.status, ...(patch as { status: object }).status };
    return copy(n);
  }
  async getLease(namespace: string, name: string) {
    this.record('getLease', `${namespace}/${name}`);
    return this.leases.get(`${namespace}/${name}`);
  }
  async listLeases(namespace: string, labelSelector: string) {
    this.record('listLeases', `${namespace} ${labelSelector}`);
    return [...this.leases.values()].filter(
      (l) => l.metadata!.namespace === namespace && l.metadata!.labels?.[labelSelector] !== undefined,
    );
  }
  async deleteLease(namespace: string, name: string) {
    this.record('deleteLease', `${namespace}/${name}`);
    this.leases.delete(`${namespace}/${name}`);
  }
  async createLease(lease: Lease) {
    this.record('createLease', lease.metadata!.name);
    if (this.leases.has(`${lease.metadata!.namespace}/${lease.metadata!.name}`)) throw new ApiError(409, 'exists', 'AlreadyExists');
    const l = { ...lease, metadata: { ...lease.metadata, resourceVersion: this.nextRv() } };
    this.leases.set(`${lease.metadata!.namespace}/${lease.metadata!.name}`, l);
    return l;
  }
  async replaceLease(lease: Lease) {
    this.record('replaceLease', lease.metadata!.name);
    const key = `${lease.metadata!.namespace}/${lease.metadata!.name}`;
    const cur = this.leases.get(key);
    if (!cur) throw new ApiError(404, 'not found');
    if (cur.metadata!.resourceVersion !== lease.metadata!.resourceVersion) throw new ApiError(409, 'conflict');
    const l = { ...lease, metadata: { ...lease.metadata, resourceVersion: this.nextRv() } };
    this.leases.set(key, l);
    return l;
  }
  async getPod(namespace: string, name: string) {
    this.record('getPod', `${namespace}/${name}`);
    return this.pods.get(`${namespace}/${name}`);
  }
  async replacePodStatus(pod: Pod) {
    const key = `${pod.metadata!.namespace}/${pod.metadata!.name}`;
    this.record('replacePodStatus', key);
    const cur = this.pods.get(key);
    if (!cur) throw new ApiError(404, 'not found');
    if (cur.metadata!.resourceVersion !== pod.metadata!.resourceVersion) throw new ApiError(409, 'conflict');
    const next = { ...cur, status: pod.status, metadata: { ...cur.metadata, resourceVersion: this.nextRv() } };
    this.pods.set(key, next);
    return next;
  }
  async deletePod(namespace: string, name: string, options: { uid: string; gracePeriodSeconds: number }) {
    const key = `${namespace}/${name}`;
    this.record('deletePod', `${key} grace=${options.gracePeriodSeconds}`);
    const cur = this.pods.get(key);
    if (cur?.metadata?.uid === options.uid) this.pods.delete(key);
  }
  async createEvent(event: CoreV1Event) {
    this.record('createEvent', event.reason);
    const { namespace, name } = event.metadata;
    if (name && this.events.some((e) => e.metadata.namespace === namespace && e.metadata.name === name))
      throw new ApiError(409, 'already exists', 'AlreadyExists');
    this.events.push(event);
  }
  async patchEvent(namespace: string, name: string, patch: object) {
    this.record('patchEvent', `${namespace}/${name}`);
    const i = this.events.findIndex((e) => e.metadata.namespace === namespace && e.metadata.name === name);
    if (i < 0) return false;
    this.events[i] = mergePatch(this.events[i], patch) as CoreV1Event;
    return true;
  }
  async getEdgeNode(name: string) {
    this.record('getEdgeNode', name);
    return this.edgeNodes.get(name);
  }
  async patchEdgeNodeStatus(name: string, status: EdgeNodeStatus) {
    this.record('patchEdgeNodeStatus', name);
    const en = this.edgeNodes.get(name);
    if (!en) return false;
    en.status = { ...en.status, ...status };
    return true;
  }
  /** Every Device: KubeClient.deviceWatch is this store (`set` bumps the resourceVersion, not the generation). */
  readonly devices = new FakeStore<Device>();
  deviceWatch(): Watcher<Device> {
    return this.devices;
  }
  /** Every DeviceModel: KubeClient.deviceModelWatch is this store. */
  readonly deviceModels = new FakeStore<DeviceModel>();
  deviceModelWatch(): Watcher<DeviceModel> {
    return this.deviceModels;
  }
  async patchDeviceStatus(namespace: string, name: string, status: DeviceStatus) {
    this.record('patchDeviceStatus', `${namespace}/${name}`);
    const d = this.devices.get(namespace, name);
    if (!d) return false;
    d.status = { ...d.status, ...status };
    return true;
  }
  /** Every Service: KubeClient.serviceWatch is this store. */
  readonly services = new FakeStore<V1Service>();
  serviceWatch(): Watcher<V1Service> {
    return this.services;
  }
  podWatch(): PodWatch {
    return {
      start: async (handlers) => {
        this.handlers = handlers;
      },
      get: (namespace, name) => this.pods.get(`${namespace}/${name}`),
      list: () => [...this.pods.values()],
      stop: async () => {
        this.handlers = undefined;
      },
    };
  }

  /** Object watches opened, in order (`kind ns/name`). */
  readonly objectWatches: string[] = [];
  /** The next object watch of `kind ns/name` fails to start with this error (a 403, say). */
  readonly failObjectWatch = new Map<string, unknown>();
  objectWatch(kind: WatchedKind, namespace: string, name: string): Watcher<WatchedObject> {
    const id = `${kind} ${namespace}/${name}`;
    this.record('objectWatch', id);
    this.objectWatches.push(id);
    const fail = this.failObjectWatch.get(id);
    this.failObjectWatch.delete(id);
    const store: FakeStore<WatchedObject> = kind === 'configmap' ? this.configMaps : this.secrets;
    return store.objectWatch(namespace, name, fail);
  }
  async createToken(namespace: string, serviceAccount: string, request: TokenRequest) {
    this.record('createToken', `${namespace}/${serviceAccount} ${request.pod.name}`);
    const token = `token-${this.tokens.length + 1}`;
    this.tokens.push({ namespace, serviceAccount, request, token });
    return { token, expiresAtMs: this.now() + (this.tokenSeconds ?? request.expirationSeconds) * 1000 };
  }

  async reviewToken(token: string) {
    this.record('reviewToken');
    return this.tokenUsers.get(token);
  }

  async reviewAccess(user: UserInfo, attrs: AccessAttributes) {
    const r = attrs.resource;
    this.record(
      'reviewAccess',
      `${user.username} ${attrs.verb} ${r ? `${r.resource}/${r.subresource ?? ''} ${r.name ?? ''}` : attrs.path}`,
    );
    const allowed = this.allow(user, attrs);
    return { allowed, reason: allowed ? 'allowed by the fake' : 'denied by the fake' };
  }

  edgeNodeWatch(): Watcher<EdgeNode> {
    return {
      start: async (handlers) => {
        this.edgeNodeHandlers = handlers;
      },
      get: (_ns, name) => this.edgeNodes.get(name),
      list: () => [...this.edgeNodes.values()],
      stop: async () => {
        this.edgeNodeHandlers = undefined;
      },
    };
  }

  /** Stores an EdgeNode (with a uid) and notifies the watch. */
  emitEdgeNode(en: EdgeNode): EdgeNode {
    const name = en.metadata!.name!;
    const stored = { ...en, metadata: { uid: `uid-en-${name}`, ...en.metadata, resourceVersion: this.nextRv() } };
    this.edgeNodes.set(name, stored);
    this.edgeNodeHandlers?.changed(stored);
    return stored;
  }
  emitEdgeNodeDelete(name: string): void {
    const en = this.edgeNodes.get(name);
    this.edgeNodes.delete(name);
    if (en) this.edgeNodeHandlers?.deleted(en);
  }

  /** Stores the pod (as the API would, with a new resourceVersion) and notifies the watch. */
  emitPod(pod: Pod): Pod {
    const stored = { ...pod, metadata: { ...pod.metadata, resourceVersion: this.nextRv() } };
    this.pods.set(`${pod.metadata!.namespace}/${pod.metadata!.name}`, stored);
    this.handlers?.changed(stored);
    return stored;
  }
  emitDelete(namespace: string, name: string): void {
    const pod = this.pods.get(`${namespace}/${name}`);
    this.pods.delete(`${namespace}/${name}`);
    if (pod) this.handlers?.deleted(pod);
  }
}
