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
 */
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Pod } from '../kube/client.js';
import type { BoundPods } from '../kube/bound-pods.js';
import type { ServedNodes, Takeover } from '../membership/membership.js';
import type { KubeletAuth } from './auth.js';
import type { EdgeStreams } from './edge-streams.js';
import { hasContainer, registerHandlers } from './handlers.js';
import { isBadRequestError, parseCommand, parsePodRoute, parsePorts, parseStreamOptions, type PodRoute } from './routes.js';
import { serveSpdyPortForward } from './spdy-portforward.js';
import { serveSpdyRemoteCommand, type SpdyUpgradeContext } from './spdy-remotecommand.js';
import { failure, type V1Status } from './status.js';
import { badRequest, negotiate, rejectUpgrade } from './upgrade.js';
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
}

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

  constructor(private readonly o: KubeletServerOptions) {
    this.log = o.log;
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
      authorize: async (req, node) => {
        const r = await o.auth.check(req.raw, node);
        return r.ok ? undefined : r.status;
      },
    });
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

  private makeServer(): https.Server {
    const { tls } = this.o;
    const server = https.createServer(
      { cert: tls.cert, key: tls.key, ca: tls.clientCA, requestCert: tls.clientCA !== undefined, rejectUnauthorized: false },
      (req, res) => this.handler!(req, res),
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
    try {
      await this.serveUpgrade(req, socket, head);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, url: req.url }, 'upgrade request failed');
      if (!socket.destroyed) socket.destroy();
    }
  }

  private async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    let route: PodRoute | undefined;
    try {
      route = parsePodRoute(url.pathname);
    } catch (err) {
      if (isBadRequestError(err)) return badRequest(socket, err.message);
      throw err;
    }
    if (!route || route.kind === 'containerLogs') {
      return rejectUpgrade(socket, failure(404, 'NotFound', `no upgrade on ${url.pathname}: exec, attach and portForward only`));
    }
    const found = this.resolvePod(route.namespace, route.pod, route.uid);
    if ('kind' in found) return rejectUpgrade(socket, found);
    const auth = await this.o.auth.check(req, found.node);
    if (!auth.ok) return rejectUpgrade(socket, auth.status);
    const log = this.log.child({ node: found.node, pod: `${route.namespace}/${route.pod}`, kind: route.kind });
    const ctx: SpdyUpgradeContext = { req, socket, head, log, streamCreationTimeoutMs: this.o.streamCreationTimeoutMs ?? 30_000 };
    const ref = { node: found.node, namespace: route.namespace, pod: route.pod, uid: route.uid };
    if (route.kind === 'portForward') {
      const forward = (port: number) => this.o.streams.portForward(ref, port);
      const podName = `${route.namespace}/${route.pod}`;
      if (!isWebSocketUpgrade(req)) return serveSpdyPortForward(ctx, forward, podName);
      const offered = offeredProtocols(req);
      if (offered.length > 0 && !negotiate(offered, PORTFORWARD_WEBSOCKET_PROTOCOLS)) {
        return rejectUpgrade(
          socket,
          failure(
            403,
            'Forbidden',
            `unable to negotiate protocol: client offered ${offered.join(', ')}; port-forward supports ${PORTFORWARD_WEBSOCKET_PROTOCOLS.join(', ')}`,
          ),
        );
      }
      let ports: number[];
      try {
        ports = parsePorts(url.searchParams);
      } catch (err) {
        if (isBadRequestError(err)) return badRequest(socket, err.message);
        throw err;
      }
      return serveWebSocketPortForward(this.portForwardWss, req, socket, head, ports, forward, podName, log);
    }
    if (!hasContainer(found.pod, route.container)) {
      return rejectUpgrade(
        socket,
        failure(404, 'NotFound', `container "${route.container}" not found in pod "${route.namespace}/${route.pod}"`),
      );
    }
    let opts;
    let command: string[] = [];
    try {
      opts = parseStreamOptions(url.searchParams);
      if (route.kind === 'exec') command = parseCommand(url.searchParams);
    } catch (err) {
      if (isBadRequestError(err)) return badRequest(socket, err.message);
      throw err;
    }
    const cref = { ...ref, container: route.container };
    const open = route.kind === 'exec' ? () => this.o.streams.exec(cref, command, opts) : () => this.o.streams.attach(cref, opts);
    if (isWebSocketUpgrade(req)) return serveWebSocketRemoteCommand(this.wss, req, socket, head, opts, open, log);
    return serveSpdyRemoteCommand(ctx, opts, open);
  }
}
