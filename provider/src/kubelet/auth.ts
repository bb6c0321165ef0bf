/**
 * Authentication and authorization of kubelet API requests, as a kubelet with webhook authn/authz does them
 * (pkg/kubelet/server/auth.go, k8s.io/apiserver's delegating authenticator and webhook authorizer):
 *
 * - x509: a client certificate that verifies against the client CA (the TLS layer checks the chain; see
 *   server.ts) names the user (CN) and groups (O). The apiserver presents its kubelet-client certificate.
 * - Bearer token: TokenReview. Anything else is anonymous, which is refused (401).
 * - Authorization: SubjectAccessReview on the node, verb from the HTTP method, subresource from the path:
 *   /stats → nodes/stats, /metrics → nodes/metrics, /logs → nodes/log, /spec → nodes/spec, anything else (exec,
 *   attach, portForward, containerLogs, pods, healthz, ...) → nodes/proxy. Denied → 403. The path is the one
 *   {@link parseKubeletPath} made, the same the server routes on (a path it refuses is neither routed nor authorized).
 * - Order: authenticate first, then the server looks the pod up, then authorizes: an anonymous caller learns nothing
 *   about which pods exist (401 for all).
 * Decisions are cached as the kubelet's webhooks cache them: tokens 2 min, allowed 5 min, denied 30 s.
 */
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AccessAttributes, KubeClient, UserInfo } from '../kube/client.js';
import { isBadRequestError, isSubpath, parseKubeletPath, type KubeletPath } from './routes.js';
import { failure, type V1Status } from './status.js';

export interface KubeletAuthOptions {
  kube: Pick<KubeClient, 'reviewToken' | 'reviewAccess'>;
  log: Logger;
  nowMs?: () => number;
  tokenTtlMs?: number;
  allowedTtlMs?: number;
  deniedTtlMs?: number;
  /** Entries per cache before the oldest go (bounds memory against token spraying). */
  maxEntries?: number;
}

/** The verdict on one request: the user, or the Status to answer with. */
export type AuthResult = { ok: true; user: UserInfo } | { ok: false; status: V1Status };

const VERBS: Record<string, string> = {
  GET: 'get',
  HEAD: 'get',
  OPTIONS: 'get',
  POST: 'create',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** Path prefixes with a subresource of their own (auth.go); everything else is nodes/proxy. */
const SUBRESOURCES: [string, string][] = [
  ['/stats', 'stats'],
  ['/metrics', 'metrics'],
  ['/logs', 'log'],
  ['/spec', 'spec'],
];

/**
 * The SubjectAccessReview attributes of a kubelet API request on `node` (auth.go GetRequestAttributes). A string
 * path (a request target) is parsed with {@link parseKubeletPath}, which throws a BadPathError for an ambiguous one.
 */
export function requestAttributes(method: string, path: KubeletPath | string, node: string): AccessAttributes {
  const p = typeof path === 'string' ? parseKubeletPath(path) : path;
  const subresource = SUBRESOURCES.find(([prefix]) => isSubpath(p, prefix))?.[1] ?? 'proxy';
  return { verb: VERBS[method.toUpperCase()] ?? method.toLowerCase(), resource: { group: '', resource: 'nodes', subresource, name: node } };
}

/** The user of a verified client certificate: CN is the name, each O a group. */
export function userOfCertificate(socket: TLSSocket): UserInfo | undefined {
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerCertificate();
  const cn = cert?.subject?.CN;
  if (!cn) return undefined;
  const o = cert.subject.O;
  return {
    username: Array.isArray(cn) ? cn[0]! : cn,
    groups: [...(o === undefined ? [] : Array.isArray(o) ? o : [o]), 'system:authenticated'],
  };
}

class TtlCache<V> {
  private readonly map = new Map<string, { value: V; expiresMs: number }>();
  constructor(private readonly max: number) {}
  get(key: string, nowMs: number): V | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.expiresMs > nowMs) return e.value;
    this.map.delete(key);
    return undefined;
  }
  set(key: string, value: V, expiresMs: number): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(key, { value, expiresMs });
  }
}

