/**
 * What `edgefarm doctor --dir` asks of the site's machine and network: files, the registrar's clock over TLS pinned to
 * the fleet CA, the hub's leaf listeners (TCP, then TLS against the fleet CA), the site nats-server's monitoring
 * endpoint, and containerd's CRI Version. Behind an interface so the checks are unit-tested with a hand-written fake
 * (probe-fake.ts). Every call is bounded by its timeout and leaves no socket behind.
 */
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { criClients } from '@edgefarm/cri';
import { RegistrarClient } from '@edgefarm/registrar';

export interface SiteProbe {
  /** A file's text; files over `maxBytes` are refused. */
  readFile(file: string, maxBytes: number): Promise<string>;
  /** The registrar's Date header over HTTPS verified against `caPem` only (GET /healthz). */
  registrarTime(url: string, caPem: string, timeoutMs: number): Promise<{ serverMs: number; roundTripMs: number }>;
  /**
   * A leaf URL (`tls://host:port`): TCP connect, then (after the NATS INFO, or at once when the server waits for a
   * TLS-first client) a TLS handshake verified against `caPem` and the host. Resolves with what was negotiated.
   */
  leafHandshake(url: string, caPem: string, timeoutMs: number): Promise<string>;
  /** A plain-HTTP GET (the site server's monitoring listener, loopback): status and at most 1 MiB of body. */
  httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }>;
  /** CRI RuntimeService.Version over the unix socket. */
  criVersion(endpoint: string, timeoutMs: number): Promise<{ runtimeName: string; runtimeVersion: string }>;
}

const MAX_BODY = 1024 * 1024;
/** How long to wait for the NATS INFO before assuming a TLS-first listener. */
const INFO_WAIT_MS = 1_500;

export class RealSiteProbe implements SiteProbe {
  async readFile(file: string, maxBytes: number): Promise<string> {
    const text = await readFile(file);
    if (text.length > maxBytes) throw new Error(`${file}: larger than ${maxBytes} bytes`);
    return text.toString('utf8');
  }

  registrarTime(url: string, caPem: string, timeoutMs: number) {
    return new RegistrarClient({ url, caPem, timeoutMs }).serverTime();
  }

  leafHandshake(url: string, caPem: string, timeoutMs: number): Promise<string> {
    const u = new URL(url);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const port = Number(u.port || 7422);
    return new Promise((resolve, reject) => {
      const sock = connect({ host, port });
      let tls: Socket | undefined;
      const done = (err?: Error, detail?: string) => {
        clearTimeout(timer);
        clearTimeout(infoTimer);
        tls?.destroy();
        sock.destroy();
        if (err) reject(err);
        else resolve(detail!);
      };
      const timer = setTimeout(() => done(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
      let infoTimer: NodeJS.Timeout | undefined;
      const handshake = (info: string) => {
        sock.removeAllListeners('data');
        sock.pause();
        const s = tlsConnect({ socket: sock, host, servername: isIP(host) ? undefined : host, ca: caPem, rejectUnauthorized: true });
        tls = s;
        s.once('error', (err: Error) => done(new Error(`TLS: ${err.message}`)));
        s.once('secureConnect', () => {
          const cn: unknown = s.getPeerCertificate().subject?.CN;
          const subject = typeof cn === 'string' ? cn : undefined;
          done(undefined, `${info}TLS ${s.getProtocol() ?? '?'}${subject ? `, certificate ${subject}` : ''}, signed by the fleet CA`);
        });
      };
      sock.once('error', (err) => done(new Error(`TCP: ${err.message}`)));
      sock.once('connect', () => {
        let buffered = '';
        infoTimer = setTimeout(() => handshake('no INFO (TLS first), '), INFO_WAIT_MS);
        sock.on('data', (chunk: Buffer) => {
          buffered += chunk.toString('latin1');
          const end = buffered.indexOf('\r\n');
          if (end < 0) {
            if (buffered.length > 64 * 1024) done(new Error('no NATS INFO line in the first 64 KiB'));
            return;
          }
          clearTimeout(infoTimer);
          const line = buffered.slice(0, end);
          if (!line.startsWith('INFO ')) return done(new Error('not a NATS leafnode listener (no INFO)'));
          let info: { tls_required?: boolean; tls_available?: boolean; server_name?: string };
          try {
            info = JSON.parse(line.slice(5)) as typeof info;
          } catch {
            return done(new Error('a malformed NATS INFO'));
          }
          if (!info.tls_required && !info.tls_available) return done(new Error('the listener does not offer TLS'));
          handshake(typeof info.server_name === 'string' ? `server ${info.server_name.slice(0, 64)}, ` : '');
        });
      });
    });
  }

  httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }

  async criVersion(endpoint: string, timeoutMs: number) {
    const { runtime, image } = criClients(endpoint, timeoutMs);
    try {
      const v = await runtime.version({});
      return { runtimeName: v.runtimeName, runtimeVersion: v.runtimeVersion };
    } finally {
      runtime.close();
      image.close();
    }
  }
}
