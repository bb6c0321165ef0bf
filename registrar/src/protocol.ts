/**
 * The registration protocol between a site and the registrar (HTTPS, JSON): the requests, the answers, the errors,
 * and the strict validators both sides use. Every field is bounded; an object with a field not named here is refused.
 *
 *   POST /v1/join    JoinRequest  -> JoinResponse    authenticated by the join token alone
 *   POST /v1/renew   RenewRequest -> RenewResponse   the raw body signed with the node's nkey seed, base64url in the
 *                                                    `x-edgefarm-signature` header
 *   errors           { error: { code, message } } with the HTTP status of the code (ERROR_STATUS)
 */
import { isUserPublicKey } from '@edgefarm/proto';
import { isNodeName } from './fleet.js';

export const PATHS = { join: '/v1/join', renew: '/v1/renew', healthz: '/healthz', metrics: '/metrics' } as const;
export const SIGNATURE_HEADER = 'x-edgefarm-signature';
/** The largest request body the registrar reads. */
export const MAX_BODY_BYTES = 16 * 1024;
/** How far a client's clock may be from the registrar's (credentials carry validity times); also the replay window. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface JoinRequest {
  /** `ef1.<id>.<secret>.<cahash>` */
  token: string;
  /** The node's NATS user public key, generated on the device. */
  publicKey: string;
  /** The agent's site-local public key (recorded in the audit log; never used on the hub). */
  agentPublicKey?: string;
  /** The node name the site expects to be (`edgefarm join --node`); refused when the token is another node's. */
  node?: string;
  /** The site's clock, RFC3339. */
  clientTime: string;
}

/** A node's fresh credentials. */
export interface Credentials {
  node: string;
  /** What every subject names the node by: its public key (proto nodeWireId). */
  wireId: string;
  /** The node's user JWT (signed by the EF_SITES scoped key). */
  jwt: string;
  issuedAt: string;
  expiresAt: string;
}

export interface JoinResponse extends Credentials {
  /** The fleet CA (PEM): the hub's and the registrar's certificates chain to it. */
  caPem: string;
  /** The hub's leafnode URLs (tls://host:port). */
  hubLeafUrls: string[];
  /** The site's JetStream domain (proto siteDomain). */
  domain: string;
  /** Where the site renews its credentials. */
  registrarUrl: string;
}

export interface RenewRequest {
  node: string;
  publicKey: string;
  /** The site's clock, RFC3339: within MAX_CLOCK_SKEW_MS of the registrar's. */
  time: string;
  /** 16-64 characters of [A-Za-z0-9_-], never used twice within the replay window. */
  nonce: string;
}

export type RenewResponse = Credentials;