export class KubeletAuth {
  private readonly now: () => number;
  private readonly tokens: TtlCache<UserInfo | null>;
  private readonly decisions: TtlCache<{ allowed: boolean; reason?: string }>;

  constructor(private readonly o: KubeletAuthOptions) {
    this.now = o.nowMs ?? Date.now;
    this.tokens = new TtlCache(o.maxEntries ?? 4096);
    this.decisions = new TtlCache(o.maxEntries ?? 4096);
  }

  /** Who sent the request; undefined for anonymous (or a token the apiserver rejected). */
  async authenticate(req: IncomingMessage): Promise<UserInfo | undefined> {
    const fromCert = 'getPeerCertificate' in req.socket ? userOfCertificate(req.socket as TLSSocket) : undefined;
    if (fromCert) return fromCert;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) return undefined;
    const token = m[1]!;
    const cached = this.tokens.get(token, this.now());
    if (cached !== undefined) return cached ?? undefined;
    const user = await this.o.kube.reviewToken(token);
    this.tokens.set(token, user ?? null, this.now() + (this.o.tokenTtlMs ?? 120_000));
    return user;
  }

  async authorize(user: UserInfo, attrs: AccessAttributes): Promise<{ allowed: boolean; reason?: string }> {
    const key = JSON.stringify([user.username, user.uid ?? '', [...user.groups].sort(), attrs]);
    const cached = this.decisions.get(key, this.now());
    if (cached) return cached;
    const d = await this.o.kube.reviewAccess(user, attrs);
    this.decisions.set(key, d, this.now() + (d.allowed ? (this.o.allowedTtlMs ?? 300_000) : (this.o.deniedTtlMs ?? 30_000)));
    return d;
  }

  /** Authenticates a request: the user, or the Status to answer (401 anonymous, 500 when the review failed). */
  async identify(req: IncomingMessage): Promise<AuthResult> {
    let user: UserInfo | undefined;
    try {
      user = await this.authenticate(req);
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'TokenReview failed');
      return { ok: false, status: failure(500, 'InternalError', 'authentication failed: the TokenReview did not complete') };
    }
    if (!user) return { ok: false, status: failure(401, 'Unauthorized', 'Unauthorized') };
    return { ok: true, user };
  }

  /**
   * Authenticates and authorizes a request on `node`; the Status to answer when it may not proceed. `path` is the
   * request's parsed path; without it req.url is parsed (a path that is not one unambiguous path: 400).
   */
  async check(req: IncomingMessage, node: string, path?: KubeletPath): Promise<AuthResult> {
    const who = await this.identify(req);
    if (!who.ok) return who;
    return this.permit(who.user, req.method ?? 'GET', path ?? req.url ?? '/', node);
  }

  /** Authorizes an authenticated user's request on `node` (403 when denied, 400 for an ambiguous path). */
  async permit(user: UserInfo, method: string, path: KubeletPath | string, node: string): Promise<AuthResult> {
    let attrs: AccessAttributes;
    try {
      attrs = requestAttributes(method, path, node);
    } catch (err) {
      if (isBadRequestError(err)) return { ok: false, status: failure(400, 'BadRequest', err.message) };
      throw err;
    }
    try {
      const d = await this.authorize(user, attrs);
      if (d.allowed) return { ok: true, user };
      const r = attrs.resource!;
      const message = `Forbidden (user=${user.username}, verb=${attrs.verb}, resource=${r.resource}, subresource=${r.subresource})`;
      return { ok: false, status: failure(403, 'Forbidden', d.reason ? `${message}: ${d.reason}` : message) };
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'SubjectAccessReview failed');
      return { ok: false, status: failure(500, 'InternalError', 'authorization failed: the SubjectAccessReview did not complete') };
    }
  }
}
