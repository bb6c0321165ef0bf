/**
 * The kubelet API's serving certificate from the cluster (EF_KUBELET_SERVING_CSR=1): a CSR to signer
 * kubernetes.io/kubelet-serving for CN=system:node:<replica>, O=system:nodes naming the replica's address, approved
 * by the provider itself (its ClusterRole may approve for that signer only, and admission lets it approve only CSRs it
 * requested: manifests/base/provider-rbac.yaml) and signed by kube-controller-manager with the cluster's kubelet
 * serving CA, the one the apiserver trusts for kubelets. The key never leaves the process. Renewed in the background
 * once 80% of its lifetime has passed; each new certificate goes to `onRenew` (the kubelet server swaps its TLS
 * context: open connections keep theirs). A failed renewal is retried every 30 s while the current one is valid.
 */
import { X509Certificate } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { servingCsr } from './csr.js';
import { requestCertificate, type RequestOptions } from './certificates.js';

export const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';
/** The reason of the provider's own approval (kubectl get csr shows it). */
export const SELF_APPROVAL_REASON = 'EdgeFarmProviderServing';

export interface ServingCertificateOptions {
  kc: k8s.KubeConfig;
  log: Logger;
  /** The name in CN=system:node:<name>: the replica's identity. */
  name: string;
  /** subjectAltNames: the replica's addresses (the Nodes' InternalIP) and DNS names. */
  ips: string[];
  dnsNames?: string[];
  lifetimeSeconds: number;
  timeoutMs: number;
  observe?: RequestOptions['observe'];
  now?: () => number;
}

export interface ServingPair {
  cert: string;
  key: string;
  notAfterMs: number;
}

const RETRY_MS = 30_000;

export class ServingCertificate {
  private readonly api: k8s.CertificatesV1Api;
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly o: ServingCertificateOptions) {
    this.api = o.kc.makeApiClient(k8s.CertificatesV1Api);
    this.now = o.now ?? Date.now;
  }

  /** A new certificate and key (rejects when the CSR is refused or not issued in time). */
  async obtain(): Promise<ServingPair> {
    const { keyPem, csrPem } = servingCsr(this.o.name, this.o.ips, this.o.dnsNames ?? []);
    const cert = await requestCertificate(
      this.api,
      {
        signerName: KUBELET_SERVING_SIGNER,
        csrPem,
        usages: ['digital signature', 'server auth'],
        expirationSeconds: this.o.lifetimeSeconds,
        generateName: 'edgefarm-kubelet-serving-',
        annotations: { 'edgefarm.io/provider': this.o.name },
        approveReason: SELF_APPROVAL_REASON,
      },
      { timeoutMs: this.o.timeoutMs, now: this.now, observe: this.o.observe },
    );
    const x = new X509Certificate(cert);
    const notAfterMs = Date.parse(x.validTo);
    this.o.log.info({ notAfter: x.validTo, subjectAltName: x.subjectAltName }, 'kubelet serving certificate issued by the cluster');
    return { cert, key: keyPem, notAfterMs };
  }

  /** Renews `current` at 80% of its lifetime, handing each new pair to onRenew, until stop(). */
  renewLater(current: ServingPair, onRenew: (pair: ServingPair) => void): void {
    if (this.stopped) return;
    const lifetime = Math.max(0, current.notAfterMs - this.now());
    this.schedule(0.8 * lifetime, current, onRenew);
  }

  private schedule(inMs: number, current: ServingPair, onRenew: (pair: ServingPair) => void): void {
    // setTimeout's limit is 2^31-1 ms (~24.8 days); a longer wait is taken in steps
    const step = Math.min(Math.max(0, inMs), 2 ** 31 - 1);
    this.timer = setTimeout(() => {
      if (step < inMs) return this.schedule(inMs - step, current, onRenew);
      this.obtain().then(
        (next) => {
          if (this.stopped) return;
          onRenew(next);
          this.renewLater(next, onRenew);
        },
        (err: unknown) => {
          if (this.stopped) return;
          const left = current.notAfterMs - this.now();
          this.o.log.warn(
            { err: (err as Error).message, expiresInSeconds: Math.round(left / 1000) },
            'renewing the kubelet serving certificate failed',
          );
          this.schedule(RETRY_MS, current, onRenew);
        },
      );
    }, step);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
