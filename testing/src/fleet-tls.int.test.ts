/** hack/pki.sh fleet: the fleet CA and a serving certificate with the given SANs, made once. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeFleetTls } from './fleet-tls.js';

const exec = promisify(execFile);
const openssl = async (...args: string[]) => (await exec('openssl', args)).stdout;

describe('hack/pki.sh fleet', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ef-fleet-tls-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes a CA and a certificate it signed, with the SANs asked for, for server and client use; keys 0600', async () => {
    const tls = await makeFleetTls(path.join(dir, 'tls'), 'registrar', 'IP:127.0.0.1,IP:10.1.2.3,DNS:registrar.example');
    expect(await openssl('verify', '-CAfile', tls.caFile, tls.certFile)).toContain(': OK');
    const ext = await openssl('x509', '-in', tls.certFile, '-noout', '-ext', 'subjectAltName,extendedKeyUsage');
    expect(ext).toContain('IP Address:127.0.0.1, IP Address:10.1.2.3, DNS:registrar.example');
    expect(ext).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(await openssl('x509', '-in', tls.caFile, '-noout', '-ext', 'basicConstraints')).toContain('CA:TRUE');
    for (const f of [tls.caKeyFile, tls.keyFile]) expect([f, (await stat(f)).mode & 0o777]).toEqual([f, 0o600]);
    expect((await stat(tls.dir)).mode & 0o777).toBe(0o700);
  });

  it('keeps the CA and the certificate on a second run, and signs a second name with the same CA', async () => {
    const first = await makeFleetTls(path.join(dir, 'again'), 'hub');
    const ca = await readFile(first.caFile, 'utf8');
    const cert = await readFile(first.certFile, 'utf8');
    const second = await makeFleetTls(path.join(dir, 'again'), 'hub');
    expect(await readFile(second.caFile, 'utf8')).toBe(ca);
    expect(await readFile(second.certFile, 'utf8')).toBe(cert);
    const other = await makeFleetTls(path.join(dir, 'again'), 'registrar', 'DNS:localhost');
    expect(await readFile(other.caFile, 'utf8')).toBe(ca);
    expect(await openssl('verify', '-CAfile', other.caFile, other.certFile)).toContain(': OK');
  });

  it.each([
    ['a name with a slash', '../x', 'IP:127.0.0.1'],
    ['the CA name', 'ca', 'IP:127.0.0.1'],
    ['SANs that are not IP:/DNS: entries', 'hub', 'URI:http://x'],
    ['SANs with an empty entry', 'hub', 'IP:127.0.0.1,'],
  ])('refuses %s', async (_what, name, sans) => {
    await expect(makeFleetTls(path.join(dir, 'bad'), name, sans)).rejects.toThrow(/pki.sh fleet/);
  });
});
