/**
 * exec and attach over the WebSocket channel protocols (k8s.io/apimachinery wsstream, the kubelet's
 * remotecommand/websocket.go), for clients that talk WebSockets to the kubelet API directly: every binary message
 * starts with its channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize. v4.channel.k8s.io writes a JSON
 * v1.Status to the error channel; v5.channel.k8s.io adds the close signal (a message [255, channel]: the client is
 * done sending on that channel, e.g. stdin EOF). channel.k8s.io (and no subprotocol) writes a failure's message.
 * The base64 variants are not offered here (port-forward offers its one). Framing and `ws` setup: websocket.ts.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ChunkQueue } from '@edgefarm/streaming';
import type { WebSocketServer } from 'ws';
import type { StreamOptions, StreamSession } from './edge-streams.js';
import { terminalSizes } from './json-stream.js';
import { runSession, type OutputChannel } from './session.js';
import type { V1Status } from './status.js';
import { acceptWebSocket, closeWebSocket, sendChannel as send } from './websocket.js';

export const WEBSOCKET_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'] as const;
const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
const CLOSE = 255;
/** Unread stdin above which the socket is no longer read. */
const HIGH_WATER = 1 << 20;

export async function serveWebSocketRemoteCommand(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  opts: StreamOptions,
  open: () => Promise<StreamSession>,
  log: Logger,
): Promise<void> {
  const { ws, gone } = await acceptWebSocket(wss, req, socket, head, log);
  const protocol = ws.protocol || 'channel.k8s.io';
  const v4 = protocol !== 'channel.k8s.io';
  const v5 = protocol === 'v5.channel.k8s.io';
  const stdin = new ChunkQueue();
  const resize = new ChunkQueue();
  void gone.then(() => {
    stdin.end();
    resize.end();
  });
  ws.on('message', (raw: Buffer, isBinary) => {
    const data = isBinary ? raw : Buffer.from(raw);
    if (data.length === 0) return;
    const ch = data[0]!;
    if (v5 && ch === CLOSE) {
      if (data.length !== 2) {
        log.info({ bytes: data.length }, 'malformed close signal');
        ws.close(1002, 'malformed close signal');
        return;
      }
      if (data[1] === STDIN) stdin.end();
      if (data[1] === RESIZE) resize.end();
      return;
    }
    if (ch === STDIN && opts.stdin) {
      stdin.push(data.subarray(1));
      // Backpressure: stop reading the socket while the edge has not taken a window's worth of stdin.
      if (stdin.bytes >= HIGH_WATER) {
        ws.pause();
        void stdin.below(HIGH_WATER / 2).then(() => ws.resume());
      }
    } else if (ch === RESIZE && opts.tty) resize.push(data.subarray(1));
    else log.debug({ channel: ch }, 'message on a channel the session does not read: ignored');
  });
  const out = (channel: number): OutputChannel => ({
    write: (c) => send(ws, channel, c),
    // v5 could signal the end of stdout with a close message; the kubelet sends none, and the end of the
    // session (the status, then the close) tells the client as much.
    end: async () => undefined,
  });
  await runSession(
    open,
    {
      stdin: opts.stdin ? stdin : undefined,
      stdout: opts.stdout ? out(STDOUT) : undefined,
      stderr: opts.stderr ? out(STDERR) : undefined,
      resize: opts.tty ? terminalSizes(resize, log) : undefined,
      status: async (status: V1Status) => {
        if (v4) await send(ws, ERROR, Buffer.from(JSON.stringify(status)));
        else if (status.status !== 'Success') await send(ws, ERROR, Buffer.from(status.message ?? 'error'));
      },
      clientGone: gone,
    },
    log.child({ protocol }),
  );
  await closeWebSocket(ws, gone);
}
