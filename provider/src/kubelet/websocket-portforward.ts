/**
 * port-forward over WebSocket, as the kubelet serves it (k8s.io/kubelet/pkg/cri/streaming/portforward/websocket.go,
 * v1.33): the ports come from the query (`?port=80&port=8080`, see routes.parsePorts) and each gets two channels in
 * order, data (2i, read and written) and error (2i+1, written only). The first message on every channel is its
 * port, 2 bytes little-endian. Bytes the client sends on 2i go to one EdgeStreams.portForward connection to that
 * port, opened for the life of the WebSocket; bytes from the pod come back on 2i; a failure to connect or forward is
 * written as text on 2i+1. Subprotocols as the kubelet's: v4.channel.k8s.io (and none) binary,
 * v4.base64.channel.k8s.io base64 (websocket.ts has the framing). The channels have no close signal: a port whose
 * connection ended stays quiet (client bytes for it are dropped); the WebSocket closes once every port's connection
 * ended, and every connection is closed when the client goes away.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ChunkQueue } from '@edgefarm/streaming';
import type { WebSocketServer } from 'ws';
import type { PortStream } from './edge-streams.js';
import { pump } from './session.js';
import { acceptWebSocket, BASE64, BINARY, closeWebSocket, parseChannelMessage, sendChannel } from './websocket.js';

export const PORTFORWARD_WEBSOCKET_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'] as const;
/** Unread client bytes of one port above which the socket is no longer read. */
const HIGH_WATER = 1 << 20;

export async function serveWebSocketPortForward(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ports: readonly number[],
  forward: (port: number) => Promise<PortStream>,
  podName: string,
  log: Logger,
): Promise<void> {
  const { ws, gone } = await acceptWebSocket(wss, req, socket, head, log);
  const codec = ws.protocol === 'v4.base64.channel.k8s.io' ? BASE64 : BINARY;
  const send = (channel: number, data: Uint8Array) => sendChannel(ws, channel, data, codec);
  const toPod = ports.map(() => new ChunkQueue());
  const active = new Set<PortStream>();
  let closed = false;
  void gone.then(() => {
    closed = true;
    for (const q of toPod) q.end();
    for (const ps of active) ps.close();
  });

  // Backpressure: stop reading the socket while any port's connection has not taken a window's worth.
  const full = new Set<number>();
  ws.on('message', (raw: Buffer) => {
    const m = parseChannelMessage(codec, raw);
    if (!m) return;
    const i = m.channel / 2;
    const q = toPod[i];
    if (!q) {
      log.debug({ channel: m.channel }, 'message on a channel the client may not write: ignored');
      return;
    }
    q.push(m.data);
    if (q.bytes >= HIGH_WATER && !full.has(i)) {
      full.add(i);
      ws.pause();
      void q.below(HIGH_WATER / 2).then(() => {
        full.delete(i);
        if (full.size === 0) ws.resume();
      });
    }
  });

  const run = async (i: number, port: number): Promise<void> => {
    const incoming = toPod[i]!;
    const fail = (reason: string) =>
      send(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${podName}: ${reason}`)).catch(() => undefined);
    let ps: PortStream;
    try {
      ps = await forward(port);
    } catch (err) {
      incoming.discard();
      return fail((err as Error).message);
    }
    if (closed) return ps.close();
    active.add(ps);
    // The client's bytes end only with the WebSocket (then every connection is closed); a connection that ended
    // first drops what still comes for it.
    void pump(incoming, (c) => ps.write(c))
      .catch(() => ps.close())
      .finally(() => incoming.discard());
    const fromPod = pump(ps.data, (c) => send(2 * i, c)).catch(() => undefined);
    const result = await ps.done;
    await fromPod;
    active.delete(ps);
    incoming.discard();
    if (result.error && !closed) await fail(result.error);
  };

  try {
    for (const [i, port] of ports.entries()) {
      const announce = Buffer.alloc(2);
      announce.writeUInt16LE(port);
      await send(2 * i, announce);
      await send(2 * i + 1, announce);
    }
  } catch {
    return; // the client went away before the channels were announced
  }
  log.debug({ ports, protocol: ws.protocol || '(none)' }, 'port-forward over WebSocket');
  await Promise.all(ports.map((port, i) => run(i, port)));
  if (!closed) await closeWebSocket(ws, gone);
}
