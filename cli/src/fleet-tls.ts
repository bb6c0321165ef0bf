/**
 * The fleet's TLS (decision 0008, reference/install.md): a fleet CA and the hub's and the registrar's serving
 * certificates, made by `edgefarm fleet init` into one directory and read by `edgefarm fleet secrets`:
 *
 *   <dir>/ca.crt, ca.key               the fleet CA: ECDSA P-256, CA:TRUE, keyCertSign+cRLSign (10 years)
 *   <dir>/hub.crt, hub.key             serverAuth+clientAuth (the hub's members dial each other's cluster port)
 *   <dir>/registrar.crt, registrar.key serverAuth
 *
 * Keys are PKCS#8 PEM files of mode 0600. What exists is kept (as hack/pki.sh fleet does): a certificate is made only
 * when its file is missing, so rerunning is safe, and a kept certificate must chain to ca.crt. node:crypto cannot
 * issue certificates; @peculiar/x509 (over node's WebCrypto) does, and reads them back.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, createPublicKey, randomBytes, webcrypto, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import { writeFileAtomic } from '@edgefarm/identity';
import { CliError, EXIT } from './errors.js';

x509.cryptoProvider.set(globalThis.crypto);

type CryptoKey = webcrypto.CryptoKey;

/** The file names of a TLS directory (the same that hack/pki.sh fleet writes for the local stack). */
export const TLS_FILES = {
  ca: 'ca.crt',
  caKey: 'ca.key',
  hubCert: 'hub.crt',
  hubKey: 'hub.key',
  registrarCert: 'registrar.crt',
  registrarKey: 'registrar.key',
} as const;

/** The base's hub StatefulSet and its Services (manifests/base/hub.yaml). */
export const HUB_STATEFULSET = 'edgefarm-hub';
export const HUB_LEAF_SERVICE = 'edgefarm-hub-leaf';
export const HUB_MEMBER_COUNTS = [1, 3, 5] as const;

const CA_DAYS = 3650;
/** Certificates are valid from a little before now: a clock a few minutes behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface SanName {
  type: 'dns' | 'ip';
  value: string;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A certificate name: an IPv4/IPv6 address or a lower-case DNS name (no wildcards); a usage error otherwise. */
export function sanName(text: string, flag: string): SanName {
  if (isIP(text)) return { type: 'ip', value: text };
  if (text.length <= 253 && text.split('.').every((l) => DNS_LABEL.test(l))) return { type: 'dns', value: text };
  throw new CliError(EXIT.usage, `${flag} ${JSON.stringify(text.slice(0, 80))}: expected an IP address or a lower-case DNS name`);
}

/**
 * The hub certificate's names: the given ones, then for the base's StatefulSet every member's names
 * (`edgefarm-hub-N.edgefarm-hub` as the provider and the routes dial them, `...<namespace>.svc`) and the leaf
 * Service's in-cluster name.
 */
export function hubSans(given: SanName[], members: number, namespace: string): SanName[] {
  const names = [...given];
  for (let n = 0; n < members; n++) {
    names.push({ type: 'dns', value: `${HUB_STATEFULSET}-${n}.${HUB_STATEFULSET}` });
    names.push({ type: 'dns', value: `${HUB_STATEFULSET}-${n}.${HUB_STATEFULSET}.${namespace}.svc` });
  }
  names.push({ type: 'dns', value: `${HUB_LEAF_SERVICE}.${namespace}.svc` });
  const seen = new Set<string>();
  return names.filter((n) => !seen.has(`${n.type}:${n.value}`) && seen.add(`${n.type}:${n.value}`));
}

export interface FleetTlsOptions {
  dir: string;
  hubNames: SanName[];
  registrarNames: SanName[];
  hubMembers: number;
  namespace: string;
  /** Validity of the hub's and the registrar's certificates (never past the CA's). */
  days: number;
  now: () => number;
}

export interface FleetTlsResult {
  made: string[];
  kept: string[];
  /** Kept certificates whose names differ from those asked for (remove the file to make it anew). */
  warnings: string[];
}

interface Signer {
  cert: x509.X509Certificate;
  key: CryptoKey;
  algorithm: webcrypto.EcdsaParams | webcrypto.RsaHashedImportParams;
}

