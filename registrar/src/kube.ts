/**
 * The registrar's view of the Kubernetes API: exactly the calls manifests/base/registrar-rbac.yaml grants (join-token
 * Secrets get/delete, the revocation Secret get, EdgeNodes get/create, edgenodes/status patch), behind an interface
 * so the registrar is unit-tested with {@link FakeRegistrarKube} (kube-fake.ts).
 */
import * as k8s from '@kubernetes/client-node';
import { isAlreadyExists, isConflict, isNotFound } from './kube-errors.js';
import type { NodeIdentity, SecretLike } from './fleet.js';

export const EDGENODE_API = { group: 'edgefarm.io', version: 'v1alpha1', plural: 'edgenodes' } as const;

/** The part of an EdgeNode the registrar reads. */
export interface EdgeNodeLike {
  metadata?: { name?: string; uid?: string; resourceVersion?: string; deletionTimestamp?: Date | string };
  spec?: { labels?: Record<string, string> };
  status?: { identity?: Partial<NodeIdentity> | null } & Record<string, unknown>;
}

export type DeleteOutcome = 'deleted' | 'gone' | 'changed';
export type PatchOutcome = 'patched' | 'conflict' | 'gone';

export interface RegistrarKube {
  getSecret(namespace: string, name: string): Promise<SecretLike | undefined>;
  /** Deletes only the object of this uid at this resourceVersion: `changed` when either differs, `gone` when absent. */
  deleteSecret(namespace: string, name: string, preconditions: { uid: string; resourceVersion: string }): Promise<DeleteOutcome>;
  getEdgeNode(name: string): Promise<EdgeNodeLike | undefined>;
  /** The EdgeNode whose status.identity records this key, if any (lists EdgeNodes). */
  nodeWithKey(publicKey: string): Promise<string | undefined>;
  /** Creates the EdgeNode; resolves with the existing one when the name is taken. */
  createEdgeNode(name: string, labels?: Record<string, string>): Promise<EdgeNodeLike>;
  /**
   * Merge patch of status.identity, only while the EdgeNode is still at `resourceVersion` (optimistic concurrency:
   * `conflict` when it changed since it was read).
   */
  patchIdentity(name: string, identity: NodeIdentity, resourceVersion: string): Promise<PatchOutcome>;
}

/** EdgeNodes a list call returns at most (a page; the rest by the continue token). */
export const LIST_PAGE = 500;

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

export class RealRegistrarKube implements RegistrarKube {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;

  constructor(
    kc: k8s.KubeConfig,
    private readonly listPage = LIST_PAGE,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async getSecret(namespace: string, name: string): Promise<SecretLike | undefined> {
    try {
      return await this.core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteSecret(namespace: string, name: string, preconditions: { uid: string; resourceVersion: string }): Promise<DeleteOutcome> {
    try {
      await this.core.deleteNamespacedSecret({ namespace, name, body: { preconditions } });
      return 'deleted';
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      if (isConflict(err)) return 'changed';
      throw err;
    }
  }

  async getEdgeNode(name: string): Promise<EdgeNodeLike | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ ...EDGENODE_API, name })) as EdgeNodeLike;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Pages of {@link LIST_PAGE} EdgeNodes (the apiserver's limit/continue), so a join holds one page in memory however
   * large the fleet; it stops at the first match.
   */
  async nodeWithKey(publicKey: string): Promise<string | undefined> {
    let next: string | undefined;
    do {
      const list = (await this.custom.listClusterCustomObject({
        ...EDGENODE_API,
        limit: this.listPage,
        ...(next ? { _continue: next } : {}),
      })) as { items?: EdgeNodeLike[]; metadata?: { continue?: string } };
      const found = (list.items ?? []).find((n) => n.status?.identity?.publicKey === publicKey)?.metadata?.name;
      if (found !== undefined) return found;
      next = list.metadata?.continue || undefined;
    } while (next);
    return undefined;
  }

  async createEdgeNode(name: string, labels?: Record<string, string>): Promise<EdgeNodeLike> {
    const body = {
      apiVersion: `${EDGENODE_API.group}/${EDGENODE_API.version}`,
      kind: 'EdgeNode',
      metadata: { name },
      spec: labels && Object.keys(labels).length > 0 ? { labels } : {},
    };
    try {
      return (await this.custom.createClusterCustomObject({ ...EDGENODE_API, body })) as EdgeNodeLike;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await this.getEdgeNode(name);
      if (!existing) throw err;
      return existing;
    }
  }

  async patchIdentity(name: string, identity: NodeIdentity, resourceVersion: string): Promise<PatchOutcome> {
    try {
      await this.custom.patchClusterCustomObjectStatus(
        { ...EDGENODE_API, name, body: { metadata: { resourceVersion }, status: { identity } } },
        mergePatch,
      );
      return 'patched';
    } catch (err) {
      if (isNotFound(err)) return 'gone';
      if (isConflict(err)) return 'conflict';
      throw err;
    }
  }
}
