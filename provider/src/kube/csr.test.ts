import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MAX_SERVING_NAMES, NodeCsrError, ipOctets, nodeClientCsr, servingCsr } from './csr.js';

describe('nodeClientCsr', () => {
  it('makes a CSR openssl verifies, for O=system:nodes, CN=system:node:<name>, with no extensions', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ef-csr-'));
    try {
      const name = `edge-${'a'.repeat(200)}.site-1`; // a long name: multi-byte DER lengths
      const { csrPem, keyPem } = nodeClientCsr(name);
      expect(keyPem).toContain('BEGIN PRIVATE KEY');
      writeFileSync(path.join(dir, 'n.csr'), csrPem);
      const out = execFileSync('openssl', ['req', '-in', 'n.csr', '-noout', '-verify', '-subject', '-nameopt', 'RFC2253'], {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      }).toString();
      expect(out).toContain(`subject=CN=system:node:${name},O=system:nodes`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(['', 'Edge-1', 'a/b', 'x'.repeat(254), 'edge 1', 'edge-1,O=system:masters'])('refuses %j', (name) => {
    expect(() => nodeClientCsr(name)).toThrow(NodeCsrError);
  });
});

/** openssl's text of a CSR (verified with its own key). */
function opensslReq(csrPem: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ef-csr-'));
  try {
    writeFileSync(path.join(dir, 'n.csr'), csrPem);
    return execFileSync('openssl', ['req', '-in', 'n.csr', '-noout', '-verify', '-text', '-nameopt', 'RFC2253'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('servingCsr', () => {
  it('makes a CSR openssl verifies, for CN=system:node:<name>, requesting exactly the addresses and names given', () => {
    const { csrPem, keyPem } = servingCsr('edgefarm-provider-7d9c-x2', ['192.0.2.2', '10.96.0.7', 'fd00::1'], ['provider.example']);
    expect(keyPem).toContain('BEGIN PRIVATE KEY');
    const out = opensslReq(csrPem);
    expect(out).toContain('Subject: CN=system:node:edgefarm-provider-7d9c-x2,O=system:nodes');
    expect(out).toContain('X509v3 Subject Alternative Name');
    expect(out.replace(/\s+/g, ' ')).toContain(
      'DNS:provider.example, IP Address:192.0.2.2, IP Address:10.96.0.7, IP Address:FD00:0:0:0:0:0:0:1',
    );
  });

  it.each([
    ['::', '00000000000000000000000000000000'],
    ['::1', '00000000000000000000000000000001'],
    ['2001:db8::8:800:200c:417a', '20010db8000000000008080020 0c417a'.replace(' ', '')],
    ['::ffff:192.0.2.128', '00000000000000000000ffffc0000280'],
    ['64:ff9b::192.0.2.33', '0064ff9b0000000000000000c0000221'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['0:0:0:0:0:ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['198.51.100.7', 'c6336407'],
  ])('encodes %s as its octets', (ip, hex) => {
    expect(ipOctets(ip).toString('hex')).toBe(hex);
  });

  it('refuses a bad node name, no names, too many, a bad address or DNS name', () => {
    expect(() => servingCsr('Edge 1', ['192.0.2.2'])).toThrow(NodeCsrError);
    expect(() => servingCsr('p-1', [])).toThrow(/needs an IP address or a DNS name/);
    expect(() =>
      servingCsr(
        'p-1',
        Array.from({ length: MAX_SERVING_NAMES + 1 }, (_, i) => `10.0.0.${i}`),
      ),
    ).toThrow(NodeCsrError);
    for (const ip of ['', '192.0.2', '256.1.1.1', 'fe80::1%eth0', 'example.com', '1.2.3.4/32'])
      expect(() => servingCsr('p-1', [ip])).toThrow(/not an IP address/);
    for (const d of ['Upper.example', 'a..b', '-x', 'x'.repeat(254), 'a b'])
      expect(() => servingCsr('p-1', ['192.0.2.2'], [d])).toThrow(/not a DNS name/);
  });
});
