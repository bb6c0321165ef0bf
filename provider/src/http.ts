/**
 * The provider's plain HTTP endpoint: /healthz (the process runs), /readyz (its hub connection is open) and /metrics
 * (Prometheus text exposition of the provider's registry). Anything else is a 404.
 *
 * /metrics may require authentication and authorization (EF_METRICS_AUTH, off by default: a plain Prometheus scrape
 * works), as kube-rbac-proxy does it: the scraper's bearer token through TokenReview, then a SubjectAccessReview of
 * `get` on the non-resource URL `/metrics` (a ClusterRole with `nonResourceURLs: ["/metrics"], verbs: ["get"]`).
 * 401 without a valid token, 403 without the right; refusals are counted by reason.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { KubeletAuth } from './kubelet/auth.js';
import { failure, type V1Status } from './kubelet/status.js';
import { PREFIX } from './metrics/metrics.js';

/** Why a /metrics request was refused. */
export const METRICS_REJECT_REASONS = ['unauthenticated', 'forbidden', 'auth_error'] as const;
export type MetricsRejectReason = (typeof METRICS_REJECT_REASONS)[number];

export interface HttpServerDeps {
  /** undefined when ready, else why not (answered with 503). */
  notReady(): string | undefined;
  /** The Prometheus exposition and its content type. */
  metrics: { text(): Promise<string>; readonly contentType: string };
  /** When set, /metrics requires a token allowed `get` on the non-resource URL /metrics. */
  metricsAuth?: Pick<KubeletAuth, 'identify' | 'authorize'>;
  /** Where the refusal counter goes (default: a registry of its own). */
  registry?: Registry;
}

export function httpServer(deps: HttpServerDeps): FastifyInstance {
  const http = Fastify({ logger: false });
  const rejects = metricsRejects(deps.registry);
  http.get('/healthz', async () => 'ok');
  http.get('/readyz', async (_req, reply) => {
    const why = deps.notReady();
    return reply.code(why ? 503 : 200).send(why ?? 'ok');
  });
  http.get('/metrics', async (req, reply) => {
    if (deps.metricsAuth) {
      const refused = await checkScrape(deps.metricsAuth, req);
      if (refused) {
        rejects.inc({ reason: refused.reason });
        return sendStatus(reply, refused.status);
      }
    }
    try {
      const text = await deps.metrics.text();
      return reply.code(200).header('content-type', deps.metrics.contentType).send(text);
    } catch (err) {
      return reply
        .code(500)
        .type('text/plain')
        .send(`collecting metrics failed: ${(err as Error).message}`);
    }
  });
  return http;
}

/** The counter of refused /metrics requests, every reason at 0 from the start. */
function metricsRejects(registry: Registry | undefined): Counter<'reason'> {
  const name = `${PREFIX}metrics_requests_rejected_total`;
  const have = registry?.getSingleMetric(name);
  if (have) return have as Counter<'reason'>;
  const c = new Counter({
    name,
    help: 'Requests for /metrics refused (EF_METRICS_AUTH), by reason',
    labelNames: ['reason'],
    registers: registry ? [registry] : [],
  });
  for (const reason of METRICS_REJECT_REASONS) c.inc({ reason }, 0);
  return c;
}

/** TokenReview, then SubjectAccessReview of get /metrics; the refusal, or undefined when the scrape may proceed. */
async function checkScrape(
  auth: Pick<KubeletAuth, 'identify' | 'authorize'>,
  req: FastifyRequest,
): Promise<{ status: V1Status; reason: MetricsRejectReason } | undefined> {
  const who = await auth.identify(req.raw);
  if (!who.ok) return { status: who.status, reason: who.status.code === 401 ? 'unauthenticated' : 'auth_error' };
  const user = who.user;
  try {
    const d = await auth.authorize(user, { verb: 'get', path: '/metrics' });
    if (d.allowed) return undefined;
    const message = `Forbidden (user=${user.username}, verb=get, path=/metrics)`;
    return { status: failure(403, 'Forbidden', d.reason ? `${message}: ${d.reason}` : message), reason: 'forbidden' };
  } catch {
    return {
      status: failure(500, 'InternalError', 'authorization failed: the SubjectAccessReview did not complete'),
      reason: 'auth_error',
    };
  }
}

function sendStatus(reply: FastifyReply, s: V1Status): FastifyReply {
  return reply
    .code(s.code ?? 500)
    .type('application/json')
    .send(JSON.stringify(s));
}
