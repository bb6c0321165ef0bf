/**
 * What the `edgefarm` command does to the Kubernetes API (as the admin running it): join-token Secrets, the fleet
 * ConfigMap, EdgeNodes, the revocation list. Behind an interface so the commands are unit-tested with
 * {@link FakeCliKube} (kube-fake.ts).
 */
import * as k8s from '@kubernetes/client-node';
import {
  EDGENODE_API,
  FLEET_CONFIGMAP,
  JOIN_TOKEN_TYPE,
  REVOCATIONS_SECRET,
  isAlreadyExists,
  isNotFound,
  revocationEntry,
  type EdgeNodeLike,
  type SecretLike,
} from '@edgefarm/registrar';

export interface EdgeNodeView extends EdgeNodeLike {
  metadata?: EdgeNodeLike['metadata'] & { creationTimestamp?: Date | string };
  status?: EdgeNodeLike['status'] & {
    connected?: boolean;
    lastHeartbeatTime?: string;
    agentVersion?: string;
    podCount?: number;
    desiredSequence?: number;
    appliedSequence?: number;
  };
}

/** The parts of a Node the status and doctor read. */
export type NodeView = Pick<k8s.V1Node, 'metadata' | 'status'>;
/** The parts of a Lease status -o wide reads (the provider's shard Leases). */
export type LeaseView = Pick<k8s.V1Lease, 'metadata' | 'spec'>;
/** The parts of a Pod the doctor reads. */
export type PodView = Pick<k8s.V1Pod, 'metadata' | 'status'>;

export interface CliKube {
  /** Creates the Secret; false when its name is taken. */
  createSecret(namespace: string, secret: SecretLike): Promise<boolean>;
  /** The join-token Secrets (by type). */
  listTokenSecrets(namespace: string): Promise<SecretLike[]>;
  /** False when it did not exist. */
  deleteSecret(namespace: string, name: string): Promise<boolean>;
  getConfigMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  getEdgeNode(name: string): Promise<EdgeNodeView | undefined>;
  listEdgeNodes(): Promise<EdgeNodeView[]>;
  /** False when the name is taken. */
  createEdgeNode(name: string, labels: Record<string, string>): Promise<boolean>;
  /** False when it did not exist. */
  deleteEdgeNode(name: string): Promise<boolean>;
  /** Adds the key to the revocation Secret (created when missing). */
  addRevocation(namespace: string, publicKey: string, at: Date): Promise<void>;
  /** Removes status.identity; false when the EdgeNode does not exist. */
  clearIdentity(name: string): Promise<boolean>;
  getNode(name: string): Promise<NodeView | undefined>;
  listNodes(): Promise<NodeView[]>;
  /** The namespace's Pods matching the label selector. */
  listPods(namespace: string, labelSelector: string): Promise<PodView[]>;
  /** The namespace's Leases matching the label selector. */
  listLeases(namespace: string, labelSelector: string): Promise<LeaseView[]>;
  /** Server-side apply of a namespaced object as `fieldManager`, taking over fields another manager set (force). */
  applyObject(object: k8s.KubernetesObject, fieldManager: string): Promise<void>;
}

export const FLEET_CONFIGMAP_NAME = FLEET_CONFIGMAP;
const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

async function orFalse(p: Promise<unknown>, when: (err: unknown) => boolean): Promise<boolean> {
  try {
    await p;
    return true;
  } catch (err) {
    if (when(err)) return false;
    throw err;
  }
}

export class RealCliKube implements CliKube {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private readonly coordination: k8s.CoordinationV1Api;
  private readonly objects: k8s.KubernetesObjectApi;

  constructor(kc: k8s.KubeConfig) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
    this.coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  }

  createSecret(namespace: string, secret: SecretLike) {
    return orFalse(this.core.createNamespacedSecret({ namespace, body: secret as k8s.V1Secret }), isAlreadyExists);
  }
  async listTokenSecrets(namespace: string) {
    return (await this.core.listNamespacedSecret({ namespace, fieldSelector: `type=${JOIN_TOKEN_TYPE}` })).items;
  }
  deleteSecret(namespace: string, name: string) {
    return orFalse(this.core.deleteNamespacedSecret({ namespace, name }), isNotFound);
  }
  async getConfigMap(namespace: string, name: string) {
    try {
      return (await this.core.readNamespacedConfigMap({ namespace, name })).data ?? {};
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  async getEdgeNode(name: string) {
    try {
      return (await this.custom.getClusterCustomObject({ ...EDGENODE_API, name })) as EdgeNodeView;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  async listEdgeNodes() {
    return ((await this.custom.listClusterCustomObject({ ...EDGENODE_API })) as { items?: EdgeNodeView[] }).items ?? [];
  }
  createEdgeNode(name: string, labels: Record<string, string>) {
    const body = {
      apiVersion: `${EDGENODE_API.group}/${EDGENODE_API.version}`,
      kind: 'EdgeNode',
      metadata: { name },
      spec: Object.keys(labels).length > 0 ? { labels } : {},
    };
    return orFalse(this.custom.createClusterCustomObject({ ...EDGENODE_API, body }), isAlreadyExists);
  }
  deleteEdgeNode(name: string) {
    return orFalse(this.custom.deleteClusterCustomObject({ ...EDGENODE_API, name }), isNotFound);
  }
  async addRevocation(namespace: string, publicKey: string, at: Date) {
    const data = revocationEntry(publicKey, at);
    try {
      await this.core.patchNamespacedSecret({ namespace, name: REVOCATIONS_SECRET, body: { data } }, mergePatch);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const created = await orFalse(
        this.core.createNamespacedSecret({
          namespace,
          body: { metadata: { name: REVOCATIONS_SECRET, namespace, labels: { 'app.kubernetes.io/part-of': 'edgefarm' } }, data },
        }),
        isAlreadyExists,
      );
      if (!created) await this.core.patchNamespacedSecret({ namespace, name: REVOCATIONS_SECRET, body: { data } }, mergePatch);
    }
  }
  async getNode(name: string) {
    try {
      return await this.core.readNode({ name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
  async listNodes() {
    return (await this.core.listNode()).items;
  }
  async listPods(namespace: string, labelSelector: string) {
    return (await this.core.listNamespacedPod({ namespace, labelSelector })).items;
  }
  async listLeases(namespace: string, labelSelector: string) {
    return (await this.coordination.listNamespacedLease({ namespace, labelSelector })).items;
  }
  async applyObject(object: k8s.KubernetesObject, fieldManager: string) {
    await this.objects.patch(object, undefined, undefined, fieldManager, true, k8s.PatchStrategy.ServerSideApply);
  }
  clearIdentity(name: string) {
    return orFalse(
      this.custom.patchClusterCustomObjectStatus({ ...EDGENODE_API, name, body: { status: { identity: null } } }, mergePatch),
      isNotFound,
    );
  }
}
