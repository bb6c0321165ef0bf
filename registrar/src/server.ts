/**
 * The registrar on HTTPS (fastify over node:https): POST /v1/join, POST /v1/renew, GET /healthz, GET /metrics.
 * Bodies are JSON of at most MAX_BODY_BYTES; a renewal's raw bytes reach the Registrar unparsed (its signature covers
 * them). Before a join or renewal is read it is admitted (limits.ts: a rate per client address and overall, 429
 * `rate-limited`; a bound in flight, 503 `busy`); a connection that sends its request slower than the request timeout
 * is answered 408 and closed, one idle that long is closed. Each refusal counts in requests_rejected_total{reason}. Every error, including those fastify raises before a handler (too large, wrong media type), is answered as
 * `{ error: { code, message } }` and counted. The presented chain ends with the fleet CA, which a joining site finds
 * by the hash in its token.
 */
import type { AddressInfo, Socket } from 'node:net';
import { fastify, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Admission, type LimitSettings, type RejectReason } from './limits.js';
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
  /** Rates and the bound in flight (defaults: limits.ts DEFAULT_LIMITS). */
  limits?: Partial<LimitSettings>;
  timeouts?: Partial<Timeouts>;
  now?: () => number;
}

export interface Timeouts {
  /** The whole request (headers and body) must arrive within this (node's requestTimeout); else 408 and closed. */
  requestMs: number;
  /** A connection idle this long is closed (fastify's connectionTimeout). */
  idleMs: number;
  /** How often node checks the request timeout (its connectionsCheckingInterval). */
  checkIntervalMs: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = { requestMs: 30_000, idleMs: 30_000, checkIntervalMs: 1_000 };

const ENDPOINTS: Record<string, Endpoint> = { [PATHS.join]: 'join', [PATHS.renew]: 'renew' };

function errorOf(err: FastifyError | Error): RegistrarError {
  if (isRegistrarError(err)) return err;
  const code = (err as FastifyError).statusCode;
  if (code === 429) return new RegistrarError('rate-limited', 'too many requests; retry later');
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
  o: Pick<RegistrarServerOptions, 'registrar' | 'metrics' | 'log' | 'limits' | 'timeouts' | 'now'>,
  https?: { cert: string; key: string },
): FastifyInstance {
  const { registrar, metrics } = o;
  const t = { ...DEFAULT_TIMEOUTS, ...o.timeouts };
  const serverOptions = { requestTimeout: t.requestMs, headersTimeout: t.requestMs, connectionsCheckingInterval: t.checkIntervalMs };
  const common = {
    bodyLimit: MAX_BODY_BYTES,
    logger: false,
    return503OnClosing: true,
    requestTimeout: t.requestMs,
    connectionTimeout: t.idleMs,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      metrics.rejected(timeout ? 'request-timeout' : 'bad-request');
      const [status, code] = timeout ? ['408 Request Timeout', 'malformed'] : ['400 Bad Request', 'malformed'];
      const body = JSON.stringify({
        error: { code, message: timeout ? `the request did not arrive within ${t.requestMs} ms` : 'bad request' },
      });
      if (socket.writable)
        socket.write(
          `HTTP/1.1 ${status}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      socket.destroy();
    },
  } as const;
  const app = (https
    ? fastify({ ...common, https: { ...https, minVersion: 'TLSv1.2', ...serverOptions } })
    : fastify({ ...common, http: serverOptions })) as unknown as FastifyInstance;
  // an idle connection: closed (with a listener, node leaves that to us)
  app.server.on('timeout', (socket: Socket) => {
    metrics.rejected('idle-timeout');
    socket.destroy();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES }, (_req, body, done) => done(null, body));

  const admission = new Admission(o.limits, o.now);
  const releases = new WeakMap<object, () => void>();
  const refuse = (reason: RejectReason): void => metrics.rejected(reason);
  app.addHook('onRequest', async (req, reply) => {
    const endpoint = ENDPOINTS[req.routeOptions.url ?? ''];
    if (!endpoint || req.method !== 'POST') return;
    const a = admission.admit(req.ip);
    if (a.ok) {
      releases.set(req, a.release);
      return;
    }
    refuse(a.reason);
    const e =
      a.reason === 'in-flight'
        ? new RegistrarError('busy', 'too many requests at once; retry in a second')
        : new RegistrarError(
            'rate-limited',
            a.reason === 'client-rate'
              ? `too many requests from this address (at most ${admission.settings.clientPerMinute} a minute); retry in ${a.retryAfterSeconds} s`
              : `too many requests to the registrar; retry in ${a.retryAfterSeconds} s`,
          );
    metrics.request(endpoint, e.code, 0);
    return reply
      .code(e.status)
      .header('retry-after', String(a.retryAfterSeconds))
      .send({ error: { code: e.code, message: e.message } } satisfies ErrorBody);
  });
  const release = async (req: object): Promise<void> => {
    releases.get(req)?.();
    releases.delete(req);
  };
  app.addHook('onResponse', release);
  app.addHook('onRequestAbort', release);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = errorOf(err);
    const endpoint = ENDPOINTS[req.routeOptions.url ?? ''];
    // the Registrar counts what reaches it; what fastify refused before is counted here
    if (endpoint && !isRegistrarError(err)) metrics.request(endpoint, e.code, 0);
    if (e.code === 'too-large' || e.code === 'unsupported-media-type') refuse(e.code);
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
