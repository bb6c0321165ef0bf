/**
 * PKCS#10 certificate signing requests with subject O=system:nodes, CN=system:node:<name> and an ECDSA P-256 key
 * made here (it never leaves the process), as a kubelet makes them: {@link nodeClientCsr} for a node's client
 * certificate (no extensions, as the TLS bootstrap), {@link servingCsr} for a kubelet API serving certificate
 * (signer kubernetes.io/kubelet-serving: subjectAltNames requested in an extensionRequest attribute, RFC 2985).
 * Hand-encoded DER (node:crypto has no CSR builder): a CertificationRequestInfo signed with ecdsa-with-SHA256
 * (RFC 2986).
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { isIP } from 'node:net';

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

const checkNode = (node: string) => {
  if (node.length === 0 || node.length > 253 || !NODE_NAME.test(node))
    throw new NodeCsrError(`not a node name: ${JSON.stringify(node.slice(0, 80))}`);
};

/** A new key (PKCS#8 PEM) and a CSR (PEM) for the node's client certificate. */
export function nodeClientCsr(node: string): { keyPem: string; csrPem: string } {
  checkNode(node);
  return csrFor(node, Buffer.from([0xa0, 0x00]));
}

const OID_EXTENSION_REQUEST = Buffer.from([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e]);
const OID_SUBJECT_ALT_NAME = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x11]);
/** At most this many subjectAltNames in one serving CSR (a provider replica has an address or two). */
export const MAX_SERVING_NAMES = 32;

/** An IP address (isIP() accepted it) as a GeneralName's 4 or 16 octets. */
export function ipOctets(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // an embedded IPv4 tail (::ffff:1.2.3.4) is two groups
  const groups = (part: string | undefined) =>
    (part ? part.split(':') : []).flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const [a, b, c, d] = g.split('.').map(Number);
      return [(a! << 8) | b!, (c! << 8) | d!];
    });
  const [head, tail] = ip.split('::');
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/**
 * A new key and a CSR for a kubelet API serving certificate of `node` (CN=system:node:<node>, O=system:nodes) naming
 * `ips` and `dnsNames` as subjectAltNames, what signer kubernetes.io/kubelet-serving requires (at least one of them).
 */
export function servingCsr(node: string, ips: readonly string[], dnsNames: readonly string[] = []): { keyPem: string; csrPem: string } {
  checkNode(node);
  if (ips.length + dnsNames.length === 0) throw new NodeCsrError('a serving certificate needs an IP address or a DNS name');
  if (ips.length + dnsNames.length > MAX_SERVING_NAMES) throw new NodeCsrError(`more than ${MAX_SERVING_NAMES} subjectAltNames`);
  const names: Buffer[] = [];
  for (const d of dnsNames) {
    if (d.length > 253 || !NODE_NAME.test(d)) throw new NodeCsrError(`not a DNS name: ${JSON.stringify(d.slice(0, 80))}`);
    names.push(tlv(0x82, Buffer.from(d, 'ascii')));
  }
  for (const ip of ips) {
    if (isIP(ip) === 0 || ip.includes('%')) throw new NodeCsrError(`not an IP address: ${JSON.stringify(ip.slice(0, 80))}`);
    names.push(tlv(0x87, ipOctets(ip)));
  }
  const san = seq(OID_SUBJECT_ALT_NAME, tlv(0x04, seq(...names)));
  return csrFor(node, tlv(0xa0, seq(OID_EXTENSION_REQUEST, set(seq(san)))));
}

function csrFor(node: string, attributes: Buffer): { keyPem: string; csrPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const subject = seq(rdn(OID_O, 'system:nodes'), rdn(OID_CN, nodeUser(node)));
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = seq(Buffer.from([0x02, 0x01, 0x00]), subject, spki, attributes);
  const signature = sign('sha256', info, privateKey);
  const csr = seq(info, seq(ECDSA_WITH_SHA256), tlv(0x03, Buffer.from([0x00]), signature));
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, csrPem: pem('CERTIFICATE REQUEST', csr) };
}
