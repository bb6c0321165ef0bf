/**
 * port-forward over SPDY/3.1 (protocol portforward.k8s.io), as the kubelet serves it
 * (pkg/kubelet/cri/streaming/portforward/httpstream.go): for every forwarded connection the client opens an error
 * stream and a data stream with the same `requestID` and the target `port`. Once both are there, one
 * EdgeStreams.portForward runs the connection; a failure is written as text to the error stream. The SPDY
 * connection lives as long as the client keeps it (many connections, any ports).
 */
import { spdy } from '@edgefarm/streaming';
import type { PortStream } from './edge-streams.js';
import type { SpdyStream } from './spdy/connection.js';
import { parsePort } from './routes.js';
import { pump } from './session.js';
import { upgradeSpdy, type SpdyUpgradeContext } from './spdy-remotecommand.js';

export const PORTFORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;

interface Pair {
  error?: SpdyStream;
  data?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** The request a stream belongs to: its requestID header, or for old clients the id the kubelet derives. */
function requestIdOf(s: SpdyStream, type: string): string {
  return spdy.header(s.headers, 'requestid') ?? String(type === 'error' ? s.id : s.id - 2);
}

export async function serveSpdyPortForward(
  ctx: SpdyUpgradeContext,
  forward: (port: number) => Promise<PortStream>,
  podName: string,
): Promise<void> {
  const pairs = new Map<string, Pair>();
  const active = new Set<PortStream>();
  const log = ctx.log;
  const onStream = (s: SpdyStream) => {
    const type = spdy.header(s.headers, 'streamtype') ?? '';
    if (type !== 'error' && type !== 'data') {
      log.info({ streamType: type }, 'unknown port-forward stream type');
      s.reset(spdy.RstStatus.RefusedStream);
      return;
    }
    const id = requestIdOf(s, type);
    let pair = pairs.get(id);
    if (!pair) {
      const timer = setTimeout(() => {
        log.info({ requestID: id }, 'port-forward request did not get both streams in time');
        pairs.delete(id);
        pair?.error?.reset();
        pair?.data?.reset();
      }, ctx.streamCreationTimeoutMs);
      pair = { timer };
      pairs.set(id, pair);
    }
    if (pair[type]) {
      log.info({ requestID: id, streamType: type }, 'duplicate port-forward stream');
      s.reset(spdy.RstStatus.StreamInUse);
      return;
    }
    pair[type] = s;
    void s.reply().catch(() => undefined);
    if (pair.error && pair.data) {
      clearTimeout(pair.timer);
      pairs.delete(id);
      void run(pair.error, pair.data);
    }
  };

  const run = async (error: SpdyStream, data: SpdyStream) => {
    const port = parsePort(spdy.header(data.headers, 'port'));
    const fail = async (message: string) => {
      await error.write(Buffer.from(message)).catch(() => undefined);
      await error.end().catch(() => undefined);
      if (!data.isClosed) data.reset(spdy.RstStatus.Cancel);
    };
    if (typeof port === 'string') return fail(port);
    let ps: PortStream;
    try {
      ps = await forward(port);
    } catch (err) {
      return fail(`error forwarding port ${port} to pod ${podName}: ${(err as Error).message}`);
    }
    active.add(ps);
    // Ends by itself at the client's FIN or when the connection goes.
    void pump(data.data, (c) => ps.write(c))
      .then(() => ps.end())
      .catch(() => ps.close());
    const fromPod = pump(ps.data, (c) => data.write(c))
      .then(() => data.end())
      .catch(() => undefined);
    const result = await ps.done;
    await fromPod;
    active.delete(ps);
    if (result.error) return fail(`error forwarding port ${port} to pod ${podName}: ${result.error}`);
    await error.end().catch(() => undefined);
  };

  const up = upgradeSpdy(ctx, PORTFORWARD_PROTOCOLS, onStream);
  if (!up) return;
  await up.conn.done;
  for (const p of pairs.values()) clearTimeout(p.timer);
  pairs.clear();
  for (const ps of active) ps.close();
}
