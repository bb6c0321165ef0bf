// nodeClientCsr on hostile and valid node names: it refuses with its own error or makes a CSR whose DER parses back
// to the subject asked for (O=system:nodes, CN=system:node:<name>) and whose signature verifies with its own key.
import { createPublicKey, verify } from 'node:crypto';
import { fc, fuzzDecoder, hostileString } from '@edgefarm/testing/fuzz';
import { NodeCsrError, nodeClientCsr } from './csr.js';

interface Tlv {
  tag: number;
  /** Offset of the tag, of the content, and the end of the content. */
  at: number;
  start: number;
  end: number;
}

/** One DER TLV at `at` (definite lengths only, as DER has). */
function tlv(der: Buffer, at: number): Tlv {
  const tag = der[at]!;
  let len = der[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
    start += n;
  }
  if (start + len > der.length) throw new Error(`TLV at ${at} runs past the end`);
  return { tag, at, start, end: start + len };
}

function children(der: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = t.start; at < t.end;) {
    const c = tlv(der, at);
    out.push(c);
    at = c.end;
  }
  return out;
}

/** The subject's attribute values in order, if the signature verifies with the CSR's own key. */
function parseCsr(pem: string): string[] {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s/g, ''), 'base64');
  const outer = tlv(der, 0);
  if (outer.end !== der.length) throw new Error('trailing bytes');
  const [info, , sig] = children(der, outer);
  const [version, subject, spki, attrs] = children(der, info!);
  if (der.subarray(version!.at, version!.end).toString('hex') !== '020100' || attrs!.tag !== 0xa0) throw new Error('bad info');
  const key = createPublicKey({ key: der.subarray(spki!.at, spki!.end), format: 'der', type: 'spki' });
  if (!verify('sha256', der.subarray(info!.at, info!.end), key, der.subarray(sig!.start + 1, sig!.end))) throw new Error('bad signature');
  return children(der, subject!).map((set) => {
    const [, value] = children(der, children(der, set)[0]!);
    return der.subarray(value!.start, value!.end).toString('utf8');
  });
}

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const validNames = fc
  .array(label, { minLength: 1, maxLength: 5 })
  .map((ls) => ls.join('.'))
  .filter((n) => n.length <= 253);

describe('nodeClientCsr', () => {
  it('refuses a bad node name with NodeCsrError, and otherwise makes a CSR for exactly that node', () => {
    fuzzDecoder('kube/csr nodeClientCsr', {
      inputs: fc.oneof(validNames, hostileString(), fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 64 })),
      decode: (name) => nodeClientCsr(name),
      errors: [NodeCsrError],
      check: (name, out) => {
        const subject = parseCsr((out as { csrPem: string }).csrPem);
        return subject.length === 2 && subject[0] === 'system:nodes' && subject[1] === `system:node:${name}`;
      },
    });
  });
});
