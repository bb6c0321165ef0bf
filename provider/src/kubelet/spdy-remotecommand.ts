/**
 * exec and attach over SPDY/3.1, the kubelet's way (pkg/kubelet/cri/streaming/remotecommand/httpstream.go): the
 * client negotiates a protocol in X-Stream-Protocol-Version, upgrades, then opens one stream per channel, each
 * named by its `streamType` header (error, stdin, stdout, stderr, and resize from v3 on with a tty). Once all the
 * streams the query asked for are there the session starts; how it ended is written to the error stream: a JSON
 * v1.Status from v4 on, the message of a failure before.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { spdy } from '@edgefarm/streaming';
import type { StreamOptions, StreamSession } from './edge-streams.js';
import { SpdyConnection, type SpdyStream } from './spdy/connection.js';
import { runSession, type OutputChannel } from './session.js';
import { failure, type V1Status } from './status.js';
import { acceptUpgrade, headerValues, negotiate, rejectUpgrade, wantsUpgrade } from './upgrade.js';
import { terminalSizes } from './json-stream.js';

export const REMOTECOMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
const PROTOCOL_HEADER = 'X-Stream-Protocol-Version';

export interface SpdyUpgradeContext {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  log: Logger;
  /** How long the client has to open its streams (the kubelet's streamCreationTimeout is 30 s). */
  streamCreationTimeoutMs: number;
}

/**
 * Negotiates the protocol and upgrades to SPDY; answers 400/403 itself when it cannot. Returns the protocol and the
 * connection, or undefined when the request was answered with an error.
 */
export function upgradeSpdy(
  ctx: SpdyUpgradeContext,
  supported: readonly string[],
  onStream: (s: SpdyStream) => void,
): { protocol: string; conn: SpdyConnection } | undefined {
  const { req, socket } = ctx;
  if (!wantsUpgrade(req, 'SPDY/3.1')) {
    rejectUpgrade(
      socket,
      failure(400, 'BadRequest', 'unable to upgrade: missing upgrade headers in request (Connection: Upgrade, Upgrade: SPDY/3.1)'),
    );
    return undefined;
  }
  const client = headerValues(req, PROTOCOL_HEADER);
  if (client.length === 0) {
    rejectUpgrade(socket, failure(400, 'BadRequest', `unable to upgrade: ${PROTOCOL_HEADER} is required`));
    return undefined;
  }
  const protocol = negotiate(client, supported);
  if (!protocol) {
    const message = `unable to upgrade: unable to negotiate protocol: client supports [${client.join(' ')}], server accepts [${supported.join(' ')}]`;
    rejectUpgrade(socket, failure(403, 'Forbidden', message), { 'X-Accepted-Stream-Protocol-Versions': [...supported] });
    return undefined;
  }
  acceptUpgrade(socket, { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', [PROTOCOL_HEADER]: protocol });
  const conn = new SpdyConnection(socket, { log: ctx.log, onStream }, ctx.head);
  return { protocol, conn };
}

/** SPDY stream → output channel of a session. */
function output(s: SpdyStream): OutputChannel {
  return { write: (c) => s.write(c), end: () => s.end() };
}

/** Serves one exec or attach request over SPDY. Resolves when the connection is over. */
export async function serveSpdyRemoteCommand(
  ctx: SpdyUpgradeContext,
  opts: StreamOptions,
  open: () => Promise<StreamSession>,
): Promise<void> {
  const streams = new Map<string, SpdyStream>();
  let ready!: () => void;
  const allThere = new Promise<void>((r) => (ready = r));
  let expected = 0;
  const up = upgradeSpdy(ctx, REMOTECOMMAND_PROTOCOLS, (s) => {
    const type = spdy.header(s.headers, 'streamtype') ?? '';
    if (!['error', 'stdin', 'stdout', 'stderr', 'resize'].includes(type) || streams.has(type)) {
      ctx.log.info({ streamType: type }, streams.has(type) ? 'duplicate remotecommand stream' : 'unknown remotecommand stream type');
      s.reset(spdy.RstStatus.RefusedStream);
      return;
    }
    streams.set(type, s);
    void s.reply().catch(() => undefined);
    if (streams.size === expected) ready();
  });
  if (!up) return;
  const { protocol, conn } = up;
  const v4 = protocol === 'v4.channel.k8s.io';
  const resizable = v4 || protocol === 'v3.channel.k8s.io';
  expected = 1 + Number(opts.stdin) + Number(opts.stdout) + Number(opts.stderr) + Number(opts.tty && resizable);
  const log = ctx.log.child({ protocol });
  const timer = setTimeout(() => {
    log.info({ got: [...streams.keys()], expected }, 'client did not open its streams in time');
    conn.close();
  }, ctx.streamCreationTimeoutMs);
  const gone = conn.done.then(() => undefined);
  try {
    if ((await Promise.race([allThere.then(() => true), gone.then(() => false)])) === false) return;
  } finally {
    clearTimeout(timer);
  }
  const errorStream = streams.get('error');
  const stdin = opts.stdin ? streams.get('stdin') : undefined;
  const resize = streams.get('resize');
  await runSession(
    open,
    {
      stdin: stdin?.data,
      stdout: opts.stdout ? optional(streams.get('stdout')) : undefined,
      stderr: opts.stderr ? optional(streams.get('stderr')) : undefined,
      resize: resize ? terminalSizes(resize.data, log) : undefined,
      status: async (status: V1Status) => {
        if (!errorStream) return;
        if (v4) await errorStream.write(Buffer.from(JSON.stringify(status)));
        else if (status.status !== 'Success') await errorStream.write(Buffer.from(status.message ?? 'error'));
        await errorStream.end();
      },
      clientGone: gone,
    },
    log,
  );
  // Half-close what is still open on our side; GOAWAY and the socket's end follow the data already written.
  await Promise.all([...streams.values()].map((s) => s.end().catch(() => undefined)));
  conn.close();
  await conn.done;
}

function optional(s: SpdyStream | undefined): OutputChannel | undefined {
  return s ? output(s) : undefined;
}
