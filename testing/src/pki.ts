/**
 * A throwaway PKI made with openssl for one test: a CA and certificates it signs (server or client), with the SANs
 * asked for. Files are PEM in `dir`: <name>.crt, <name>.key (0600).
 */
import { execFile } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface TestCert {
  cert: string;
  key: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await exec('openssl', args, { cwd: dir });
}

/** A self-signed CA `name` (basicConstraints CA:TRUE, keyCertSign). */
export async function makeCa(dir: string, name: string, cn = `${name} test CA`): Promise<TestCert> {
  await openssl(dir, ['genrsa', '-out', `${name}.key`, '2048']);
  await chmod(path.join(dir, `${name}.key`), 0o600);
  await openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-sha256',
    '-days',
    '2',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${cn}`,
    '-out',
    `${name}.crt`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyCertSign,cRLSign',
  ]);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}

/** A certificate `name` signed by `ca`, for a server (with SANs like "IP:127.0.0.1,DNS:localhost") or a client. */
export async function makeCert(
  dir: string,
  ca: TestCert,
  name: string,
  o: { cn?: string; sans?: string; usage?: 'server' | 'client' } = {},
): Promise<TestCert> {
  const ext = path.join(dir, `${name}.ext`);
  await writeFile(
    ext,
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      `extendedKeyUsage=${o.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(o.sans ? [`subjectAltName=${o.sans}`] : []),
      '',
    ].join('\n'),
  );
  await openssl(dir, ['genrsa', '-out', `${name}.key`, '2048']);
  await chmod(path.join(dir, `${name}.key`), 0o600);
  await openssl(dir, ['req', '-new', '-sha256', '-key', `${name}.key`, '-subj', `/CN=${o.cn ?? name}`, '-out', `${name}.csr`]);
  await openssl(dir, [
    'x509',
    '-req',
    '-sha256',
    '-days',
    '2',
    '-in',
    `${name}.csr`,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}`,
    '-extfile',
    ext,
    '-out',
    `${name}.crt`,
  ]);
  return { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
}
