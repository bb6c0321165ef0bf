/**
 * Where the revoker learns what to revoke: the revocation list Secret (`edgefarm-revocations` in the fleet's
 * namespace, @edgefarm/registrar fleet.ts) and the EdgeNodes that are deleted (their key joins the list). A watch on
 * exactly that one Secret (a field selector) and on EdgeNodes; writes only to that Secret.
 */
import * as k8s from '@kubernetes/client-node';
import { EDGENODE_API, REVOCATIONS_SECRET, identityOf, isAlreadyExists, isNotFound, revocationEntry } from '@edgefarm/registrar';

export interface RevocationHandlers {
  /** The Secret's data now (undefined: there is no Secret). */
  revocations(data: Record<string, string> | undefined): void;
  /** An EdgeNode that had this key was deleted. */
  nodeDeleted(node: string, publicKey: string): void;
  error?(err: unknown): void;
}

export interface RevocationSource {
  /** Starts both watches; the current Secret is reported once listed. */
  start(handlers: RevocationHandlers): Promise<void>;
  /** Merge-patches the key into the Secret (created when missing). */
  addRevocation(publicKey: string, at: Date): Promise<void>;
  stop(): Promise<void>;
}

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

/**
 * client-node's ListWatch, restarted with backoff after an error other than 410 (it stops for good otherwise), as
 * the provider's other watches (kube/client.ts).
 */
function restarting<T extends k8s.KubernetesObject>(informer: k8s.ListWatch<T>, onError: (err: unknown) => void): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let delayMs = 500;
  informer.on('connect', () => (delayMs = 500));
  informer.on('error', (err) => {
    onError(err);
    if (stopped) return;
    timer = setTimeout(() => void informer.start().catch(() => undefined), delayMs);
    delayMs = Math.min(delayMs * 2, 30_000);
  });
  return {
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

export class KubeRevocationSource implements RevocationSource {
  private readonly core: k8s.CoreV1Api;
  private readonly custom: k8s.CustomObjectsApi;
  private secrets?: k8s.ListWatch<k8s.V1Secret>;
  private nodes?: k8s.ListWatch<k8s.KubernetesObject>;
  private restarts: { stop(): void }[] = [];

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly namespace: string,
  ) {
    this.core = kc.makeApiClient(k8s.CoreV1Api);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  async start(h: RevocationHandlers): Promise<void> {
    const fieldSelector = `metadata.name=${REVOCATIONS_SECRET}`;
    const watch = new k8s.Watch(this.kc);
    const secrets = (this.secrets = new k8s.ListWatch<k8s.V1Secret>(
      `/api/v1/namespaces/${this.namespace}/secrets`,
      watch,
      () => this.core.listNamespacedSecret({ namespace: this.namespace, fieldSelector }),
      false,
      undefined,
      fieldSelector,
    ));
    const report = () => h.revocations(secrets.get(REVOCATIONS_SECRET, this.namespace)?.data);
    secrets.on('add', report);
    secrets.on('update', report);
    secrets.on('delete', report);
    secrets.on('connect', report);
    const { group, version, plural } = EDGENODE_API;
    const nodes = (this.nodes = new k8s.ListWatch<k8s.KubernetesObject>(
      `/apis/${group}/${version}/${plural}`,
      watch,
      () => this.custom.listClusterCustomObject({ group, version, plural }) as Promise<k8s.KubernetesListObject<k8s.KubernetesObject>>,
      false,
    ));
    nodes.on('delete', (obj) => {
      const id = identityOf(obj as { status?: unknown });
      if (id && obj.metadata?.name) h.nodeDeleted(obj.metadata.name, id.publicKey);
    });
    const onError = (err: unknown) => h.error?.(err);
    this.restarts = [restarting(secrets, onError), restarting(nodes, onError)];
    await secrets.start();
    await nodes.start();
    report();
  }

  async addRevocation(publicKey: string, at: Date): Promise<void> {
    const data = revocationEntry(publicKey, at);
    const patch = () =>
      this.core.patchNamespacedSecret({ namespace: this.namespace, name: REVOCATIONS_SECRET, body: { data } }, mergePatch);
    try {
      await patch();
    } catch (err) {
      if (!isNotFound(err)) throw err;
      try {
        await this.core.createNamespacedSecret({
          namespace: this.namespace,
          body: {
            metadata: { name: REVOCATIONS_SECRET, namespace: this.namespace, labels: { 'app.kubernetes.io/part-of': 'edgefarm' } },
            data,
          },
        });
      } catch (e) {
        if (!isAlreadyExists(e)) throw e;
        await patch();
      }
    }
  }

  async stop(): Promise<void> {
    for (const r of this.restarts) r.stop();
    await this.secrets?.stop();
    await this.nodes?.stop();
  }
}
