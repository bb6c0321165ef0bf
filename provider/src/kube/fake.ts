/**
 * A hand-written KubeClient for unit tests: an in-memory store that records every call and can fail calls on
 * demand (`failNext`). Pods are served to PodWatch handlers synchronously when tests call `emit*`.
 */
import type { CoreV1Event } from '@kubernetes/client-node';
import type { EdgeNodeStatus, KubeClient, Lease, Node, Pod, PodWatch } from './client.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

type Handlers = Parameters<PodWatch['start']>[0];

export class FakeKubeClient implements KubeClient {
  readonly calls: string[] = [];
  readonly nodes = new Map<string, Node>();
  readonly leases = new Map<string, Lease>();
  readonly pods = new Map<string, Pod>();
  readonly events: CoreV1Event[] = [];
  /** EdgeNode objects by name (only their status matters to the provider so far). */
  readonly edgeNodes = new Map<string, { status?: EdgeNodeStatus }>();
  private readonly failures = new Map<string, unknown[]>();
  private handlers?: Handlers;
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
    return this.nodes.get(name);
  }
  async createNode(node: Node) {
    this.record('createNode', node.metadata!.name);
    if (this.nodes.has(node.metadata!.name!)) throw new ApiError(409, 'exists');
    const created = { ...node, metadata: { ...node.metadata, uid: `uid-${node.metadata!.name}`, resourceVersion: this.nextRv() } };
    this.nodes.set(node.metadata!.name!, created);
    return created;
  }
  async patchNode(name: string, patch: object) {
    this.record('patchNode', name);
    const n = this.nodes.get(name);
    if (!n) throw new ApiError(404, 'not found');
    Object.assign(n, patch);
    return n;
  }
  async patchNodeStatus(name: string, patch: object) {
    this.record('patchNodeStatus', name);
    const n = this.nodes.get(name);
    if (!n) throw new ApiError(404, 'not found');
    n.status = { ...n.status, ...(patch as { status: object }).status };
    return n;
  }
  async getLease(namespace: string, name: string) {
    this.record('getLease', `${namespace}/${name}`);
    return this.leases.get(`${namespace}/${name}`);
  }
  async createLease(lease: Lease) {
    this.record('createLease', lease.metadata!.name);
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
    this.events.push(event);
  }
  async patchEdgeNodeStatus(name: string, status: EdgeNodeStatus) {
    this.record('patchEdgeNodeStatus', name);
    const en = this.edgeNodes.get(name);
    if (!en) return false;
    en.status = { ...en.status, ...status };
    return true;
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
