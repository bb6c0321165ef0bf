/**
 * Plain HTTP on a socket taken over for an Upgrade (Node hands 'upgrade' requests to us with the raw socket):
 * protocol negotiation as Kubernetes' httpstream.Handshake does it, error responses, and 101 Switching Protocols.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { failure, type V1Status } from './status.js';

/** Every value of a (possibly repeated, comma-separated) request header, trimmed. */
export function headerValues(req: IncomingMessage, name: string): string[] {
  const raw = req.headersDistinct[name.toLowerCase()] ?? [];
  return raw
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** The first protocol the client lists that the server supports (client order wins, as in httpstream). */
export function negotiate(client: readonly string[], server: readonly string[]): string | undefined {
  return client.find((p) => server.includes(p));
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Answers an upgrade request with an error (a v1.Status as JSON) and closes the socket. */
export function rejectUpgrade(socket: Duplex, status: V1Status, headers: Record<string, string | string[]> = {}): void {
  const code = status.code ?? 500;
  const body = JSON.stringify(status);
  const lines = [
    `HTTP/1.1 ${code} ${REASONS[code] ?? 'Error'}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
  ];
  for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  if (!socket.destroyed) socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

export function badRequest(socket: Duplex, message: string): void {
  rejectUpgrade(socket, failure(400, 'BadRequest', message));
}

/** 101 Switching Protocols with the given headers; the socket then belongs to the upgraded protocol. */
export function acceptUpgrade(socket: Duplex, headers: Record<string, string>): void {
  const lines = ['HTTP/1.1 101 Switching Protocols', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
}

/** Whether the request asks to upgrade to `proto` (case-insensitive, as httpstream checks it). */
export function wantsUpgrade(req: IncomingMessage, proto: string): boolean {
  const conn = (req.headers.connection ?? '').toLowerCase();
  const up = (req.headers.upgrade ?? '').toLowerCase();
  return conn.includes('upgrade') && up.includes(proto.toLowerCase());
}
