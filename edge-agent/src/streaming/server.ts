/**
 * StreamingServer: the agent's half of interactive traffic (docs/decisions/0005-interactive-traffic.md). Subscribes
 * to ef.rpc.<wire id>.* on the site NATS (exactly one subscription: the site's allow_responses counts one reply per
 * matching subscription) (requests come from the hub over the leaf link; the edge dials nothing in),
 * validates each request, prepares the operation (finds the pod and container, asks CRI for a streaming URL and
 * connects to it) and only then answers: an error reply with the kubelet's wording, or "accepted" with the agent's
 * receive window, after subscribing to the session's down subject. The session then runs on a StreamLink until
 * either side ends it or the provider goes silent. stop() ends every session and leaves nothing behind.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { cri, edge, encodeToken, parseRpcSubject, rpcSubjects, sessionSubjects, type RpcOp } from '@edgefarm/proto';
import { DEFAULT_WINDOW, StreamLink } from '@edgefarm/streaming';
import { type RuntimeServiceClient } from '@edgefarm/cri';
import type { Logger } from 'pino';
import { errorMessage } from '../util/time.js';
import { WIRE_CODES, badRequest, isStreamRequestError, StreamRequestError } from './errors.js';
import { PodLocator, type PodName } from './locator.js';
import { prepareLogs, type LogTiming } from './logs.js';
import { preparePortForward, prepareRemoteCommand, streamingUrl, validateExec } from './remotecommand.js';
import type { PreparedSession } from './session.js';
import type { StatsCollector } from './stats.js';

export interface StreamingDeps {
  nc: NatsConnection;
  /** The node's name (in messages). */
  node: string;
  /** The node's wire id: the rpc and session subjects name it. */
  wireId: string;
  runtime: RuntimeServiceClient;
  stats: StatsCollector;
  log: Logger;
}

export interface StreamingOptions {
  /** The agent's receive window per session (default 1 MiB). */
  window?: number;
  keepaliveMs?: number;
  deadAfterMs?: number;
  /**
   * Sessions at once; more are refused (default 64). A session is counted from the moment its request passes the
   * check (before it is prepared), so a burst cannot pass the check together.
   */
  maxSessions?: number;
  /** Stats requests being collected at once; more are refused (default 4). */
  maxStatsRequests?: number;
  logs?: LogTiming;
}

/** Largest request accepted (a StreamRequest is small; an exec command is capped at 64 KiB). */
export const MAX_REQUEST_BYTES = 128 * 1024;
const MIN_WINDOW = 1024;

export class StreamingServer {
  private sub: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private readonly links = new Set<StreamLink>();
  private readonly running = new Set<Promise<unknown>>();
  private readonly locator: PodLocator;
  /** Slots taken: sessions admitted (preparing or running) and stats requests being collected. */
  private readonly admitted = { sessions: 0, stats: 0 };
  /** Over every session so far: the most received bytes buffered at once (bounded by the window) and the count. */
  readonly counters = { sessions: 0, maxBufferedBytes: 0, creditWaits: 0 };

  constructor(
    private readonly deps: StreamingDeps,
    private readonly options: StreamingOptions = {},
  ) {
    this.locator = new PodLocator(deps.runtime);
  }

  /** Sessions running now. */
  get sessions(): number {
    return this.links.size;
  }

  async start(): Promise<void> {
    const sub = this.deps.nc.subscribe(rpcSubjects.node(this.deps.wireId));
    this.sub = sub;
    this.loop = (async () => {
      for await (const msg of sub) this.track(this.handle(msg));
    })();
    await this.deps.nc.flush();
  }

  async stop(): Promise<void> {
    this.sub?.unsubscribe();
    await this.loop;
    for (const link of this.links) link.end({ exitCode: 1, error: `edge agent of ${this.deps.node} is stopping` });
    await Promise.allSettled([...this.running]);
    this.sub = undefined;
    this.loop = undefined;
  }

