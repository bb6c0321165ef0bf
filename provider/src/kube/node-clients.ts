/**
 * NodeClients: the API as each served node, so the apiserver's Node authorizer and NodeRestriction admission scope
 * what the provider does for a node exactly as they scope a kubelet (decision 0010): the Secrets and ConfigMaps its
 * pods use (watched one by one), TokenRequests for its pods' ServiceAccounts, and the status and deletion of pods
 * bound to it. It owns, per node, a client certificate (CN=system:node:<name>, O=system:nodes; the key never leaves
 * the process) obtained through the CSR API with signer kubernetes.io/kube-apiserver-client-kubelet, as the kubelet's
 * TLS bootstrap does: kube-controller-manager approves it because the provider may create
 * `certificatesigningrequests/nodeclient`, and signs it. A credential is requested on a node's first call, once at a
 * time, and renewed in the background once 80% of its lifetime has passed; a node given up is forgotten.
 *
 * {@link ProviderAsNodes} is the other implementation: every node as the provider itself (unit tests).
 */
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { RealKubeClient, type KubeClient } from './client.js';
import type { KubeRequestObserver } from './instrumented.js';
import { PooledKubeConfig } from './kubeconfig.js';
import { nodeClientCsr, nodeUser } from './csr.js';
import { CertificateRequestError, requestCertificate } from './certificates.js';

export interface NodeClients {
  /** The API as the node; rejects with a {@link NodeCredentialError} when no credential could be obtained. */
  client(node: string): Promise<KubeClient>;
  /** The node is no longer served: its credential is dropped. */
  forget(node: string): void;
}

/** Every node as the provider's own identity: no per-node scoping (unit tests, and the fakes). */
export class ProviderAsNodes implements NodeClients {
  constructor(private readonly kube: KubeClient) {}
  client(): Promise<KubeClient> {
    return Promise.resolve(this.kube);
  }
  forget(): void {}
}

/** No client certificate for the node: the CSR was denied, failed, or not issued in time (the cause says which). */
export class NodeCredentialError extends Error {
  override name = 'NodeCredentialError';
  constructor(
    readonly node: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`node ${node}: ${message}`, options);
  }
}

export const NODE_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
/** The annotation on each CSR naming the node it is for (a CSR's name is generated). */
export const CSR_NODE_ANNOTATION = 'edgefarm.io/node';

export interface CsrNodeClientsOptions {
  /** The provider's own configuration: the cluster (server, CA) and the identity that creates the CSRs. */
  kc: k8s.KubeConfig;
  log: Logger;
  /** Wraps each node's client (the provider's instrumented client, so node calls are in the API metrics). */
  wrap?: (client: KubeClient, node: string) => KubeClient;
  /** Times the CSR calls (resource `certificatesigningrequests`), as InstrumentedKubeClient does the others. */
  observe?: KubeRequestObserver;
  /** The lifetime asked for (CSR spec.expirationSeconds; the signer may shorten it). */
  credentialSeconds: number;
  /** How long to wait for the CSR to be approved and signed. */
  issueTimeoutMs: number;
  /** First delay between reads of a pending CSR (default 100 ms), doubled after each up to 2 s. */
  pollMs?: number;
  now?: () => number;
}

interface Credential {
  client: KubeClient;
  kc: PooledKubeConfig;
  renewAtMs: number;
  notAfterMs: number;
}

interface NodeEntry {
  current?: Credential;
  pending?: Promise<Credential>;
  /** The last attempt failed: no new CSR before this time (the error is handed back meanwhile). */
  failed?: { error: unknown; untilMs: number };
}

/** After a failed attempt, how long a node's calls get that failure instead of a new CSR each. */
const RETRY_MS = 15_000;

export class CsrNodeClients implements NodeClients {
  private readonly certificates: k8s.CertificatesV1Api;
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly now: () => number;

  constructor(private readonly o: CsrNodeClientsOptions) {
    this.certificates = o.kc.makeApiClient(k8s.CertificatesV1Api);
    this.now = o.now ?? Date.now;
  }

  async client(node: string): Promise<KubeClient> {
    let entry = this.nodes.get(node);
    if (!entry) this.nodes.set(node, (entry = {}));
    const now = this.now();
    const cur = entry.current;
    if (cur && now < cur.renewAtMs) return cur.client;
    if (entry.failed && now < entry.failed.untilMs && !entry.pending) {
      if (cur && now < cur.notAfterMs) return cur.client;
      throw entry.failed.error;
    }
    const pending = (entry.pending ??= this.obtain(node, entry));
    if (cur && now < cur.notAfterMs) {
      pending.catch(() => undefined); // renewal in the background; the current credential is still valid
      return cur.client;
    }
    return (await pending).client;
  }

  forget(node: string): void {
    const entry = this.nodes.get(node);
    this.nodes.delete(node);
    if (entry?.current) void entry.current.kc.close().catch(() => undefined);
  }

