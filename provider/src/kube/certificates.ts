/**
 * One certificate through the Kubernetes CSR API: create the CertificateSigningRequest, approve it when the caller
 * is its own approver (the kubelet serving certificate, {@link ServingCertificate}), and poll until the signer has
 * issued the certificate, the CSR was denied or failed, or the time is up. The node client certificates
 * (node-clients.ts) and the kubelet serving certificate both go through here.
 */
import * as k8s from '@kubernetes/client-node';
import type { KubeVerb } from './instrumented.js';
import { statusCodeOf } from './errors.js';

export interface CertificateRequest {
  signerName: string;
  csrPem: string;
  usages: string[];
  /** The lifetime asked for (the signer may shorten it). */
  expirationSeconds: number;
  /** The CSR's name prefix (its name is generated). */
  generateName: string;
  annotations?: Record<string, string>;
  /** Approve the CSR as soon as it is created, with this reason (the caller is allowed to approve for the signer). */
  approveReason?: string;
}

export interface RequestOptions {
  timeoutMs: number;
  /** First delay between reads of a pending CSR (default 100 ms), doubled after each up to 2 s. */
  pollMs?: number;
  now?: () => number;
  /** Observes each CSR call (verb, response code, seconds), for the API request metrics. */
  observe?: (verb: KubeVerb, code: string, seconds: number) => void;
}

/** The CSR was denied or failed, or not issued in time; the message names the CSR and why. */
export class CertificateRequestError extends Error {
  override name = 'CertificateRequestError';
  constructor(
    message: string,
    readonly kind: 'refused' | 'timeout',
  ) {
    super(message);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The issued certificate (PEM). Rejects with a {@link CertificateRequestError}, or the API's error. */
export async function requestCertificate(api: k8s.CertificatesV1Api, req: CertificateRequest, o: RequestOptions): Promise<string> {
  const now = o.now ?? Date.now;
  const timed = async <T>(verb: KubeVerb, call: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const seen = (code: string) => o.observe?.(verb, code, (performance.now() - start) / 1000);
    try {
      const r = await call();
      seen('2xx');
      return r;
    } catch (err) {
      seen(String(statusCodeOf(err) ?? 'error'));
      throw err;
    }
  };
  const created = await timed('create', () =>
    api.createCertificateSigningRequest({
      body: {
        metadata: { generateName: req.generateName, annotations: req.annotations },
        spec: {
          signerName: req.signerName,
          request: Buffer.from(req.csrPem).toString('base64'),
          usages: req.usages,
          expirationSeconds: req.expirationSeconds,
        },
      },
    }),
  );
  const name = created.metadata!.name!;
  if (req.approveReason) {
    const approved: k8s.V1CertificateSigningRequest = {
      ...created,
      status: {
        ...created.status,
        conditions: [
          ...(created.status?.conditions ?? []),
          { type: 'Approved', status: 'True', reason: req.approveReason, message: `approved by its requester (${req.approveReason})` },
        ],
      },
    };
    await timed('update', () => api.replaceCertificateSigningRequestApproval({ name, body: approved }));
  }
  const deadline = now() + o.timeoutMs;
  for (let delayMs = o.pollMs ?? 100; ; delayMs = Math.min(2 * delayMs, 2_000)) {
    const cur = await timed('get', () => api.readCertificateSigningRequest({ name }));
    const refused = cur.status?.conditions?.find((c) => (c.type === 'Denied' || c.type === 'Failed') && c.status === 'True');
    if (refused)
      throw new CertificateRequestError(
        `CSR ${name} ${refused.type.toLowerCase()}: ${refused.reason ?? ''} ${refused.message ?? ''}`.trim(),
        'refused',
      );
    if (cur.status?.certificate) return Buffer.from(cur.status.certificate, 'base64').toString();
    if (now() >= deadline)
      throw new CertificateRequestError(
        `CSR ${name} was not ${cur.status?.conditions?.some((c) => c.type === 'Approved') ? 'signed' : 'approved'} within ${o.timeoutMs / 1000} s`,
        'timeout',
      );
    await sleep(delayMs);
  }
}
