/**
 * A hand-written {@link RegistrarKube} in memory: Secrets and EdgeNodes with uids and resourceVersions that change on
 * every write, the preconditions enforced as the apiserver does, every call recorded, and errors injectable per
 * method (`failNext`) or by a hook that runs before a call (`before`, to interleave a racing writer).
 */
import type { NodeIdentity, SecretLike } from './fleet.js';
import type { DeleteOutcome, EdgeNodeLike, PatchOutcome, RegistrarKube } from './kube.js';

type Method = keyof RegistrarKube;

export class FakeRegistrarKube implements RegistrarKube {
  readonly secrets = new Map<string, SecretLike>();
  readonly edgeNodes = new Map<string, EdgeNodeLike>();
  readonly calls: { method: Method; args: unknown[] }[] = [];
  private readonly failures = new Map<Method, Error>();
  /** Runs before each call (after it is recorded). */
  before?: (method: Method) => void | Promise<void>;
  private rv = 1;
  private uid = 1;

  failNext(method: Method, err: Error): void {
    this.failures.set(method, err);
  }

  putSecret(namespace: string, s: SecretLike): SecretLike {
    const stored: SecretLike = structuredClone({
      ...s,
      metadata: { ...s.metadata, namespace, uid: `uid-${this.uid++}`, resourceVersion: String(this.rv++) },
    });
    this.secrets.set(`${namespace}/${s.metadata!.name!}`, stored);
    return stored;
  }

  putEdgeNode(n: EdgeNodeLike): EdgeNodeLike {
    const stored = structuredClone({ ...n, metadata: { ...n.metadata, uid: `uid-${this.uid++}`, resourceVersion: String(this.rv++) } });
    this.edgeNodes.set(n.metadata!.name!, stored);
    return stored;
  }

  /** Any write to the EdgeNode (as the provider's status patches): a new resourceVersion. */
  touchEdgeNode(name: string, status: Record<string, unknown> = {}): void {
    const n = this.edgeNodes.get(name);
    if (!n) return;
    n.status = { ...n.status, ...status };
    n.metadata!.resourceVersion = String(this.rv++);
  }

  private async enter(method: Method, args: unknown[]): Promise<void> {
    this.calls.push({ method, args });
    await this.before?.(method);
    const err = this.failures.get(method);
    if (err) {
      this.failures.delete(method);
      throw err;
    }
  }

  async getSecret(namespace: string, name: string): Promise<SecretLike | undefined> {
    await this.enter('getSecret', [namespace, name]);
    const s = this.secrets.get(`${namespace}/${name}`);
    return s && structuredClone(s);
  }

  async deleteSecret(namespace: string, name: string, pre: { uid: string; resourceVersion: string }): Promise<DeleteOutcome> {
    await this.enter('deleteSecret', [namespace, name, pre]);
    const s = this.secrets.get(`${namespace}/${name}`);
    if (!s) return 'gone';
    if (s.metadata?.uid !== pre.uid || s.metadata?.resourceVersion !== pre.resourceVersion) return 'changed';
    this.secrets.delete(`${namespace}/${name}`);
    return 'deleted';
  }

  async getEdgeNode(name: string): Promise<EdgeNodeLike | undefined> {
    await this.enter('getEdgeNode', [name]);
    const n = this.edgeNodes.get(name);
    return n && structuredClone(n);
  }

  async nodeWithKey(publicKey: string): Promise<string | undefined> {
    await this.enter('nodeWithKey', [publicKey]);
    return [...this.edgeNodes.values()].find((n) => n.status?.identity?.publicKey === publicKey)?.metadata?.name;
  }

  async createEdgeNode(name: string, labels?: Record<string, string>): Promise<EdgeNodeLike> {
    await this.enter('createEdgeNode', [name, labels]);
    const existing = this.edgeNodes.get(name);
    if (existing) return structuredClone(existing);
    return structuredClone(this.putEdgeNode({ metadata: { name }, spec: labels ? { labels } : {} }));
  }

  async patchIdentity(name: string, identity: NodeIdentity, resourceVersion: string): Promise<PatchOutcome> {
    await this.enter('patchIdentity', [name, identity, resourceVersion]);
    const n = this.edgeNodes.get(name);
    if (!n) return 'gone';
    if (n.metadata?.resourceVersion !== resourceVersion) return 'conflict';
    n.status = { ...n.status, identity: { ...identity } };
    n.metadata.resourceVersion = String(this.rv++);
    return 'patched';
  }
}