  private track(p: Promise<unknown>): void {
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private reply(msg: Msg, init: Parameters<typeof create<typeof edge.StreamReplySchema>>[1]): boolean {
    try {
      return msg.respond(toBinary(edge.StreamReplySchema, create(edge.StreamReplySchema, init)));
    } catch {
      return false; // the connection is closing
    }
  }

  /** Takes a slot of `kind` (check and count in one synchronous step); its release, or undefined when all are taken. */
  private admit(kind: 'sessions' | 'stats'): (() => void) | undefined {
    const max = kind === 'sessions' ? (this.options.maxSessions ?? 64) : (this.options.maxStatsRequests ?? 4);
    if (this.admitted[kind] >= max) return undefined;
    this.admitted[kind]++;
    return () => void this.admitted[kind]--;
  }

  private async handle(msg: Msg): Promise<void> {
    const log = this.deps.log.child({ subject: msg.subject });
    let prepared: PreparedSession | undefined;
    let release: (() => void) | undefined;
    try {
      const { op, req } = this.decode(msg);
      const pod: PodName = { namespace: req.namespace, pod: req.pod, uid: req.uid };
      if (op === 'stats') {
        release = this.admit('stats');
        if (!release) throw new StreamRequestError('Internal', `edge node ${this.deps.node}: too many stats requests`);
        const summary = await this.deps.stats.summary();
        this.reply(msg, { statsJson: Buffer.from(JSON.stringify(summary)) });
        return;
      }
      release = this.admit('sessions');
      if (!release) throw new StreamRequestError('Internal', `edge node ${this.deps.node}: too many streaming sessions`);
      prepared = await this.prepare(op, req, pod);
      await this.runSession(msg, req, prepared, log.child({ op, pod: `${req.namespace}/${req.pod}`, session: req.session }));
    } catch (err) {
      prepared?.abandon();
      const e = isStreamRequestError(err) ? err : new StreamRequestError('Internal', errorMessage(err), { cause: err });
      if (e.code === 'Internal') log.warn({ err: e.message }, 'streaming request failed');
      this.reply(msg, { errorCode: WIRE_CODES[e.code], error: e.message });
    } finally {
      release?.();
    }
  }

  private decode(msg: Msg): { op: RpcOp; req: edge.StreamRequest } {
    if (msg.data.length > MAX_REQUEST_BYTES) throw badRequest(`request of ${msg.data.length} bytes exceeds ${MAX_REQUEST_BYTES}`);
    const { op } = parseRpcSubject(msg.subject);
    let req: edge.StreamRequest;
    try {
      req = fromBinary(edge.StreamRequestSchema, msg.data);
    } catch (err) {
      throw badRequest(`malformed ${op} request: ${errorMessage(err)}`);
    }
    const expected = { logs: 'logs', exec: 'exec', attach: 'attach', portforward: 'portForward', stats: 'stats' }[op];
    if (req.op.case !== expected) throw badRequest(`${op} request carries ${req.op.case ?? 'no operation'}`);
    if (op !== 'stats') {
      if (!req.namespace || !req.pod) throw badRequest(`${op} request without namespace and pod`);
      if (!req.session || req.session.length > 64 || encodeToken(req.session) !== req.session)
        throw badRequest(`${op} request with a bad session id`);
      if (req.window < MIN_WINDOW) throw badRequest(`${op} request with a window below ${MIN_WINDOW} bytes`);
      if (op !== 'portforward' && !req.container) throw badRequest(`${op} request without a container`);
    }
    return { op, req };
  }

  private async prepare(op: RpcOp, req: edge.StreamRequest, pod: PodName): Promise<PreparedSession> {
    const runtime = this.deps.runtime;
    switch (req.op.case) {
      case 'logs':
        return prepareLogs(runtime, this.locator, pod, req.container, req.op.value, this.options.logs);
      case 'exec':
      case 'attach': {
        const attach = req.op.case === 'attach';
        validateExec(req.op.value, attach);
        const c = await this.locator.current(pod, req.container);
        if (c.state !== cri.ContainerState.CONTAINER_RUNNING) throw badRequest(`container ${req.container} is not running`);
        const url = await streamingUrl(runtime, attach ? 'attach' : 'exec', { containerId: c.id, req: req.op.value });
        return prepareRemoteCommand(url, req.op.value);
      }
      case 'portForward': {
        const port = req.op.value.port;
        if (port < 1 || port > 65535) throw badRequest(`invalid port ${port}`);
        const sb = await this.locator.sandbox(pod);
        return preparePortForward(await streamingUrl(runtime, 'portforward', { sandboxId: sb.id, port }), port);
      }
      default:
        throw badRequest(`unsupported operation ${op}`);
    }
  }

  private async runSession(msg: Msg, req: edge.StreamRequest, prepared: PreparedSession, log: Logger): Promise<void> {
    const { nc, wireId } = this.deps;
    const window = this.options.window ?? DEFAULT_WINDOW;
    const down = nc.subscribe(sessionSubjects.of(wireId, req.session, 'down'));
    const up = sessionSubjects.of(wireId, req.session, 'up');
    const link = new StreamLink({
      send: (frame) => nc.publish(up, frame),
      recvWindow: window,
      sendWindow: req.window,
      inputs: prepared.inputs,
      peer: 'the provider',
      ...(this.options.keepaliveMs ? { keepaliveMs: this.options.keepaliveMs } : {}),
      ...(this.options.deadAfterMs ? { deadAfterMs: this.options.deadAfterMs } : {}),
    });
    // the down subscription reaches the server before the reply does (same connection, in order)
    if (!this.reply(msg, { window })) {
      down.unsubscribe();
      prepared.abandon();
      return;
    }
    this.links.add(link);
    link.start();
    const pump = (async () => {
      for await (const m of down) link.receive(m.data);
    })();
    log.debug('session started');
    try {
      const result = await Promise.race([prepared.run(link), link.done]);
      link.end(result);
    } catch (err) {
      link.end({ exitCode: 1, error: errorMessage(err) });
    } finally {
      prepared.abandon();
      down.unsubscribe();
      await pump;
      this.links.delete(link);
      this.counters.sessions++;
      this.counters.maxBufferedBytes = Math.max(this.counters.maxBufferedBytes, link.stats.maxBufferedBytes);
      this.counters.creditWaits += link.stats.creditWaits;
      const r = await link.done;
      log.info(
        {
          exitCode: r.exitCode,
          error: r.error,
          bytesIn: link.stats.bytesIn,
          bytesOut: link.stats.bytesOut,
          maxBuffered: link.stats.maxBufferedBytes,
          creditWaits: link.stats.creditWaits,
        },
        'session ended',
      );
    }
  }
}
