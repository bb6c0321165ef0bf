/**
 * KubeletServer: the kubelet API of every node this replica serves, over HTTPS (fastify for the plain endpoints,
 * the raw 'upgrade' event for exec, attach and port-forward, each over SPDY/3.1 or WebSocket).
 *
 * Ports (docs/decisions/0006-kubelet-api.md): the shared port serves every pod-routed endpoint (containerLogs,
 * exec, attach, portForward: the pod in the path names the node) and /pods of all served nodes. Node-scoped
 * endpoints (/stats/summary, /metrics/resource) cannot be routed by path, so each node gets a port of its own from
 * `nodePorts`, advertised as the Node's kubelet endpoint: it serves the whole API, with /stats and /metrics for that
 * node. Without `nodePorts` every Node advertises the shared port and the node-scoped endpoints answer 404. A node's
 * port is assigned (its listener opened) when the node is taken on and released when it is given up: the server
 * follows the membership ({@link taking}, {@link released}); {@link portOf} only reads.
 *
 * TLS: the serving certificate given; client certificates are requested and verified against `clientCA` (the
 * apiserver's kubelet-client certificate), anything else authenticates with a bearer token ({@link KubeletAuth}).
 *
 * Every request, plain or upgrade, is admitted the same way before anything is looked up: its target parsed once
 * ({@link parseKubeletPath}: an ambiguous path is a 400), the caller authenticated (401). Routing then reads that
 * parsed path (the request's url is replaced by its canonical form) and authorization reads the same one. Refusals
 * are counted by reason ({@link KubeletMetrics}). Bounds: streaming connections and followed logs at once
 * (`maxSessions`, counted before the first await, so a burst cannot pass the check together), node-scoped requests in
 * flight (`maxStatsRequests`), ports per WebSocket port-forward, and an idle timeout on streaming connections (no
 * byte either way for `streamingIdleTimeoutMs` closes it, as the kubelet's --streaming-connection-idle-timeout).
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Pod, UserInfo } from '../kube/client.js';
import type { BoundPods } from '../kube/bound-pods.js';
import type { ServedNodes, Takeover } from '../membership/membership.js';
import type { KubeletAuth } from './auth.js';
import type { EdgeStreams } from './edge-streams.js';
import { hasContainer, registerHandlers } from './handlers.js';
import { KubeletMetrics, reasonOfCode, type KubeletRejectReason } from './metrics.js';
import {
  BadPathError,
  isBadRequestError,
  MAX_PORTS,
  parseCommand,
  parseKubeletPath,
  parsePodRoute,
  parsePorts,
  parseStreamOptions,
  TooManyPortsError,
  type KubeletPath,
  type PodRoute,
} from './routes.js';
import { serveSpdyPortForward } from './spdy-portforward.js';
import { serveSpdyRemoteCommand, type SpdyUpgradeContext } from './spdy-remotecommand.js';
import { failure, type V1Status } from './status.js';
import { negotiate, rejectUpgrade } from './upgrade.js';
import { isWebSocketUpgrade, offeredProtocols, webSocketServer } from './websocket.js';
import { PORTFORWARD_WEBSOCKET_PROTOCOLS, serveWebSocketPortForward } from './websocket-portforward.js';
import { serveWebSocketRemoteCommand, WEBSOCKET_PROTOCOLS } from './websocket-remotecommand.js';

export interface KubeletServerOptions {
  streams: EdgeStreams;
  auth: KubeletAuth;
  log: Logger;
  /** The nodes this replica serves now. */
  served: ServedNodes;
  /** Pods from the informer cache. */
  pods: Pick<BoundPods, 'get' | 'on'>;
  tls: { cert: string | Buffer; key: string | Buffer; clientCA?: string | Buffer };
  host?: string;
  /** The shared port (0: any free port, for tests). */
  port: number;
  /** Ports handed to nodes, one each, lowest free first. */
  nodePorts?: { from: number; to: number };
  streamCreationTimeoutMs?: number;
  /** Streaming connections (exec, attach, port-forward) and log streams at once; more are refused with 429 (default 1024). */
  maxSessions?: number;
  /** Node-scoped requests (/stats/summary, /metrics/resource) in flight at once; more are refused with 429 (default 64). */
  maxStatsRequests?: number;
  /** Ports in one WebSocket port-forward (default {@link MAX_PORTS}). */
  maxPortForwardPorts?: number;
  /** A streaming connection with no byte either way for this long is closed (default 4 h, the kubelet's default). */
  streamingIdleTimeoutMs?: number;
  /** Where the kubelet API's metrics go (the provider's registry); default a registry of their own. */
  registry?: Registry;
}

