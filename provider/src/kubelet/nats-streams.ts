/**
 * NatsEdgeStreams: {@link EdgeStreams} over core NATS (docs/decisions/0005-interactive-traffic.md). Each call is a
 * request on ef.rpc.<wire id>.<op> (at most `requestTimeoutMs`, 2 s: no responders or a timeout means the node is not
 * reachable: {@link EdgeNodeOfflineError}); sessions then run on ef.session.<wire id>.<id>.{up,down} through a
 * {@link StreamLink} (credit flow control, keepalive). The edge answers over the leaf link it opened itself. Callers
 * name nodes by name; the subjects carry the node's wire id as {@link WireIds} names it at the time of the request.
 * On a secured hub this runs on the provider's EF_CLOUD connection (requests to nodes, the sessions' down half).
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { errors, nuid, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Channel, edge, rpcSubjects, sessionSubjects, type ChannelId, type RpcOp } from '@edgefarm/proto';
import { DEFAULT_WINDOW, StreamLink, type LinkOptions } from '@edgefarm/streaming';
import type { Logger } from 'pino';
import { NAME_WIRE_IDS, type WireIds } from '../membership/identities.js';
import {
  EdgeNodeOfflineError,
  EdgeStreamError,
  type ContainerRef,
  type EdgeStreamErrorCode,
  type EdgeStreams,
  type LogOptions,
  type PodRef,
  type PortStream,
  type StatsSummary,
  type StreamOptions,
  type StreamSession,
} from './edge-streams.js';

/** When the node controller last saw the node connected: a Date when it is known to be disconnected since then. */
export type OfflineSince = (node: string) => Date | undefined | null;

export interface NatsEdgeStreamsDeps {
  /** The hub connection (EF_CLOUD on a secured hub). */
  nc: NatsConnection;
  log: Logger;
  offlineSince: OfflineSince;
  /** Node names to wire ids (default: every node by its name). */
  wireIds?: WireIds;
}

export interface NatsEdgeStreamsOptions {
  /** Longest wait for the edge's reply to an open (default 2000 ms). */
  requestTimeoutMs?: number;
  /** Our receive window per session (default 1 MiB). */
  window?: number;
  keepaliveMs?: number;
  deadAfterMs?: number;
}

const ERROR_CODES: Record<number, EdgeStreamErrorCode> = {
  [edge.StreamErrorCode.NOT_FOUND]: 'NotFound',
  [edge.StreamErrorCode.BAD_REQUEST]: 'BadRequest',
  [edge.StreamErrorCode.TIMEOUT]: 'Timeout',
};

type OpBody = edge.StreamRequest['op'];

interface Opened {
  link: StreamLink;
  reply: edge.StreamReply;
}

export class NatsEdgeStreams implements EdgeStreams {
  private readonly links = new Set<StreamLink>();
  /** Over every session so far: the most received bytes buffered at once (bounded by the window) and the count. */
  readonly counters = { sessions: 0, maxBufferedBytes: 0 };

  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly offlineSince: OfflineSince;
  private readonly wireIds: WireIds;

  constructor(
    deps: NatsEdgeStreamsDeps,
    private readonly options: NatsEdgeStreamsOptions = {},
  ) {
    this.nc = deps.nc;
    this.log = deps.log;
    this.offlineSince = deps.offlineSince;
    this.wireIds = deps.wireIds ?? NAME_WIRE_IDS;
  }

  /** Sessions open now (for tests and metrics). */
  get openSessions(): number {
    return this.links.size;
  }

  async logs(ref: ContainerRef, opts: LogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    const sinceSeconds = opts.sinceSeconds ?? -1;
    const { link } = await this.open(
      ref,
      'logs',
      {
        case: 'logs',
        value: create(edge.LogsRequestSchema, {
          follow: opts.follow,
          previous: opts.previous,
          timestamps: opts.timestamps,
          tailLines: BigInt(opts.tailLines ?? -1),
          sinceSeconds: BigInt(sinceSeconds),
          sinceTime: opts.sinceTime ?? '',
          limitBytes: BigInt(opts.limitBytes ?? -1),
        }),
      },
      [Channel.stdout],
    );
    const onAbort = () => link.end({ exitCode: 0, error: 'client went away' });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    void link.done.then(() => signal.removeEventListener('abort', onAbort));
    return logBytes(link, signal);
  }

  exec(ref: ContainerRef, command: string[], opts: StreamOptions): Promise<StreamSession> {
    return this.session(ref, 'exec', { case: 'exec', value: create(edge.ExecRequestSchema, { command, ...opts }) }, opts);
  }

  attach(ref: ContainerRef, opts: StreamOptions): Promise<StreamSession> {
    return this.session(ref, 'attach', { case: 'attach', value: create(edge.ExecRequestSchema, opts) }, opts);
  }

  async portForward(ref: PodRef, port: number): Promise<PortStream> {
    const { link } = await this.open(ref, 'portforward', { case: 'portForward', value: create(edge.PortForwardRequestSchema, { port }) }, [
      Channel.stdout,
    ]);
    return {
      data: link.input(Channel.stdout),
      write: (chunk) => link.write(Channel.stdin, chunk),
      end: async () => link.eof(Channel.stdin),
      done: link.done.then((r) => (r.error ? { error: r.error } : {})),
      close: () => link.end({ exitCode: 0 }),
    };
  }

