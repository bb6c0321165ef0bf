/** A hand-written {@link CliKube} in memory, recording calls, with errors injectable per method. */
import { readRevocations, revocationEntry, REVOCATIONS_SECRET, type SecretLike } from '@edgefarm/registrar';
import type { KubernetesObject } from '@kubernetes/client-node';
import type { CliKube, EdgeNodeView, LeaseView, NodeView, PodView } from './kube.js';

export class FakeCliKube implements CliKube {
  readonly secrets = new Map<string, SecretLike>();
  readonly configMaps = new Map<string, Record<string, string>>();
  readonly edgeNodes = new Map<string, EdgeNodeView>();
  readonly nodes = new Map<string, NodeView>();
  /** Pods by namespace; listPods matches `k=v` selectors (comma-separated) on their labels. */
  readonly pods = new Map<string, PodView[]>();
  /** Leases by namespace, matched as pods are. */
  readonly leases = new Map<string, LeaseView[]>();
  /** Objects applied (applyObject), by `kind/namespace/name`, with their field manager. */
  readonly applied = new Map<string, { object: KubernetesObject; fieldManager: string }>();
  readonly calls: string[] = [];
  private readonly failures = new Map<keyof CliKube, Error>();

  failNext(method: keyof CliKube, err: Error): void {
    this.failures.set(method, err);
  }
  private enter(method: keyof CliKube): void {
    this.calls.push(method);
    const err = this.failures.get(method);
    if (err) {
      this.failures.delete(method);
      throw err;
    }
  }

  revocations(namespace: string): Record<string, number> {
    return readRevocations(this.secrets.get(`${namespace}/${REVOCATIONS_SECRET}`)?.data).revocations;
  }

  async createSecret(namespace: string, secret: SecretLike) {
    this.enter('createSecret');
    const key = `${namespace}/${secret.metadata!.name!}`;
    if (this.secrets.has(key)) return false;
    this.secrets.set(key, structuredClone({ ...secret, metadata: { ...secret.metadata, creationTimestamp: new Date(0).toISOString() } }));
    return true;
  }
  async listTokenSecrets(namespace: string) {
    this.enter('listTokenSecrets');
    return [...this.secrets.entries()]
      .filter(([k, s]) => k.startsWith(`${namespace}/`) && s.type === 'edgefarm.io/join-token')
      .map(([, s]) => structuredClone(s));
  }
  async deleteSecret(namespace: string, name: string) {
    this.enter('deleteSecret');
    return this.secrets.delete(`${namespace}/${name}`);
  }
  async getConfigMap(namespace: string, name: string) {
    this.enter('getConfigMap');
    return this.configMaps.get(`${namespace}/${name}`);
  }
  async getEdgeNode(name: string) {
    this.enter('getEdgeNode');
    const n = this.edgeNodes.get(name);
    return n && structuredClone(n);
  }
  async listEdgeNodes() {
    this.enter('listEdgeNodes');
    return [...this.edgeNodes.values()].map((n) => structuredClone(n));
  }
  async createEdgeNode(name: string, labels: Record<string, string>) {
    this.enter('createEdgeNode');
    if (this.edgeNodes.has(name)) return false;
    this.edgeNodes.set(name, { metadata: { name }, spec: { labels } });
    return true;
  }
  async deleteEdgeNode(name: string) {
    this.enter('deleteEdgeNode');
    return this.edgeNodes.delete(name);
  }
  async addRevocation(namespace: string, publicKey: string, at: Date) {
    this.enter('addRevocation');
    const key = `${namespace}/${REVOCATIONS_SECRET}`;
    const s = this.secrets.get(key) ?? { metadata: { name: REVOCATIONS_SECRET, namespace }, data: {} };
    s.data = { ...s.data, ...revocationEntry(publicKey, at) };
    this.secrets.set(key, s);
  }
  async clearIdentity(name: string) {
    this.enter('clearIdentity');
    const n = this.edgeNodes.get(name);
    if (!n) return false;
    if (n.status) delete n.status.identity;
    return true;
  }
  async getNode(name: string) {
    this.enter('getNode');
    const n = this.nodes.get(name);
    return n && structuredClone(n);
  }
  async listNodes() {
    this.enter('listNodes');
    return [...this.nodes.values()].map((n) => structuredClone(n));
  }
  async listPods(namespace: string, labelSelector: string) {
    this.enter('listPods');
    return selected(this.pods.get(namespace) ?? [], labelSelector);
  }
  async listLeases(namespace: string, labelSelector: string) {
    this.enter('listLeases');
    return selected(this.leases.get(namespace) ?? [], labelSelector);
  }
  async applyObject(object: KubernetesObject, fieldManager: string) {
    this.enter('applyObject');
    const key = `${object.kind}/${object.metadata?.namespace}/${object.metadata?.name}`;
    this.applied.set(key, { object: structuredClone(object), fieldManager });
  }
}

/** Copies of the objects whose labels match a `k=v,k2=v2` selector. */
function selected<T extends { metadata?: { labels?: Record<string, string> } }>(objects: T[], labelSelector: string): T[] {
  const want = labelSelector
    .split(',')
    .filter(Boolean)
    .map((kv) => kv.split('=') as [string, string]);
  return objects.filter((o) => want.every(([k, v]) => o.metadata?.labels?.[k] === v)).map((o) => structuredClone(o));
}
