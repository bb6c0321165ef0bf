/**
 * The registrar on HTTPS (fastify over node:https): POST /v1/join, POST /v1/renew, GET /healthz, GET /metrics.
 * Bodies are JSON of at most MAX_BODY_BYTES; a renewal's raw bytes reach the Registrar unparsed (its signature covers
 * them). Every error, including those fastify raises before a handler (too large, wrong media type), is answered as
 * `{ error: { code, message } }` and counted. The presented chain ends with the fleet CA, which a joining site finds
 * by the hash in its token.
 */
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { RegistrarMetrics, Endpoint } from './metrics.js';
import { MAX_BODY_BYTES, PATHS, RegistrarError, SIGNATURE_HEADER, isRegistrarError, type ErrorBody } from './protocol.js';
import type { Registrar } from './registrar.js';

export interface RegistrarServerOptions {
  registrar: Registrar;
  metrics: RegistrarMetrics;
  log: Logger;
  /** The serving certificate (PEM, the leaf first), its key, and the fleet CA appended to the chain when missing. */
  tls: { cert: string; key: string; caPem: string };
  host: string;
  port: number;
}

const ENDPOINTS: Record<string, Endpoint> = { [PATHS.join]: 'join', [PATHS.renew]: 'renew' };

function errorOf(err: FastifyError | Error): RegistrarError {
  if (isRegistrarError(err)) return err;
  const code = (err as FastifyError).statusCode;
  if (code === 413) return new RegistrarError('too-large', `the body is larger than ${MAX_BODY_BYTES} bytes`);
  if (code === 415) return new RegistrarError('unsupported-media-type', 'send Content-Type: application/json');
  if (code !== undefined && code >= 400 && code < 500) return new RegistrarError('malformed', 'the request is malformed');
  return new RegistrarError('internal', 'internal error', { cause: err });
}

export class RegistrarServer {
  private app?: FastifyInstance;

  constructor(private readonly o: RegistrarServerOptions) {}

  /** Listens; resolves with the bound port. */
  async start(): Promise<number> {
    const { tls } = this.o;
    const chain = tls.cert.includes(tls.caPem.trim()) ? tls.cert : `${tls.cert.trimEnd()}\n${tls.caPem.trim()}\n`;
    const app = registrarApp(this.o, { cert: chain, key: tls.key });
    this.app = app;
    await app.listen({ host: this.o.host, port: this.o.port });
    return (app.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    this.app = undefined;
  }
}

/** The routes on a fastify instance: over `https`, or without TLS for fastify's inject() in unit tests. */
export function registrarApp(
  o: Pick<RegistrarServerOptions, 'registrar' | 'metrics' | 'log'>,
  https?: { cert: string; key: string },
): FastifyInstance {
  const { registrar, metrics } = o;
  const common = { bodyLimit: MAX_BODY_BYTES, logger: false, return503OnClosing: true } as const;
  const app = (https ? fastify({ ...common, https: { ...https, minVersion: 'TLSv1.2' } }) : fastify(common)) as unknown as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = errorOf(err);
    const endpoint = ENDPOINTS[req.routeOptions.url ?? ''];
    // the Registrar counts what reaches it; what fastify refused before is counted here
    if (endpoint && !isRegistrarError(err)) metrics.request(endpoint, e.code, 0);
    if (e.code === 'internal') o.log.error({ err }, 'request failed');
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    void reply.code(e.status).send(body);
  });
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send({ error: { code: 'malformed', message: 'no such endpoint' } } satisfies ErrorBody);
  });

  app.post(PATHS.join, async (req) => {
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(req.body as Buffer));
    } catch {
      metrics.request('join', 'malformed', 0);
      throw new RegistrarError('malformed', 'the body is not JSON');
    }
    return registrar.join(body);
  });
  app.post(PATHS.renew, async (req) => {
    const sig = req.headers[SIGNATURE_HEADER];
    return registrar.renew(req.body as Buffer, typeof sig === 'string' ? sig : undefined);
  });
  app.get(PATHS.healthz, async () => 'ok');
  app.get(PATHS.metrics, async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()));
  return app;
}
