/**
 * The provider's plain HTTP endpoint: /healthz (the process runs), /readyz (its hub connection is open) and /metrics
 * (Prometheus text exposition of the provider's registry). Anything else is a 404.
 */
import Fastify, { type FastifyInstance } from 'fastify';

export interface HttpServerDeps {
  /** undefined when ready, else why not (answered with 503). */
  notReady(): string | undefined;
  /** The Prometheus exposition and its content type. */
  metrics: { text(): Promise<string>; readonly contentType: string };
}

export function httpServer(deps: HttpServerDeps): FastifyInstance {
  const http = Fastify({ logger: false });
  http.get('/healthz', async () => 'ok');
  http.get('/readyz', async (_req, reply) => {
    const why = deps.notReady();
    return reply.code(why ? 503 : 200).send(why ?? 'ok');
  });
  http.get('/metrics', async (_req, reply) => {
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
