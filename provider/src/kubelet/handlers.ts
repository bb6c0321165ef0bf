/**
 * The kubelet API's plain HTTP endpoints (fastify routes): /healthz, /pods, /containerLogs, /stats/summary,
 * /metrics/resource, and 400 for /exec, /attach, /portForward without an Upgrade. Every request arrives
 * authenticated, with its path parsed once ({@link KubeletContext.pathOf}); each is authorized for its node
 * ({@link KubeletContext.authorize}) before it is served. Refusals are counted ({@link KubeletContext.rejected}); log
 * streams take a session slot and node-scoped requests a stats slot ({@link KubeletContext.acquire}), or get 429.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Pod } from '../kube/client.js';
import type { ContainerRef, EdgeStreams } from './edge-streams.js';
import { drained } from './drain.js';
import { renderResourceMetrics, RESOURCE_METRICS_CONTENT_TYPE } from './resource-metrics.js';
import { reasonOfCode, type KubeletRejectReason } from './metrics.js';
import { BadPathError, BadRequestError, isBadRequestError, parseLogOptions, parsePodRoute, type KubeletPath } from './routes.js';
import { failure, statusOfError, type V1Status } from './status.js';

/** What the handlers need from the server: routing to nodes and pods, and the auth check. */
export interface KubeletContext {
  streams: EdgeStreams;
  log: Logger;
  /** The node a request's local port belongs to (undefined on the shared port). */
  nodeOfRequest(req: FastifyRequest): string | undefined;
  /** Nodes this replica serves. */
  served(): string[];
  podsOf(nodes: string[]): Pod[];
  /** The pod and its node, or the 404 Status. */
  resolvePod(namespace: string, name: string, uid?: string): { pod: Pod; node: string } | V1Status;
  /** The request's path, parsed once when it came in (what it was routed on). */
  pathOf(req: FastifyRequest): KubeletPath;
  /** undefined when the request may proceed on `node`, else the Status to answer (the refusal is counted). */
  authorize(req: FastifyRequest, node: string): Promise<V1Status | undefined>;
  /** Counts a refused request. */
  rejected(reason: KubeletRejectReason): void;
  /** A slot of `kind` (its release), or undefined when all are taken. */
  acquire(kind: 'session' | 'stats'): (() => void) | undefined;
}

function sendStatus(reply: FastifyReply, s: V1Status): FastifyReply {
  return reply
    .code(s.code ?? 500)
    .type('application/json')
    .send(JSON.stringify(s));
}

/**
 * An EdgeStreams failure on an endpoint the apiserver proxies (logs, stats), as the kubelet answers them: the
 * message as plain text. The apiserver hands the body of a 500 or 400 on to kubectl ("Internal error occurred: edge
 * node edge-1 is disconnected since ...") but replaces that of a 503 with a generic text, so offline is a 500 here.
 */
function sendEdgeError(reply: FastifyReply, err: unknown): FastifyReply {
  const s = statusOfError(err);
  const code = s.code === 503 ? 500 : (s.code ?? 500);
  return reply
    .code(code)
    .type('text/plain; charset=utf-8')
    .send(s.message ?? 'error');
}

/** A container the pod spec names (containers, init or ephemeral containers). */
export function hasContainer(pod: Pod, name: string): boolean {
  const s = pod.spec;
  return [...(s?.containers ?? []), ...(s?.initContainers ?? []), ...(s?.ephemeralContainers ?? [])].some((c) => c.name === name);
}

