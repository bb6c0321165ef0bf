/**
 * The Kubernetes objects of the fleet's identity, and the one place that builds and reads them: join-token Secrets,
 * the revocation list Secret and the fleet ConfigMap. The registrar, the `edgefarm` CLI and the provider's revoker all
 * go through these functions, so the layout (decision 0008, docs/reference/registration.md) cannot drift.
 *
 * - Join token: Secret `edgefarm-join-<id>` of type `edgefarm.io/join-token`, label `edgefarm.io/node=<node>`, data
 *   `node`, `secret-sha256` (hex of sha256 of the token's secret), `expiration` (RFC3339). Only the hash is stored.
 * - Revocations: Secret `edgefarm-revocations`, data `{ <user public key>: base64 of unix seconds }`.
 * - Fleet: ConfigMap `edgefarm-fleet`, data `ca.crt` (the fleet CA, PEM) and `registrarUrl`.
 */
import { createHash, randomInt } from 'node:crypto';
import { X509Certificate } from 'node:crypto';
import { isUserPublicKey } from '@edgefarm/proto';

export const FLEET_NAMESPACE = 'edgefarm-system';
export const JOIN_TOKEN_TYPE = 'edgefarm.io/join-token';
export const NODE_LABEL = 'edgefarm.io/node';
export const REVOCATIONS_SECRET = 'edgefarm-revocations';
export const FLEET_CONFIGMAP = 'edgefarm-fleet';
export const FLEET_KEYS = { ca: 'ca.crt', registrarUrl: 'registrarUrl' } as const;
/** The longest a join token may live. */
export const MAX_TOKEN_TTL_SECONDS = 24 * 3600;

const TOKEN_PREFIX = 'ef1';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const TOKEN = /^ef1\.([a-z0-9]{6})\.([a-z0-9]{32})\.([0-9a-f]{64})$/;
const TOKEN_ID = /^[a-z0-9]{6}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A value of the fleet's layout that is not what it must be; `field` names it. */
export class FleetFormatError extends Error {
  override name = 'FleetFormatError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}
export const isFleetFormatError = (err: unknown): err is FleetFormatError => err instanceof FleetFormatError;

/** A join token's parts: `ef1.<id>.<secret>.<cahash>`. */
export interface JoinToken {
  id: string;
  secret: string;
  /** Hex sha256 over the DER of the fleet CA certificate the site must find in the registrar's chain. */
  caHash: string;
}

/** True for a Kubernetes object name an EdgeNode may have (a DNS subdomain, at most 253 characters). */
export function isNodeName(value: string): boolean {
  return value.length <= 253 && DNS_SUBDOMAIN.test(value);
}

export function isTokenId(value: string): boolean {
  return TOKEN_ID.test(value);
}

export function formatJoinToken(t: JoinToken): string {
  return `${TOKEN_PREFIX}.${t.id}.${t.secret}.${t.caHash}`;
}

/** Parses a token string; throws {@link FleetFormatError} (without echoing the secret) when it is not one. */
export function parseJoinToken(text: string): JoinToken {
  const m = text.length <= 128 ? TOKEN.exec(text) : null;
  if (!m) throw new FleetFormatError('token', 'not a join token (ef1.<id>.<secret>.<cahash>)');
  return { id: m[1]!, secret: m[2]!, caHash: m[3]! };
}

function randomText(n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += ALPHABET[randomInt(ALPHABET.length)];
  return out;
}

/** A fresh token for the fleet CA of this hash (crypto.randomInt: 32 characters of [a-z0-9] are ~165 bits). */
export function newJoinToken(caHash: string): JoinToken {
  if (!/^[0-9a-f]{64}$/.test(caHash)) throw new FleetFormatError('caHash', 'not 64 hex characters');
  return { id: randomText(6), secret: randomText(32), caHash };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Hex sha256 over the DER of the first certificate in `pem`. */
export function caHashOf(pem: string | Buffer): string {
  return sha256Hex(new X509Certificate(pem).raw);
}

export function tokenSecretName(id: string): string {
  return `edgefarm-join-${id}`;
}

/** The part of a Kubernetes Secret these functions read and write. */
export interface SecretLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    creationTimestamp?: Date | string;
  };
  type?: string;
  data?: Record<string, string>;
}

