/**
 * A PKCS#10 certificate signing request for a node's client certificate, as the kubelet's TLS bootstrap makes it:
 * subject O=system:nodes, CN=system:node:<name>, no subjectAltNames, an ECDSA P-256 key made here (it never leaves
 * the process). Hand-encoded DER (node:crypto has no CSR builder): a CertificationRequestInfo with an empty attribute
 * set, signed with ecdsa-with-SHA256 (RFC 2986).
 */
import { generateKeyPairSync, sign } from 'node:crypto';

/** The node name cannot go into a certificate subject (empty, too long, or not a DNS-1123 subdomain). */
export class NodeCsrError extends Error {
  override name = 'NodeCsrError';
}

const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const OID_O = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x0a]);
const OID_CN = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
const ECDSA_WITH_SHA256 = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
const rdn = (oid: Buffer, value: string) => set(seq(oid, tlv(0x0c, Buffer.from(value, 'utf8'))));

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** The node's user name in Kubernetes, as the Node authorizer reads it. */
export const nodeUser = (node: string): string => `system:node:${node}`;

/** A new key (PKCS#8 PEM) and a CSR (PEM) for the node's client certificate. */
export function nodeClientCsr(node: string): { keyPem: string; csrPem: string } {
  if (node.length === 0 || node.length > 253 || !NODE_NAME.test(node))
    throw new NodeCsrError(`not a node name: ${JSON.stringify(node.slice(0, 80))}`);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const subject = seq(rdn(OID_O, 'system:nodes'), rdn(OID_CN, nodeUser(node)));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), subject, spki, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, privateKey);
  const csr = seq(info, seq(ECDSA_WITH_SHA256), tlv(0x03, Buffer.from([0x00]), signature));
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: pem('CERTIFICATE REQUEST', csr) };
}
