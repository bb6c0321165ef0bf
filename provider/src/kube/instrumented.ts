/**
 * A {@link KubeClient} that times every call of another one and reports it (verb, resource, code, seconds), so the
 * API metrics are added in one place rather than at every call site. Kept free of the metrics library: the caller
 * passes the observer.
 *
 * code: the HTTP status where the client exposes one (errors; a get that found nothing is 404), `2xx` for other
 * successes (the typed client does not hand the status of a success back), `error` when there was no response.
 */
import type * as k8s from '@kubernetes/client-node';
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

export type KubeVerb = 'get' | 'create' | 'update' | 'patch' | 'delete' | 'list' | 'watch';
export type KubeRequestObserver = (verb: KubeVerb, resource: string, code: string, seconds: number) => void;

/** Status code of an API error (client-node's ApiException carries it as `code`). */
function codeOf(err: unknown): string {
  const e = err as { code?: unknown; statusCode?: unknown } | null;
  for (const v of [e?.code, e?.statusCode]) if (typeof v === 'number') return String(v);
  return 'error';
}

export class InstrumentedKubeClient implements KubeClient {
  constructor(
    private readonly inner: KubeClient,
    private readonly observe: KubeRequestObserver,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  private async timed<T>(verb: KubeVerb, resource: string, call: () => Promise<T>, found: (r: T) => boolean = () => true): Promise<T> {
    const start = this.nowMs();
    try {
      const r = await call();
      this.observe(verb, resource, found(r) ? '2xx' : '404', (this.nowMs() - start) / 1000);
      return r;
    } catch (err) {
      this.observe(verb, resource, codeOf(err), (this.nowMs() - start) / 1000);
      throw err;
    }
  }

  private watched<T>(resource: string, w: Watcher<T>): Watcher<T> {
    return {
      start: (handlers) => this.timed('watch', resource, () => w.start(handlers)),
      get: (namespace, name) => w.get(namespace, name),
      list: () => w.list(),
      stop: () => w.stop(),
    };
  }

  getNode(name: string) {
    return this.timed(
      'get',
      'nodes',
      () => this.inner.getNode(name),
      (r) => r !== undefined,
    );
  }
  createNode(node: Node) {
    return this.timed('create', 'nodes', () => this.inner.createNode(node));
  }
  patchNode(name: string, patch: object) {
    return this.timed('patch', 'nodes', () => this.inner.patchNode(name, patch));
  }
  patchNodeStatus(name: string, patch: object) {
    return this.timed('patch', 'nodes/status', () => this.inner.patchNodeStatus(name, patch));
  }
  getLease(namespace: string, name: string) {
    return this.timed(
      'get',
      'leases',
      () => this.inner.getLease(namespace, name),
      (r) => r !== undefined,
    );
  }
  createLease(lease: Lease) {
    return this.timed('create', 'leases', () => this.inner.createLease(lease));
  }
  replaceLease(lease: Lease) {
    return this.timed('update', 'leases', () => this.inner.replaceLease(lease));
  }
  getPod(namespace: string, name: string) {
    return this.timed(
      'get',
      'pods',
      () => this.inner.getPod(namespace, name),
      (r) => r !== undefined,
    );
  }
  replacePodStatus(pod: Pod) {
    return this.timed('update', 'pods/status', () => this.inner.replacePodStatus(pod));
  }
  deletePod(namespace: string, name: string, options: { uid: string; gracePeriodSeconds: number }) {
    return this.timed('delete', 'pods', () => this.inner.deletePod(namespace, name, options));
  }
  createEvent(event: k8s.CoreV1Event) {
    return this.timed('create', 'events', () => this.inner.createEvent(event));
  }
  patchEvent(namespace: string, name: string, patch: object) {
    return this.timed(
      'patch',
      'events',
      () => this.inner.patchEvent(namespace, name, patch),
      (found) => found,
    );
  }
  getEdgeNode(name: string) {
    return this.timed(
      'get',
      'edgenodes',
      () => this.inner.getEdgeNode(name),
      (r) => r !== undefined,
    );
  }
  patchEdgeNodeStatus(name: string, status: EdgeNodeStatus) {
    return this.timed(
      'patch',
      'edgenodes/status',
      () => this.inner.patchEdgeNodeStatus(name, status),
      (found) => found,
    );
  }
  deleteNode(name: string, uid: string) {
    return this.timed('delete', 'nodes', () => this.inner.deleteNode(name, uid));
  }
  listLeases(namespace: string, labelSelector: string) {
    return this.timed('list', 'leases', () => this.inner.listLeases(namespace, labelSelector));
  }
  deleteLease(namespace: string, name: string) {
    return this.timed('delete', 'leases', () => this.inner.deleteLease(namespace, name));
  }
  podWatch(): PodWatch {
    return this.watched('pods', this.inner.podWatch());
  }
  serviceWatch() {
    return this.watched('services', this.inner.serviceWatch());
  }
  objectWatch(kind: WatchedKind, namespace: string, name: string): Watcher<WatchedObject> {
    return this.watched(kind === 'configmap' ? 'configmaps' : 'secrets', this.inner.objectWatch(kind, namespace, name));
  }
  createToken(namespace: string, serviceAccount: string, request: TokenRequest) {
    return this.timed('create', 'serviceaccounts/token', () => this.inner.createToken(namespace, serviceAccount, request));
  }
  edgeNodeWatch(): Watcher<EdgeNode> {
    return this.watched('edgenodes', this.inner.edgeNodeWatch());
  }
  deviceWatch(): Watcher<Device> {
    return this.watched('devices', this.inner.deviceWatch());
  }
  deviceModelWatch(): Watcher<DeviceModel> {
    return this.watched('devicemodels', this.inner.deviceModelWatch());
  }
  patchDeviceStatus(namespace: string, name: string, status: DeviceStatus) {
    return this.timed(
      'patch',
      'devices/status',
      () => this.inner.patchDeviceStatus(namespace, name, status),
      (found) => found,
    );
  }
  reviewToken(token: string) {
    return this.timed('create', 'tokenreviews', () => this.inner.reviewToken(token));
  }
  reviewAccess(user: UserInfo, attrs: AccessAttributes) {
    return this.timed('create', 'subjectaccessreviews', () => this.inner.reviewAccess(user, attrs));
  }
}
