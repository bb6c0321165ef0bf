/**
 * MetricsServer: a small node:http server in the agent (inside the site's network namespace under hack/site.sh)
 * answering `GET /metrics` (Prometheus text) and `GET /healthz`; everything else is 404. start() resolves once it
 * listens; stop() closes it and its keep-alive sockets.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { http } from '../util/node-http.js';

export interface MetricsText {
  text(): Promise<string>;
  readonly contentType: string;
}

export class MetricsServer {
  private server: Server | undefined;

  constructor(
    private readonly metrics: MetricsText,
    private readonly addr: { host: string; port: number },
  ) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else if (path === '/metrics') {
        this.metrics.text().then(
          (body) => res.writeHead(200, { 'content-type': this.metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
          (err: unknown) =>
            res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics: ${(err as Error)?.message ?? String(err)}\n`),
        );
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.addr.port, this.addr.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  /** The bound address (port 0 in tests picks a free one). */
  get address(): { host: string; port: number } {
    const a = this.server?.address() as AddressInfo | null | undefined;
    if (!a) throw new Error('metrics server not started');
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