export function registerHandlers(app: FastifyInstance, ctx: KubeletContext): void {
  /** Answers a refusal (not one authorize counted already) and counts it. */
  const refuse = (reply: FastifyReply, s: V1Status, reason: KubeletRejectReason = reasonOfCode(s.code)): FastifyReply => {
    ctx.rejected(reason);
    return sendStatus(reply, s);
  };
  const tooMany = (reply: FastifyReply, what: string) =>
    refuse(reply, failure(429, 'TooManyRequests', `too many ${what} on this provider; try again later`), 'too_many_requests');

  /**
   * Node-scoped endpoints answer on the node's own port only (see docs/decisions/0006-kubelet-api.md), each holding
   * a stats slot while it runs: the node and the slot's release, or undefined when answered already.
   */
  const nodeScoped = async (req: FastifyRequest, reply: FastifyReply): Promise<{ node: string; release: () => void } | undefined> => {
    const node = ctx.nodeOfRequest(req);
    if (!node) {
      refuse(
        reply,
        failure(
          404,
          'NotFound',
          `${ctx.pathOf(req).pathname} is per node: ask the port in the Node's status.daemonEndpoints.kubeletEndpoint`,
        ),
      );
      return undefined;
    }
    const denied = await ctx.authorize(req, node);
    if (denied) {
      sendStatus(reply, denied);
      return undefined;
    }
    const release = ctx.acquire('stats');
    if (!release) {
      tooMany(reply, 'node-scoped requests (stats, metrics)');
      return undefined;
    }
    return { node, release };
  };

  app.get('/healthz', async (req, reply) => {
    const denied = await ctx.authorize(req, ctx.nodeOfRequest(req) ?? '');
    return denied ? sendStatus(reply, denied) : reply.type('text/plain').send('ok');
  });

  app.get('/pods', async (req, reply) => {
    const node = ctx.nodeOfRequest(req);
    const denied = await ctx.authorize(req, node ?? '');
    if (denied) return sendStatus(reply, denied);
    const items = ctx.podsOf(node ? [node] : ctx.served());
    return reply.type('application/json').send(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items }));
  });

  app.get('/stats/summary', async (req, reply) => {
    const slot = await nodeScoped(req, reply);
    if (!slot) return reply;
    const ac = abortOnClose(reply.raw);
    try {
      return reply.type('application/json').send(JSON.stringify(await ctx.streams.statsSummary(slot.node, ac.signal)));
    } catch (err) {
      return sendEdgeError(reply, err);
    } finally {
      slot.release();
    }
  });

  app.get('/metrics/resource', async (req, reply) => {
    const slot = await nodeScoped(req, reply);
    if (!slot) return reply;
    const ac = abortOnClose(reply.raw);
    let summary;
    try {
      summary = await ctx.streams.statsSummary(slot.node, ac.signal);
    } catch (err) {
      ctx.log.info({ node: slot.node, err: (err as Error).message }, 'stats for /metrics/resource failed');
    } finally {
      slot.release();
    }
    return reply.header('content-type', RESOURCE_METRICS_CONTENT_TYPE).send(renderResourceMetrics(summary));
  });

  app.get('/containerLogs/*', async (req, reply) => {
    let opts;
    let route;
    const path = ctx.pathOf(req);
    try {
      route = parsePodRoute(path);
      opts = parseLogOptions(path.query);
    } catch (err) {
      if (isBadRequestError(err)) return refuse(reply, failure(400, 'BadRequest', err.message));
      throw err;
    }
    if (route?.kind !== 'containerLogs') return refuse(reply, failure(404, 'NotFound', 'not found'));
    const found = ctx.resolvePod(route.namespace, route.pod);
    if ('kind' in found) return refuse(reply, found);
    const denied = await ctx.authorize(req, found.node);
    if (denied) return sendStatus(reply, denied);
    if (!hasContainer(found.pod, route.container)) {
      return refuse(reply, failure(404, 'NotFound', `container "${route.container}" not found in pod "${route.namespace}/${route.pod}"`));
    }
    const release = ctx.acquire('session');
    if (!release) return tooMany(reply, 'streaming sessions');
    try {
      const ref: ContainerRef = { node: found.node, namespace: route.namespace, pod: route.pod, container: route.container };
      const ac = abortOnClose(reply.raw);
      let logs: AsyncIterable<Uint8Array>;
      try {
        logs = await ctx.streams.logs(ref, opts, ac.signal);
      } catch (err) {
        return sendEdgeError(reply, err);
      }
      reply.hijack();
      await streamBody(reply.raw, logs, ac, opts.limitBytes, ctx.log.child({ node: found.node, pod: `${route.namespace}/${route.pod}` }));
      return reply;
    } finally {
      release();
    }
  });

  for (const kind of ['exec', 'attach', 'portForward']) {
    app.all(`/${kind}/*`, async (_req, reply) =>
      refuse(reply, failure(400, 'BadRequest', `Upgrade request required: ${kind} speaks SPDY/3.1 or WebSocket`)),
    );
  }

  app.setNotFoundHandler(async (req, reply) =>
    refuse(reply, failure(404, 'NotFound', `the kubelet API has no ${req.method} ${ctx.pathOf(req).pathname}`)),
  );
  app.setErrorHandler(async (err, _req, reply) => {
    if (err instanceof BadRequestError)
      return refuse(reply, failure(400, 'BadRequest', err.message), err instanceof BadPathError ? 'bad_path' : 'bad_request');
    const message = (err as Error)?.message ?? String(err);
    ctx.log.warn({ err: message }, 'kubelet API request failed');
    return sendStatus(reply, failure(500, 'InternalError', message));
  });
}

/** An AbortController that aborts when the client goes away before the response finished. */
function abortOnClose(res: ServerResponse): AbortController {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac;
}

/**
 * Writes the body as it comes (chunked; each chunk goes out at once), honouring the socket's backpressure, stopping
 * after `limit` bytes; the client going away aborts the source.
 */
async function streamBody(
  res: ServerResponse,
  body: AsyncIterable<Uint8Array>,
  ac: AbortController,
  limit: number | undefined,
  log: Logger,
): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  let left = limit ?? Infinity;
  try {
    for await (const chunk of body) {
      if (ac.signal.aborted) break;
      const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= part.length;
      if (!res.write(part) && !(await drained(res))) break;
      if (left <= 0) break;
    }
  } catch (err) {
    if (!ac.signal.aborted) log.info({ err: (err as Error).message }, 'log stream from the edge failed');
  } finally {
    ac.abort();
    res.end();
  }
}