/** What a token Secret records. */
export interface TokenRecord {
  id: string;
  node: string;
  /** Hex sha256 of the token's secret. */
  secretSha256: string;
  expiration: Date;
  /** Labels the EdgeNode gets when the join creates it (spec.labels, which become the Node's). */
  labels: Record<string, string>;
  uid: string;
  resourceVersion: string;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string | undefined, field: string): string => {
  if (s === undefined || s.length > 4096 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new FleetFormatError(field, 'missing or not base64');
  return Buffer.from(s, 'base64').toString('utf8');
};

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/;

/** Kubernetes labels (at most 32); throws {@link FleetFormatError} naming the first that is not one. */
export function checkLabels(labels: Record<string, string>): Record<string, string> {
  const entries = Object.entries(labels);
  if (entries.length > 32) throw new FleetFormatError('labels', 'at most 32');
  for (const [k, v] of entries) {
    if (k.length > 253 || !LABEL_KEY.test(k) || typeof v !== 'string' || !LABEL_VALUE.test(v))
      throw new FleetFormatError('labels', `"${k.slice(0, 60)}" is not a label`);
  }
  return labels;
}

/** The Secret that records a join token for `node`, valid until `expiration`, with the labels its EdgeNode gets. */
export function joinTokenSecret(
  token: JoinToken,
  node: string,
  expiration: Date,
  namespace = FLEET_NAMESPACE,
  labels: Record<string, string> = {},
): SecretLike {
  if (!isNodeName(node)) throw new FleetFormatError('node', `"${node}" is not a node name`);
  checkLabels(labels);
  return {
    metadata: {
      name: tokenSecretName(token.id),
      namespace,
      labels: { [NODE_LABEL]: node, 'app.kubernetes.io/part-of': 'edgefarm' },
    },
    type: JOIN_TOKEN_TYPE,
    data: {
      node: b64(node),
      'secret-sha256': b64(sha256Hex(token.secret)),
      expiration: b64(expiration.toISOString()),
      ...(Object.keys(labels).length > 0 ? { labels: b64(JSON.stringify(labels)) } : {}),
    },
  };
}

/** Reads a join token Secret; throws {@link FleetFormatError} when it is not one, or its label and data disagree. */
export function readTokenSecret(secret: SecretLike): TokenRecord {
  if (typeof secret !== 'object' || secret === null) throw new FleetFormatError('secret', 'is not an object');
  const rawName: unknown = secret.metadata?.name;
  const name = typeof rawName === 'string' ? rawName : '';
  const id = name.startsWith('edgefarm-join-') ? name.slice('edgefarm-join-'.length) : '';
  if (!isTokenId(id)) throw new FleetFormatError('metadata.name', `"${name}" is not edgefarm-join-<id>`);
  if (secret.type !== JOIN_TOKEN_TYPE) throw new FleetFormatError('type', `is not ${JOIN_TOKEN_TYPE}`);
  const node = unb64(secret.data?.node, 'data.node');
  if (!isNodeName(node)) throw new FleetFormatError('data.node', 'is not a node name');
  if (secret.metadata?.labels?.[NODE_LABEL] !== node) throw new FleetFormatError(`label ${NODE_LABEL}`, 'differs from data.node');
  const secretSha256 = unb64(secret.data?.['secret-sha256'], 'data.secret-sha256');
  if (!/^[0-9a-f]{64}$/.test(secretSha256)) throw new FleetFormatError('data.secret-sha256', 'is not 64 hex characters');
  const expText = unb64(secret.data?.expiration, 'data.expiration');
  const expiration = new Date(expText);
  if (!/^\d{4}-\d\d-\d\dT/.test(expText) || Number.isNaN(expiration.getTime()))
    throw new FleetFormatError('data.expiration', 'is not RFC3339');
  let labels: Record<string, string> = {};
  if (secret.data?.labels !== undefined) {
    try {
      labels = checkLabels(JSON.parse(unb64(secret.data.labels, 'data.labels')) as Record<string, string>);
    } catch {
      throw new FleetFormatError('data.labels', 'is not a JSON object of labels');
    }
    if (typeof labels !== 'object' || labels === null || Array.isArray(labels))
      throw new FleetFormatError('data.labels', 'is not a JSON object of labels');
  }
  const uid = secret.metadata?.uid ?? '';
  const resourceVersion = secret.metadata?.resourceVersion ?? '';
  return { id, node, secretSha256, expiration, labels, uid, resourceVersion };
}

/** The revocation list: user public key -> unix seconds from which its JWTs issued before are refused. */
export type Revocations = Record<string, number>;

/**
 * The revocation list of the Secret's data. Entries that are not a user key with whole unix seconds are left out
 * and named in `malformed` (a hand edit must not stop every other revocation).
 */
export function readRevocations(data: Record<string, string> | undefined): { revocations: Revocations; malformed: string[] } {
  const revocations: Revocations = {};
  const malformed: string[] = [];
  for (const [key, value] of Object.entries(data ?? {})) {
    let seconds = NaN;
    try {
      const text = unb64(value, key);
      seconds = /^\d{1,12}$/.test(text) ? Number(text) : NaN;
    } catch {
      // reported below
    }
    if (isUserPublicKey(key) && Number.isSafeInteger(seconds)) revocations[key] = seconds;
    else malformed.push(key);
  }
  return { revocations, malformed };
}

/** The Secret data entry that revokes `publicKey` from `at` on (merge-patch it into the revocation Secret). */
export function revocationEntry(publicKey: string, at: Date): Record<string, string> {
  if (!isUserPublicKey(publicKey)) throw new FleetFormatError('publicKey', 'is not a NATS user public key');
  return { [publicKey]: b64(String(Math.floor(at.getTime() / 1000))) };
}

/** The EdgeNode's recorded NATS identity (status.identity), or undefined when there is none or it is malformed. */
export interface NodeIdentity {
  publicKey: string;
  issuedAt: string;
  expiresAt: string;
}

export function identityOf(edgeNode: { status?: unknown } | undefined): NodeIdentity | undefined {
  const id = (edgeNode?.status as { identity?: Partial<NodeIdentity> } | undefined)?.identity;
  if (!id || typeof id.publicKey !== 'string' || !isUserPublicKey(id.publicKey)) return undefined;
  return { publicKey: id.publicKey, issuedAt: String(id.issuedAt ?? ''), expiresAt: String(id.expiresAt ?? '') };
}
