/**
 * The WebSocket channel framing shared by exec/attach and port-forward (k8s.io/apimachinery wsstream): every
 * message starts with its channel number; the binary protocols send the byte and raw data, the base64 ones
 * (`*.base64.channel.k8s.io`) send text: the channel as an ASCII digit ('0' + n), then the data base64-encoded.
 *
 * Uses `ws` (the WebSocket implementation most Node.js servers use, already in the tree through
 * @kubernetes/client-node): RFC 6455 framing, masking, fragmentation, ping/pong and close handshakes are not worth
 * writing again, unlike SPDY/3.1, for which no npm package fits (see docs/decisions/0006-kubelet-api.md).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { headerValues } from './upgrade.js';

/** A noServer WebSocketServer for every upgrade of one kind; picks the first protocol the client offers that is in `protocols`. */
export function webSocketServer(protocols: readonly string[], maxPayload = 16 << 20): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload,
    perMessageDeflate: false,
    handleProtocols: (offered) => [...offered].find((p) => protocols.includes(p)) ?? false,
  });
}

/** Whether the request is a WebSocket upgrade. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
}

/** The subprotocols the client offers (Sec-WebSocket-Protocol), in its order. */
export function offeredProtocols(req: IncomingMessage): string[] {
  return headerValues(req, 'sec-websocket-protocol');
}

/** How channel messages are framed on one connection. */
export interface ChannelCodec {
  readonly base64: boolean;
}
export const BINARY: ChannelCodec = { base64: false };
export const BASE64: ChannelCodec = { base64: true };

/** A received message as channel and data; undefined for an empty one (wsstream skips those). */
export function parseChannelMessage(codec: ChannelCodec, raw: Buffer): { channel: number; data: Buffer } | undefined {
  if (raw.length === 0) return undefined;
  if (!codec.base64) return { channel: raw[0]!, data: raw.subarray(1) };
  return { channel: raw[0]! - 0x30, data: Buffer.from(raw.subarray(1).toString('latin1'), 'base64') };
}

/** Sends one channel message; resolves once ws handed it to the socket (its callback): backpressure per message. */
export function sendChannel(ws: WebSocket, channel: number, data: Uint8Array, codec: ChannelCodec = BINARY): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (ws.readyState !== ws.OPEN) return reject(new Error('websocket closed'));
    const done = (err?: Error) => (err ? reject(err) : resolve());
    if (codec.base64) ws.send(String.fromCharCode(0x30 + channel) + Buffer.from(data).toString('base64'), { binary: false }, done);
    else ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true }, done);
  });
}

/**
 * Completes the upgrade; `gone` settles when the connection is closed (by either side). The socket's idle timeout
 * (the server's streaming idle timeout), which `ws` clears when it takes the socket, is set again.
 */
export async function acceptWebSocket(
  wss: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  log: Logger,
): Promise<{ ws: WebSocket; gone: Promise<void> }> {
  const idleMs = (socket as Partial<Socket>).timeout;
  const ws = await new Promise<WebSocket>((resolve) => wss.handleUpgrade(req, socket, head, resolve));
  if (idleMs && 'setTimeout' in socket) (socket as Socket).setTimeout(idleMs);
  const gone = new Promise<void>((r) => ws.once('close', () => r()));
  ws.on('error', (err) => log.debug({ err: err.message }, 'websocket error'));
  return { ws, gone };
}

/** Closes normally, waits up to `graceMs` for the client's close, then cuts the connection; leaves no timer behind. */
export async function closeWebSocket(ws: WebSocket, gone: Promise<void>, graceMs = 2_000): Promise<void> {
  ws.close(1000);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
  clearTimeout(timer);
  if (ws.readyState !== ws.CLOSED) ws.terminate();
}