  async statsSummary(node: string, signal: AbortSignal): Promise<StatsSummary> {
    signal.throwIfAborted();
    const reply = await this.request(
      { node, namespace: '', pod: '' },
      'stats',
      { case: 'stats', value: create(edge.StatsRequestSchema) },
      '',
    );
    try {
      return JSON.parse(Buffer.from(reply.statsJson).toString('utf8')) as StatsSummary;
    } catch (cause) {
      throw new EdgeStreamError('Internal', `edge node ${node} sent a malformed stats summary`, { cause });
    }
  }

  /** Ends every open session (the provider is stopping). */
  close(): void {
    for (const link of this.links) link.end({ exitCode: 1, error: 'provider is stopping' });
  }

  private async session(ref: ContainerRef, op: 'exec' | 'attach', body: OpBody, opts: StreamOptions): Promise<StreamSession> {
    const inputs: ChannelId[] = [];
    if (opts.stdout) inputs.push(Channel.stdout);
    if (opts.stderr && !opts.tty) inputs.push(Channel.stderr);
    const { link } = await this.open(ref, op, body, inputs);
    return {
      ...(opts.stdout ? { stdout: link.input(Channel.stdout) } : {}),
      ...(opts.stderr && !opts.tty ? { stderr: link.input(Channel.stderr) } : {}),
      writeStdin: (chunk) => link.write(Channel.stdin, chunk),
      closeStdin: async () => link.eof(Channel.stdin),
      resize: (w, h) => link.resize(w, h),
      done: link.done,
      close: () => link.end({ exitCode: 0, error: 'client went away' }),
    };
  }

  /** Opens a session: subscribes to its up subject first (so no early frame is lost), then asks the edge. */
  private async open(ref: PodRef & { container?: string }, op: RpcOp, body: OpBody, inputs: ChannelId[]): Promise<Opened> {
    const session = nuid.next();
    const window = this.options.window ?? DEFAULT_WINDOW;
    const wireId = this.wireIds.wireId(ref.node);
    const sub = this.nc.subscribe(sessionSubjects.of(wireId, session, 'up'));
    let reply: edge.StreamReply;
    try {
      reply = await this.request(ref, op, body, session, wireId);
    } catch (err) {
      sub.unsubscribe();
      throw err;
    }
    const down = sessionSubjects.of(wireId, session, 'down');
    const linkOptions: LinkOptions = {
      send: (frame) => this.nc.publish(down, frame),
      recvWindow: window,
      sendWindow: reply.window,
      inputs,
      peer: `edge node ${ref.node}`,
      ...(this.options.keepaliveMs ? { keepaliveMs: this.options.keepaliveMs } : {}),
      ...(this.options.deadAfterMs ? { deadAfterMs: this.options.deadAfterMs } : {}),
    };
    const link = new StreamLink(linkOptions).start();
    this.links.add(link);
    const log = this.log.child({ node: ref.node, pod: `${ref.namespace}/${ref.pod}`, op, session });
    void pump(sub, link);
    this.counters.sessions++;
    void link.done.then((r) => {
      sub.unsubscribe();
      this.links.delete(link);
      this.counters.maxBufferedBytes = Math.max(this.counters.maxBufferedBytes, link.stats.maxBufferedBytes);
      log.debug({ exitCode: r.exitCode, error: r.error, bytesIn: link.stats.bytesIn, bytesOut: link.stats.bytesOut }, 'session ended');
    });
    return { link, reply };
  }

  private async request(
    ref: PodRef & { container?: string },
    op: RpcOp,
    body: OpBody,
    session: string,
    wireId = this.wireIds.wireId(ref.node),
  ): Promise<edge.StreamReply> {
    const req = create(edge.StreamRequestSchema, {
      session,
      window: this.options.window ?? DEFAULT_WINDOW,
      namespace: ref.namespace,
      pod: ref.pod,
      uid: ref.uid ?? '',
      container: ref.container ?? '',
      op: body,
    });
    let data: Uint8Array;
    try {
      const msg = await this.nc.request(rpcSubjects.of(wireId, op), toBinary(edge.StreamRequestSchema, req), {
        timeout: this.options.requestTimeoutMs ?? 2000,
      });
      data = msg.data;
    } catch (err) {
      if (isUnreachable(err)) throw new EdgeNodeOfflineError(ref.node, this.offlineSince(ref.node) ?? undefined, { cause: err });
      throw new EdgeStreamError('Internal', `request to edge node ${ref.node}: ${(err as Error).message}`, { cause: err });
    }
    let reply: edge.StreamReply;
    try {
      reply = fromBinary(edge.StreamReplySchema, data);
    } catch (cause) {
      throw new EdgeStreamError('Internal', `edge node ${ref.node} sent a malformed reply`, { cause });
    }
    if (reply.errorCode !== edge.StreamErrorCode.UNSPECIFIED || reply.error) {
      throw new EdgeStreamError(ERROR_CODES[reply.errorCode] ?? 'Internal', reply.error || 'edge error');
    }
    return reply;
  }
}

/** No responders (the agent's subscription is not reachable) or no reply in time (a silent partition). */
function isUnreachable(err: unknown): boolean {
  if (err instanceof errors.NoRespondersError || err instanceof errors.TimeoutError) return true;
  if (err instanceof errors.RequestError) return err.isNoResponders() || err.cause instanceof errors.TimeoutError;
  return false;
}

async function pump(sub: Subscription, link: StreamLink): Promise<void> {
  for await (const m of sub) link.receive(m.data);
}

/** The log bytes; throws at the end when the session failed (the node went away mid-stream), unless aborted. */
async function* logBytes(link: StreamLink, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  try {
    yield* link.input(Channel.stdout);
    const r = await link.done;
    if (r.error && !signal.aborted) throw new EdgeStreamError('Internal', r.error);
  } finally {
    link.end({ exitCode: 0 });
  }
}