/** Makes what is missing of the fleet's TLS in `o.dir` (created 0700); keeps what exists. */
export async function ensureFleetTls(o: FleetTlsOptions): Promise<FleetTlsResult> {
  const file = (name: string) => path.join(o.dir, name);
  const result: FleetTlsResult = { made: [], kept: [], warnings: [] };
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  await chmod(o.dir, 0o700);
  const leaves = [
    { name: 'hub', cert: TLS_FILES.hubCert, key: TLS_FILES.hubKey, sans: hubSans(o.hubNames, o.hubMembers, o.namespace), client: true },
    { name: 'registrar', cert: TLS_FILES.registrarCert, key: TLS_FILES.registrarKey, sans: o.registrarNames, client: false },
  ];
  const [haveCa, haveCaKey] = [await exists(file(TLS_FILES.ca)), await exists(file(TLS_FILES.caKey))];
  const missing = [];
  for (const l of leaves) if (!(await exists(file(l.cert)))) missing.push(l);

  let ca: x509.X509Certificate;
  let signer: Signer | undefined;
  if (!haveCa) {
    if (haveCaKey || missing.length < leaves.length)
      throw new CliError(EXIT.failed, `${o.dir} holds a CA key or certificates but no ${TLS_FILES.ca}: remove them to make a new fleet CA`);
    signer = await makeCa(o, file);
    ca = signer.cert;
    result.made.push('ca');
  } else {
    ca = await readCert(file(TLS_FILES.ca));
    result.kept.push('ca');
    if (missing.length > 0) {
      if (!haveCaKey)
        throw new CliError(
          EXIT.failed,
          `${file(TLS_FILES.caKey)} is missing: the CA key is needed to sign ${missing.map((m) => m.cert).join(', ')}`,
        );
      signer = await readSigner(ca, file(TLS_FILES.caKey));
    }
  }
  for (const l of leaves) {
    if (missing.includes(l)) {
      await makeLeaf(signer!, l, o, file);
      result.made.push(l.name);
      continue;
    }
    const cert = await readCert(file(l.cert));
    if (!(await signedBy(cert, ca))) throw new CliError(EXIT.failed, `${file(l.cert)} is not signed by ${file(TLS_FILES.ca)}`);
    const have = sansOf(cert);
    const want = l.sans.map((s) => `${s.type}:${s.value}`);
    const lacks = want.filter((n) => !have.includes(n));
    const extra = have.filter((n) => !want.includes(n));
    if (lacks.length || extra.length)
      result.warnings.push(
        `kept ${file(l.cert)}${lacks.length ? ` lacks ${lacks.join(',')}` : ''}${extra.length ? ` names ${extra.join(',')} not asked for` : ''}: remove it to make it anew`,
      );
    result.kept.push(l.name);
  }
  return result;
}

async function makeCa(o: FleetTlsOptions, file: (n: string) => string): Promise<Signer> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const now = o.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=edgefarm fleet CA',
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  // the key first: a ca.crt without its key would make the next run refuse to sign
  await writeFileAtomic(file(TLS_FILES.caKey), await pkcs8Pem(keys.privateKey), 0o600);
  await writeFileAtomic(file(TLS_FILES.ca), cert.toString('pem') + '\n', 0o644);
  return { cert, key: keys.privateKey, algorithm: EC_SIGN };
}