export const ERROR_STATUS = {
  malformed: 400,
  'clock-skew': 400,
  'token-unknown': 401,
  'token-reused': 401,
  'token-expired': 401,
  'token-wrong-node': 401,
  'bad-signature': 401,
  'key-mismatch': 403,
  revoked: 403,
  'name-taken': 409,
  replay: 409,
  'unknown-node': 404,
  'too-large': 413,
  'unsupported-media-type': 415,
  'rate-limited': 429,
  busy: 503,
  unavailable: 503,
  internal: 500,
} as const;
export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** A request the registrar refuses (or could not serve): `code` says which, the message says what to do. */
export class RegistrarError extends Error {
  override name = 'RegistrarError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
export const isRegistrarError = (err: unknown): err is RegistrarError => err instanceof RegistrarError;

const NONCE = /^[A-Za-z0-9_-]{16,64}$/;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

function malformed(message: string): RegistrarError {
  return new RegistrarError('malformed', message);
}

function record(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw malformed('the body is not a JSON object');
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw malformed(`unknown field ${JSON.stringify(extra[0]!.slice(0, 40))}`);
  return body as Record<string, unknown>;
}

function str(o: Record<string, unknown>, field: string, max: number, optional = false): string | undefined {
  const v = o[field];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw malformed(`${field}: expected a string of 1-${max} characters`);
  return v;
}

/** An RFC3339 time as a Date; throws `malformed` naming the field. */
export function parseTime(text: string, field: string): Date {
  const t = new Date(text);
  if (!RFC3339.test(text) || Number.isNaN(t.getTime())) throw malformed(`${field}: not an RFC3339 time`);
  return t;
}

function userKey(text: string | undefined, field: string): string | undefined {
  if (text !== undefined && !isUserPublicKey(text)) throw malformed(`${field}: not a NATS user public key (U...)`);
  return text;
}

function nodeName(text: string | undefined, field: string): string | undefined {
  if (text !== undefined && !isNodeName(text)) throw malformed(`${field}: not a node name (DNS subdomain)`);
  return text;
}

/** Validates a join request body (parsed JSON); the token's own format is checked by the registrar. */
export function parseJoinRequest(body: unknown): JoinRequest {
  const o = record(body, ['token', 'publicKey', 'agentPublicKey', 'node', 'clientTime']);
  const token = str(o, 'token', 128)!;
  const publicKey = userKey(str(o, 'publicKey', 56), 'publicKey')!;
  const agentPublicKey = userKey(str(o, 'agentPublicKey', 56, true), 'agentPublicKey');
  if (agentPublicKey === publicKey) throw malformed('agentPublicKey: must differ from publicKey');
  const node = nodeName(str(o, 'node', 253, true), 'node');
  const clientTime = str(o, 'clientTime', 40)!;
  parseTime(clientTime, 'clientTime');
  return { token, publicKey, clientTime, ...(agentPublicKey ? { agentPublicKey } : {}), ...(node ? { node } : {}) };
}

/** Validates a renew request body (parsed JSON). */
export function parseRenewRequest(body: unknown): RenewRequest {
  const o = record(body, ['node', 'publicKey', 'time', 'nonce']);
  const node = nodeName(str(o, 'node', 253), 'node')!;
  const publicKey = userKey(str(o, 'publicKey', 56), 'publicKey')!;
  const time = str(o, 'time', 40)!;
  parseTime(time, 'time');
  const nonce = str(o, 'nonce', 64)!;
  if (!NONCE.test(nonce)) throw malformed('nonce: expected 16-64 characters of [A-Za-z0-9_-]');
  return { node, publicKey, time, nonce };
}

/** A hub leafnode URL as a site accepts it (tls://host:port; nats-leaf:// and nats:// too), at most 256 characters. */
export function isLeafUrl(u: unknown): u is string {
  return typeof u === 'string' && /^(tls|nats-leaf|nats):\/\/[^\s"]{1,250}$/.test(u);
}

function credentials(o: Record<string, unknown>): Credentials {
  const node = nodeName(str(o, 'node', 253), 'node')!;
  const wireId = str(o, 'wireId', 253)!;
  const jwt = str(o, 'jwt', 8192)!;
  const issuedAt = str(o, 'issuedAt', 40)!;
  const expiresAt = str(o, 'expiresAt', 40)!;
  parseTime(issuedAt, 'issuedAt');
  parseTime(expiresAt, 'expiresAt');
  return { node, wireId, jwt, issuedAt, expiresAt };
}

/** Validates the registrar's answer to a join (the site trusts nothing it did not check). */
export function parseJoinResponse(body: unknown): JoinResponse {
  const o = record(body, ['node', 'wireId', 'jwt', 'issuedAt', 'expiresAt', 'caPem', 'hubLeafUrls', 'domain', 'registrarUrl']);
  const caPem = str(o, 'caPem', 16_384)!;
  const urls = o.hubLeafUrls;
  if (!Array.isArray(urls) || urls.length === 0 || urls.length > 16 || !urls.every(isLeafUrl)) {
    throw malformed('hubLeafUrls: expected 1-16 URLs (tls://host:port)');
  }
  const domain = str(o, 'domain', 300)!;
  const registrarUrl = str(o, 'registrarUrl', 300)!;
  if (!/^https:\/\/[^\s"]+$/.test(registrarUrl)) throw malformed('registrarUrl: expected an https:// URL');
  return { ...credentials(o), caPem, hubLeafUrls: urls, domain, registrarUrl };
}

/** Validates the registrar's answer to a renewal. */
export function parseRenewResponse(body: unknown): RenewResponse {
  return credentials(record(body, ['node', 'wireId', 'jwt', 'issuedAt', 'expiresAt']));
}

/** The error of an error body, or undefined when the body is not one. */
export function parseErrorBody(body: unknown): ErrorBody['error'] | undefined {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (!e || typeof e.code !== 'string' || !Object.hasOwn(ERROR_STATUS, e.code) || typeof e.message !== 'string') return undefined;
  return { code: e.code, message: e.message.slice(0, 1000) };
}
