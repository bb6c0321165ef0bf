/**
 * The site's side of the protocol: pinning the fleet CA by the hash in a join token, and a client that speaks HTTPS
 * to the registrar verifying against that CA only (never the system's roots).
 *
 * Pinning ({@link pinFleetCa}): a TLS handshake without verification and without sending anything; the presented
 * chain must hold a certificate whose sha256 over DER is the token's hash, and that certificate must have signed the
 * server's (the leaf) certificate. Only then does the site speak HTTPS, verifying the registrar against that CA.
 */
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { connect as tlsConnect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { sha256Hex } from './fleet.js';
import {
  PATHS,
  SIGNATURE_HEADER,
  parseErrorBody,
  parseJoinResponse,
  parseRenewResponse,
  type ErrorCode,
  type JoinRequest,
  type JoinResponse,
  type RenewRequest,
  type RenewResponse,
} from './protocol.js';
import { signBody } from './signing.js';

const MAX_RESPONSE_BYTES = 64 * 1024;

/** The registrar could not be reached (DNS, refused, timeout, TLS failure other than the pin). */
export class RegistrarUnreachableError extends Error {
  override name = 'RegistrarUnreachableError';
}
/** The registrar presented no certificate of the pinned CA, or that CA did not sign its certificate. */
export class CaPinError extends Error {
  override name = 'CaPinError';
}
/** The registrar refused the request: `code` is the protocol's error code. */
export class RegistrarRefusedError extends Error {
  override name = 'RegistrarRefusedError';
  constructor(
    readonly code: ErrorCode | 'unexpected',
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
export const isRegistrarUnreachable = (e: unknown): e is RegistrarUnreachableError => e instanceof RegistrarUnreachableError;
export const isCaPinError = (e: unknown): e is CaPinError => e instanceof CaPinError;
export const isRegistrarRefused = (e: unknown): e is RegistrarRefusedError => e instanceof RegistrarRefusedError;

function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'https:') throw new RegistrarUnreachableError(`${url} is not an https:// URL`);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 443) };
}

/**
 * The fleet CA (PEM) the registrar at `url` presents, found by `caHash` (hex sha256 over DER), checked to have signed
 * the registrar's certificate. Sends nothing but a TLS handshake.
 */
export function pinFleetCa(url: string, caHash: string, timeoutMs = 10_000): Promise<string> {
  const { host, port } = hostPort(url);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host,
      port,
      servername: /^[\d.:]+$/.test(host) ? undefined : host,
      rejectUnauthorized: false,
      timeout: timeoutMs,
    });
    const fail = (err: Error): void => {
      socket.destroy();
      reject(err);
    };
    socket.once('timeout', () => fail(new RegistrarUnreachableError(`${url}: no TLS handshake within ${timeoutMs} ms`)));
    socket.once('error', (err: Error) => fail(new RegistrarUnreachableError(`${url}: ${err.message}`)));
    socket.once('secureConnect', () => {
      try {
        const chain: PeerCertificate[] = [];
        let c: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
        while (c && c.raw && chain.length < 10 && !chain.includes(c)) {
          chain.push(c);
          c = c.issuerCertificate;
        }
        const leaf = chain[0];
        const ca = chain.find((p) => sha256Hex(p.raw) === caHash);
        if (!leaf) throw new CaPinError(`${url} presented no certificate`);
        if (!ca)
          throw new CaPinError(
            `${url} presented no certificate of the CA the token names (sha256 ${caHash.slice(0, 16)}...): wrong registrar, or a wrong token`,
          );
        const caCert = new X509Certificate(ca.raw);
        const leafCert = new X509Certificate(leaf.raw);
        if (!caCert.ca || !leafCert.checkIssued(caCert) || !leafCert.verify(caCert.publicKey)) {
          throw new CaPinError(`${url}: the pinned CA did not sign the registrar's certificate`);
        }
        socket.end();
        resolve(caCert.toString());
      } catch (err) {
        fail(err as Error);
      }
    });
  });
}

export interface RegistrarClientOptions {
  /** The registrar's https URL. */
  url: string;
  /** The only CA its certificate may chain to. */
  caPem: string;
  timeoutMs?: number;
}

interface Answer {
  status: number;
  date: string | undefined;
  body: unknown;
}

export class RegistrarClient {
  constructor(private readonly o: RegistrarClientOptions) {}

  /** The registrar's clock from its Date header, and the round trip that read it. */
  async serverTime(): Promise<{ serverMs: number; roundTripMs: number }> {
    const t0 = Date.now();
    const a = await this.send('GET', PATHS.healthz);
    const serverMs = a.date ? Date.parse(a.date) : NaN;
    if (Number.isNaN(serverMs)) throw new RegistrarRefusedError('unexpected', a.status, 'the registrar sent no Date header');
    return { serverMs, roundTripMs: Date.now() - t0 };
  }

  async join(req: JoinRequest): Promise<JoinResponse> {
    const a = await this.send('POST', PATHS.join, Buffer.from(JSON.stringify(req)));
    return this.parse(a, parseJoinResponse);
  }

  /** A renewal signed with the node's seed. */
  async renew(seed: string, req: RenewRequest): Promise<RenewResponse> {
    const body = Buffer.from(JSON.stringify(req));
    const a = await this.send('POST', PATHS.renew, body, { [SIGNATURE_HEADER]: signBody(seed, body) });
    return this.parse(a, parseRenewResponse);
  }

  private parse<T>(a: Answer, parse: (b: unknown) => T): T {
    if (a.status !== 200) {
      const e = parseErrorBody(a.body);
      throw new RegistrarRefusedError(e?.code ?? 'unexpected', a.status, e?.message ?? `the registrar answered HTTP ${a.status}`);
    }
    try {
      return parse(a.body);
    } catch (err) {
      throw new RegistrarRefusedError('unexpected', a.status, `the registrar's answer is malformed: ${(err as Error).message}`);
    }
  }

  private send(method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
    const url = new URL(path, this.o.url.endsWith('/') ? this.o.url : `${this.o.url}/`);
    const timeout = this.o.timeoutMs ?? 15_000;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: this.o.caPem,
          rejectUnauthorized: true,
          timeout,
          headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES)
              req.destroy(new RegistrarUnreachableError(`${url.origin}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('error', (err) => reject(new RegistrarUnreachableError(`${url.origin}: ${err.message}`)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json')) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = undefined;
              }
            }
            resolve({ status: res.statusCode ?? 0, date: res.headers.date, body: parsed });
          });
        },
      );
      req.on('timeout', () => req.destroy(new RegistrarUnreachableError(`${url.origin}: no answer within ${timeout} ms`)));
      req.on('error', (err) =>
        reject(err instanceof RegistrarUnreachableError ? err : new RegistrarUnreachableError(`${url.origin}: ${err.message}`)),
      );
      req.end(body);
    });
  }
}