async function makeLeaf(
  ca: Signer,
  l: { name: string; cert: string; key: string; sans: SanName[]; client: boolean },
  o: FleetTlsOptions,
  file: (n: string) => string,
): Promise<void> {
  if (l.sans.length === 0) throw new CliError(EXIT.usage, `the ${l.name} certificate needs at least one name`);
  // an existing key is reused (its certificate was removed to change the names)
  let publicKey: CryptoKey | ArrayBuffer;
  if (await exists(file(l.key))) {
    publicKey = new Uint8Array(createPublicKey(await keyObject(file(l.key))).export({ type: 'spki', format: 'der' })).buffer;
  } else {
    const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    await writeFileAtomic(file(l.key), await pkcs8Pem(keys.privateKey), 0o600);
    publicKey = keys.publicKey;
  }
  const now = o.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=edgefarm-${l.name}`,
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(Math.min(now + o.days * DAY_MS, ca.cert.notAfter.getTime())),
    publicKey,
    signingKey: ca.key,
    signingAlgorithm: ca.algorithm,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        l.client ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth],
      ),
      new x509.SubjectAlternativeNameExtension(l.sans),
      await x509.SubjectKeyIdentifierExtension.create(publicKey instanceof ArrayBuffer ? new x509.PublicKey(publicKey) : publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  });
  await writeFileAtomic(file(l.cert), cert.toString('pem') + '\n', 0o644);
}

/** A CA key of this directory: ours (ECDSA P-256) or an openssl-made RSA one (hack/pki.sh's). */
async function readSigner(cert: x509.X509Certificate, keyFile: string): Promise<Signer> {
  const k = await keyObject(keyFile);
  if (!sameKey(k, cert)) throw new CliError(EXIT.failed, `${keyFile} is not the key of the CA certificate`);
  if (k.asymmetricKeyType === 'ec' && k.asymmetricKeyDetails?.namedCurve === 'prime256v1')
    return { cert, key: k.toCryptoKey(EC, false, ['sign']), algorithm: EC_SIGN };
  if (k.asymmetricKeyType === 'rsa') {
    const rsa = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    return { cert, key: k.toCryptoKey(rsa, false, ['sign']), algorithm: rsa };
  }
  throw new CliError(EXIT.failed, `${keyFile}: a CA key must be ECDSA P-256 or RSA`);
}

export async function readCert(file: string): Promise<x509.X509Certificate> {
  const text = await readText(file);
  try {
    return new x509.X509Certificate(text);
  } catch (err) {
    throw new CliError(EXIT.failed, `${file}: not a PEM certificate`, { cause: err });
  }
}

async function keyObject(file: string): Promise<KeyObject> {
  const text = await readText(file);
  try {
    return createPrivateKey(text);
  } catch (err) {
    throw new CliError(EXIT.failed, `${file}: not a PEM private key`, { cause: err });
  }
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError(EXIT.notFound, `${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

function sameKey(key: KeyObject, cert: x509.X509Certificate): boolean {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return Buffer.from(cert.publicKey.rawData).equals(spki);
}

export async function signedBy(cert: x509.X509Certificate, ca: x509.X509Certificate): Promise<boolean> {
  try {
    return cert.issuer === ca.subject && (await cert.verify({ publicKey: ca, signatureOnly: true }));
  } catch {
    return false;
  }
}

/** `dns:name` and `ip:address` of a certificate's subjectAltName. */
export function sansOf(cert: x509.X509Certificate): string[] {
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension);
  return (ext?.names.items ?? []).map((n) => `${n.type}:${n.value}`);
}

export interface TlsPair {
  cert: string;
  key: string;
}

export interface FleetTlsFiles {
  ca: string;
  hub: TlsPair;
  registrar: TlsPair;
}

/**
 * The PEM texts `fleet secrets` puts into the objects, checked: each certificate parses and is signed by ca.crt, and
 * each key is its certificate's.
 */
export async function readFleetTls(dir: string): Promise<FleetTlsFiles> {
  const file = (name: string) => path.join(dir, name);
  const ca = await readCert(file(TLS_FILES.ca));
  const pair = async (certName: string, keyName: string): Promise<TlsPair> => {
    const cert = await readCert(file(certName));
    if (!(await signedBy(cert, ca))) throw new CliError(EXIT.failed, `${file(certName)} is not signed by ${file(TLS_FILES.ca)}`);
    if (!sameKey(await keyObject(file(keyName)), cert))
      throw new CliError(EXIT.failed, `${file(keyName)} is not the key of ${file(certName)}`);
    return { cert: await readText(file(certName)), key: await readText(file(keyName)) };
  };
  return {
    ca: await readText(file(TLS_FILES.ca)),
    hub: await pair(TLS_FILES.hubCert, TLS_FILES.hubKey),
    registrar: await pair(TLS_FILES.registrarCert, TLS_FILES.registrarKey),
  };
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY') + '\n';
}

/** 16 random bytes, positive. */
function serial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  b[0]! |= 0x01;
  return b.toString('hex');
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