  /** Drops every credential (the provider stops). */
  async close(): Promise<void> {
    const all = [...this.nodes.values()];
    this.nodes.clear();
    await Promise.all(all.flatMap((e) => (e.current ? [e.current.kc.close().catch(() => undefined)] : [])));
  }

  private async obtain(node: string, entry: NodeEntry): Promise<Credential> {
    try {
      const cred = await this.issue(node);
      if (this.nodes.get(node) !== entry) {
        void cred.kc.close().catch(() => undefined); // forgotten meanwhile
        return cred;
      }
      const old = entry.current;
      entry.current = cred;
      // Not closed: watches opened under it run on until they restart (then under the new one).
      if (old) this.o.log.info({ node }, 'node client certificate renewed');
      entry.failed = undefined;
      return cred;
    } catch (err) {
      const error =
        err instanceof NodeCredentialError
          ? err
          : new NodeCredentialError(node, `requesting a client certificate failed: ${(err as Error)?.message ?? String(err)}`, {
              cause: err,
            });
      entry.failed = { error, untilMs: this.now() + RETRY_MS };
      this.o.log.warn({ node, err: error.message }, 'no client certificate for the node');
      throw error;
    } finally {
      entry.pending = undefined;
    }
  }

  private async issue(node: string): Promise<Credential> {
    const { keyPem, csrPem } = nodeClientCsr(node);
    let certPem: string;
    try {
      certPem = await requestCertificate(
        this.certificates,
        {
          signerName: NODE_CLIENT_SIGNER,
          csrPem,
          usages: ['digital signature', 'client auth'],
          expirationSeconds: this.o.credentialSeconds,
          generateName: 'edgefarm-node-client-',
          annotations: { [CSR_NODE_ANNOTATION]: node },
        },
        {
          timeoutMs: this.o.issueTimeoutMs,
          pollMs: this.o.pollMs,
          now: this.now,
          observe: (verb, code, seconds) => this.o.observe?.(verb, 'certificatesigningrequests', code, seconds),
        },
      );
    } catch (err) {
      if (!(err instanceof CertificateRequestError)) throw err;
      throw new NodeCredentialError(
        node,
        err.kind === 'timeout'
          ? `${err.message} (is kube-controller-manager running with --cluster-signing-cert-file, and may the provider create certificatesigningrequests/nodeclient?)`
          : err.message,
      );
    }
    return this.credential(node, certPem, keyPem);
  }

  private credential(node: string, certPem: string, keyPem: string): Credential {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(certPem);
    } catch (err) {
      throw new NodeCredentialError(node, 'the issued certificate does not parse', { cause: err });
    }
    const notBefore = Date.parse(cert.validFrom);
    const notAfterMs = Date.parse(cert.validTo);
    const cluster = this.o.kc.getCurrentCluster();
    if (!cluster) throw new NodeCredentialError(node, 'the provider kubeconfig has no current cluster');
    const user = nodeUser(node);
    const kc = new PooledKubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: user, certData: Buffer.from(certPem).toString('base64'), keyData: Buffer.from(keyPem).toString('base64') }],
      contexts: [{ name: user, cluster: cluster.name, user }],
      currentContext: user,
    });
    const client = new RealKubeClient(kc);
    return {
      kc,
      client: this.o.wrap?.(client, node) ?? client,
      notAfterMs,
      renewAtMs: notBefore + 0.8 * Math.max(0, notAfterMs - notBefore),
    };
  }
}

/** A pod write as its node, for a pod not bound to any node (or not known). */
export class PodNotBoundError extends Error {
  override name = 'PodNotBoundError';
}

/**
 * The pod calls of the pod controller's status and rejection paths, made as the pod's node (its spec.nodeName, or
 * the informer's copy for a delete by name), so NodeRestriction lets them touch only pods bound to a served node.
 * Reads go through `kube` (the provider's own identity).
 */
export function podCallsAsNodes(
  nodes: NodeClients,
  kube: Pick<KubeClient, 'getPod'>,
  nodeOf: (namespace: string, name: string) => string | undefined,
): Pick<KubeClient, 'replacePodStatus' | 'getPod' | 'deletePod'> {
  const as = (node: string | undefined, what: string) => {
    if (!node) throw new PodNotBoundError(`${what}: the pod is bound to no node`);
    return nodes.client(node);
  };
  return {
    getPod: (namespace, name) => kube.getPod(namespace, name),
    replacePodStatus: async (pod) =>
      (await as(pod.spec?.nodeName, `status of ${pod.metadata?.namespace}/${pod.metadata?.name}`)).replacePodStatus(pod),
    deletePod: async (namespace, name, options) =>
      (await as(nodeOf(namespace, name), `delete ${namespace}/${name}`)).deletePod(namespace, name, options),
  };
}
