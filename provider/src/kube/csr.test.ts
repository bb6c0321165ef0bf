import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeCsrError, nodeClientCsr } from './csr.js';

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