/** The default of {@link KubeletServerOptions.streamingIdleTimeoutMs}: the kubelet's --streaming-connection-idle-timeout. */
export const DEFAULT_STREAMING_IDLE_TIMEOUT_MS = 4 * 3600_000;
export const DEFAULT_MAX_SESSIONS = 1024;
export const DEFAULT_MAX_STATS_REQUESTS = 64;

/** A request let in: its one parsed path and its caller. */
interface Admitted {
  path: KubeletPath;
  user: UserInfo;
}
type Admission = ({ ok: true } & Admitted) | { ok: false; status: V1Status; reason: KubeletRejectReason };

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export class KubeletServer {
  private readonly app: FastifyInstance;
  private handler?: Handler;
  private main?: https.Server;
  private readonly nodeServers = new Map<string, { port: number; server: https.Server }>();
  private readonly nodeOfPort = new Map<number, string>();
  /** Nodes told already that the range is full (logged once each, not on every ask). */
  private readonly onSharedPort = new Set<string>();
  private readonly sockets = new Set<Duplex>();
  private readonly wss = webSocketServer(WEBSOCKET_PROTOCOLS);
  private readonly portForwardWss = webSocketServer(PORTFORWARD_WEBSOCKET_PROTOCOLS);
  private readonly log: Logger;
  /** The serving certificate (replaced by setCertificate) and the client CA. */
  private tls: KubeletServerOptions['tls'];
  readonly metrics: KubeletMetrics;
  private readonly admitted = new WeakMap<IncomingMessage, Admitted>();
  private readonly inUse = { session: 0, stats: 0 };

  constructor(private readonly o: KubeletServerOptions) {
    this.log = o.log;
    this.tls = o.tls;
    this.metrics = new KubeletMetrics(o.registry);
    this.app = Fastify({
      logger: false,
      serverFactory: (handler) => {
        this.handler = handler;
        return this.makeServer();
      },
    });
    registerHandlers(this.app, {
      streams: o.streams,
      log: o.log,
      nodeOfRequest: (req: FastifyRequest) => this.nodeOfSocket(req.raw.socket),
      served: () => o.served.served(),
      podsOf: (nodes) => o.pods.on(nodes),
      resolvePod: (ns, name, uid) => this.resolvePod(ns, name, uid),
      pathOf: (req) => this.admission(req.raw).path,
      authorize: async (req, node) => {
        const r = await this.permit(req.raw, node);
        return r.ok ? undefined : r.status;
      },
      rejected: (reason) => this.metrics.rejected(reason),
      acquire: (kind) => this.acquire(kind),
    });
  }

  /** Streaming connections and log streams open now (tests). */
  get sessions(): number {
    return this.inUse.session;
  }

  /**
   * Takes a slot of `kind` if one is free: the check and the count in one synchronous step, so concurrent requests
   * cannot all pass the check before any is counted. Returns its release (idempotent), or undefined when full.
   */
  private acquire(kind: 'session' | 'stats'): (() => void) | undefined {
    const max = kind === 'session' ? (this.o.maxSessions ?? DEFAULT_MAX_SESSIONS) : (this.o.maxStatsRequests ?? DEFAULT_MAX_STATS_REQUESTS);
    if (this.inUse[kind] >= max) return undefined;
    this.inUse[kind]++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse[kind]--;
    };
  }

  /** Parses the target and authenticates the caller: everything before any lookup. Never rejects. */
  private async admit(req: IncomingMessage): Promise<Admission> {
    let path: KubeletPath;
    try {
      path = parseKubeletPath(req.url ?? '');
    } catch (err) {
      if (err instanceof BadPathError) return { ok: false, status: failure(400, 'BadRequest', err.message), reason: 'bad_path' };
      throw err;
    }
    const who = await this.o.auth.identify(req);
    if (!who.ok) return { ok: false, status: who.status, reason: reasonOfCode(who.status.code) };
    const a = { path, user: who.user };
    this.admitted.set(req, a);
    return { ok: true, ...a };
  }

  private admission(req: IncomingMessage): Admitted {
    const a = this.admitted.get(req);
    if (!a) throw new Error('kubelet API request was not admitted'); // every request goes through onRequest/onUpgrade
    return a;
  }

  /** Authorizes an admitted request on `node`, from its parsed path; counts a refusal. */
  private async permit(req: IncomingMessage, node: string) {
    const a = this.admission(req);
    const r = await this.o.auth.permit(a.user, req.method ?? 'GET', a.path, node);
    if (!r.ok) this.metrics.rejected(reasonOfCode(r.status.code));
    return r;
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let a: Admission;
    try {
      a = await this.admit(req);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'kubelet API request failed');
      a = { ok: false, status: failure(500, 'InternalError', 'internal error'), reason: 'auth_error' };
    }
    if (!a.ok) {
      this.metrics.rejected(a.reason);
      const body = JSON.stringify(a.status);
      res.writeHead(a.status.code ?? 500, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    // Routing sees the canonical path, the one authorization reads.
    req.url = a.path.search ? `${a.path.pathname}?${a.path.search}` : a.path.pathname;
    this.handler!(req, res);
  }

  /** The shared port actually bound. */
  get port(): number {
    return (this.main?.address() as AddressInfo | null)?.port ?? this.o.port;
  }

  async start(): Promise<void> {
    await this.app.listen({ port: this.o.port, host: this.o.host ?? '0.0.0.0' });
    this.main = this.app.server as https.Server;
    this.log.info({ port: this.port, nodePorts: this.o.nodePorts }, 'kubelet API listening');
  }

  async stop(): Promise<void> {
    for (const node of [...this.nodeServers.keys()]) this.releasePort(node);
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    this.portForwardWss.close();
    await this.app.close();
  }

  /** The kubelet port a node advertises: its own once assigned ({@link assignPort}), else the shared one. */
  portOf(node: string): number {
    return this.nodeServers.get(node)?.port ?? this.port;
  }

  /**
   * Gives the node a port of its own when node ports are configured, lowest free first, and opens its listener;
   * returns the port it advertises (the shared one without a range, or when the range is full: logged once per node).
   * Idempotent.
   */
  assignPort(node: string): number {
    const range = this.o.nodePorts;
    if (!range) return this.port;
    const have = this.nodeServers.get(node);
    if (have) return have.port;
    let port = range.from;
    while (this.nodeOfPort.has(port) && port <= range.to) port++;
    if (port > range.to) {
      if (!this.onSharedPort.has(node)) {
        this.onSharedPort.add(node);
        this.log.warn({ node, range }, 'no free kubelet node port: the node advertises the shared port (no stats for it)');
      }
      return this.port;
    }
    this.onSharedPort.delete(node);
    const server = this.makeServer();
    server.on('error', (err) => this.log.error({ node, port, err: err.message }, 'kubelet node port failed'));
    server.listen(port, this.o.host ?? '0.0.0.0');
    this.nodeServers.set(node, { port, server });
    this.nodeOfPort.set(port, node);
    this.log.info({ node, port }, 'kubelet node port opened');
    return port;
  }

  /** Closes the node's own port, if it has one. */
  releasePort(node: string): void {
    this.onSharedPort.delete(node);
    const have = this.nodeServers.get(node);
    if (!have) return;
    this.nodeServers.delete(node);
    this.nodeOfPort.delete(have.port);
    have.server.close();
    have.server.closeAllConnections();
  }

  /** Membership: nodes taken on get their ports before anything advertises them. */
  taking({ nodes }: Takeover): void {
    for (const { name } of nodes) this.assignPort(name);
  }

  /** Membership: a node given up (handed over or deleted) closes its port. */
  released(node: string): void {
    this.releasePort(node);
  }

  /** Serves a new certificate from now on (a renewal): open connections keep the one they were made with. */
  setCertificate(cert: string | Buffer, key: string | Buffer): void {
    this.tls = { ...this.tls, cert, key };
    const context = { cert, key, ca: this.tls.clientCA };
    this.main?.setSecureContext(context);
    for (const { server } of this.nodeServers.values()) server.setSecureContext(context);
    this.log.info({ servers: 1 + this.nodeServers.size }, 'kubelet API serving certificate replaced');
  }

  private makeServer(): https.Server {
    const tls = this.tls;
    const server = https.createServer(
      { cert: tls.cert, key: tls.key, ca: tls.clientCA, requestCert: tls.clientCA !== undefined, rejectUnauthorized: false },
      (req, res) => void this.onRequest(req, res),
    );
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    server.on('tlsClientError', (err) => this.log.debug({ err: err.message }, 'TLS handshake failed'));
    return server;
  }

  private nodeOfSocket(socket: Socket): string | undefined {
    return this.nodeOfPort.get(socket.localPort ?? -1);
  }

  private resolvePod(namespace: string, name: string, uid?: string): { pod: Pod; node: string } | V1Status {
    const pod = this.o.pods.get(namespace, name);
    const node = pod?.spec?.nodeName;
    if (!pod || !node || !this.o.served.serves(node) || (uid !== undefined && pod.metadata?.uid !== uid)) {
      return failure(404, 'NotFound', `pods "${name}" not found`);
    }
    return { pod, node };
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'upgraded socket error'));
    // Counted before anything is awaited: a burst cannot pass the check together.
    const release = this.acquire('session');
    if (!release) {
      this.metrics.rejected('too_many_sessions');
      return rejectUpgrade(socket, failure(429, 'TooManyRequests', 'too many streaming sessions on this provider; try again later'));
    }
    socket.once('close', release);
    // No byte either way for the idle timeout closes the connection (ws re-arms it after its handshake, websocket.ts).
    const idleMs = this.o.streamingIdleTimeoutMs ?? DEFAULT_STREAMING_IDLE_TIMEOUT_MS;
    if ('setTimeout' in socket && idleMs > 0) {
      (socket as Socket).setTimeout(idleMs);
      socket.once('timeout', () => {
        this.metrics.idleClosed();
        this.log.info({ url: req.url, idleMs }, 'streaming connection idle: closed');
        socket.destroy();
      });
    }
    try {
      await this.serveUpgrade(req, socket, head);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, url: req.url }, 'upgrade request failed');
      if (!socket.destroyed) socket.destroy();
    }
  }

  private async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: V1Status, reason: KubeletRejectReason = reasonOfCode(status.code)) => {
      this.metrics.rejected(reason);
      rejectUpgrade(socket, status);
    };
    const admitted = await this.admit(req);
    if (!admitted.ok) return refuse(admitted.status, admitted.reason);
    const { path } = admitted;
    let route: PodRoute | undefined;
    try {
      route = parsePodRoute(path);
    } catch (err) {
      if (isBadRequestError(err)) return refuse(failure(400, 'BadRequest', err.message));
      throw err;
    }
    if (!route || route.kind === 'containerLogs') {
      return refuse(failure(404, 'NotFound', `no upgrade on ${path.pathname}: exec, attach and portForward only`));
    }
    const found = this.resolvePod(route.namespace, route.pod, route.uid);
    if ('kind' in found) return refuse(found);
    const auth = await this.permit(req, found.node);
    if (!auth.ok) return rejectUpgrade(socket, auth.status);
    const url = { searchParams: path.query };
    const log = this.log.child({ node: found.node, pod: `${route.namespace}/${route.pod}`, kind: route.kind });
    const ctx: SpdyUpgradeContext = { req, socket, head, log, streamCreationTimeoutMs: this.o.streamCreationTimeoutMs ?? 30_000 };
    const ref = { node: found.node, namespace: route.namespace, pod: route.pod, uid: route.uid };
    if (route.kind === 'portForward') {
      const forward = (port: number) => this.o.streams.portForward(ref, port);
      const podName = `${route.namespace}/${route.pod}`;
      if (!isWebSocketUpgrade(req)) return serveSpdyPortForward(ctx, forward, podName);
      const offered = offeredProtocols(req);
      if (offered.length > 0 && !negotiate(offered, PORTFORWARD_WEBSOCKET_PROTOCOLS)) {
        return refuse(
          failure(
            403,
            'Forbidden',
            `unable to negotiate protocol: client offered ${offered.join(', ')}; port-forward supports ${PORTFORWARD_WEBSOCKET_PROTOCOLS.join(', ')}`,
          ),
        );
      }
      let ports: number[];
      try {
        ports = parsePorts(url.searchParams, this.o.maxPortForwardPorts ?? MAX_PORTS);
      } catch (err) {
        if (isBadRequestError(err))
          return refuse(failure(400, 'BadRequest', err.message), err instanceof TooManyPortsError ? 'too_many_ports' : 'bad_request');
        throw err;
      }
      return serveWebSocketPortForward(this.portForwardWss, req, socket, head, ports, forward, podName, log);
    }
    if (!hasContainer(found.pod, route.container)) {
      return refuse(failure(404, 'NotFound', `container "${route.container}" not found in pod "${route.namespace}/${route.pod}"`));
    }
    let opts;
    let command: string[] = [];
    try {
      opts = parseStreamOptions(url.searchParams);
      if (route.kind === 'exec') command = parseCommand(url.searchParams);
    } catch (err) {
      if (isBadRequestError(err)) return refuse(failure(400, 'BadRequest', err.message));
      throw err;
    }
    const cref = { ...ref, container: route.container };
    const open = route.kind === 'exec' ? () => this.o.streams.exec(cref, command, opts) : () => this.o.streams.attach(cref, opts);
    if (isWebSocketUpgrade(req)) return serveWebSocketRemoteCommand(this.wss, req, socket, head, opts, open, log);
    return serveSpdyRemoteCommand(ctx, opts, open);
  }
}
