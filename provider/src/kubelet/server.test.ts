/**
 * The KubeletServer's HTTP endpoints, routing and handshakes over real TLS on loopback, with the fake EdgeStreams
 * and the fake API's reviews (client-go against the same server: server.int.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { spdy } from '@edgefarm/streaming';
import { pino } from 'pino';
import { SpdyTestPeer } from './spdy/testing.js';
import { startKubeletBed, type KubeletBed } from './testing.js';

let bed: KubeletBed;

beforeAll(async () => {
  bed = await startKubeletBed({ streamCreationTimeoutMs: 500 });
  bed.streams.logLines.set('default/web/app', ['one', 'two', 'three']);
});
afterAll(async () => {
  await bed?.stop();
});

type Who = 'admin' | 'user' | 'anonymous';
function creds(who: Who, pki = bed.pki) {
  if (who === 'anonymous') return {};
  return {
    cert: readFileSync(who === 'admin' ? pki.adminCert : pki.userCert),
    key: readFileSync(who === 'admin' ? pki.adminKey : pki.userKey),
  };
}

function get(path: string, who: Who = 'admin', port = bed.server.port, onData?: (chunk: string, abort: () => void) => void, pki = bed.pki) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, rejectUnauthorized: false, agent: false, ...creds(who, pki) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
        onData?.(c.toString(), () => req.destroy());
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends an upgrade request over TLS; resolves with the response head and the socket. */
async function upgrade(path: string, headers: Record<string, string>, who: Who = 'admin', on: KubeletBed = bed) {
  const socket = tls.connect({ host: '127.0.0.1', port: on.server.port, rejectUnauthorized: false, ...creds(who, on.pki) });
  await new Promise((r) => socket.once('secureConnect', r));
  const method = headers.Upgrade === 'websocket' ? 'GET' : 'POST';
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: kubelet', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  let head = '';
  const rest = await new Promise<Buffer>((resolve) => {
    const on = (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', on);
      const tail = Buffer.from(head.slice(end + 4), 'latin1');
      head = head.slice(0, end);
      resolve(tail);
    };
    socket.on('data', on);
  });
  return { socket, head, rest };
}

const SPDY = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' };

describe('plain endpoints', () => {
  it('/healthz and /pods of the served nodes', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok' });
    const pods = await get('/pods');
    expect(JSON.parse(pods.body)).toMatchObject({ kind: 'PodList', apiVersion: 'v1', items: [{ metadata: { name: 'web' } }] });
  });

  it('/containerLogs with options, as the edge gives them', async () => {
    expect((await get('/containerLogs/default/web/app?tailLines=2')).body).toBe('two\nthree\n');
    expect((await get('/containerLogs/default/web/app?limitBytes=6')).body).toBe('one\ntw');
    expect(bed.streams.calls.at(-1)).toMatchObject({
      method: 'logs',
      ref: { node: 'edge-1', namespace: 'default', pod: 'web', container: 'app' },
      args: { limitBytes: 6 },
    });
  });

  it('/containerLogs?follow streams as bytes come and ends the edge stream when the client goes away', async () => {
    const before = bed.streams.calls.length;
    const r = await get('/containerLogs/default/web/app?follow=true', 'admin', bed.server.port, (_c, abort) => abort());
    expect(r.body.startsWith('one\n')).toBe(true);
    expect(bed.streams.calls.length).toBe(before + 1);
  });

  it.each([
    ['/containerLogs/default/nope/app', 404, /pods "nope" not found/],
    ['/containerLogs/default/other/app', 404, /pods "other" not found/], // bound to a node this replica does not serve
    ['/containerLogs/default/web/sidecar', 404, /container "sidecar" not found/],
    ['/containerLogs/default/web/app?tailLines=-3', 400, /tailLines=-3/],
    ['/exec/default/web/app?command=ls&output=1', 400, /Upgrade request required/],
    ['/stats/summary', 404, /is per node/],
    ['/nothing/here', 404, /has no GET/],
  ])('%s → %i', async (path, status, message) => {
    const r = await get(path);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: status });
    expect(JSON.parse(r.body).message).toMatch(message);
  });

  it('answers an offline node with its message (500, plain text, as the apiserver relays it)', async () => {
    bed.streams.offline.add('edge-1');
    try {
      const r = await get('/containerLogs/default/web/app');
      expect(r).toMatchObject({ status: 500, body: 'edge node edge-1 is disconnected since 1970-01-01T00:00:00.000Z' });
    } finally {
      bed.streams.offline.delete('edge-1');
    }
  });

  it('401 without credentials, 403 without rights', async () => {
    expect((await get('/pods', 'anonymous')).status).toBe(401);
    const denied = await get('/containerLogs/default/web/app', 'user');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body).message).toContain('user=nobody, verb=get, resource=nodes, subresource=proxy');
  });
});

/** A port nothing listens on now (the kernel's pick, released at once). */
function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** The subject CN of the certificate a TLS server on 127.0.0.1:port presents to a new connection. */
function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const cn = socket.getPeerCertificate().subject?.CN;
      socket.destroy();
      resolve(String(cn));
    });
    socket.on('error', reject);
  });
}

describe('a renewed serving certificate (EF_KUBELET_SERVING_CSR)', () => {
  it('is what new connections get, on the shared port and on every node port', async () => {
    const free = await freePort();
    const renewBed = await startKubeletBed({ nodePorts: { from: free, to: free } });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ef-renewed-'));
    try {
      const nodePort = renewBed.server.assignPort('edge-1');
      const before = await servedCn(renewBed.server.port);
      expect(await servedCn(nodePort)).toBe(before);
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=renewed',
          '-keyout',
          path.join(dir, 'k'),
          '-out',
          path.join(dir, 'c'),
        ],
        { stdio: 'pipe' },
      );
      renewBed.server.setCertificate(readFileSync(path.join(dir, 'c')), readFileSync(path.join(dir, 'k')));
      expect(await servedCn(renewBed.server.port)).toBe('renewed');
      expect(await servedCn(nodePort)).toBe('renewed');
      expect(before).not.toBe('renewed');
    } finally {
      await renewBed.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('node ports', () => {
  it('are opened when assigned, serve the node-scoped endpoints of their node, and close on release', async () => {
    const free = await freePort();
    const logged: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(line) });
    const nodeBed = await startKubeletBed({ nodePorts: { from: free, to: free }, log });
    try {
      expect(nodeBed.server.portOf('edge-1')).toBe(nodeBed.server.port); // nothing assigned yet: the shared port
      const port = nodeBed.server.assignPort('edge-1');
      expect(port).toBe(free);
      expect(nodeBed.server.assignPort('edge-1')).toBe(port);
      expect(nodeBed.server.portOf('edge-1')).toBe(port);
      expect(nodeBed.server.assignPort('edge-2')).toBe(nodeBed.server.port); // range exhausted: the shared port
      expect(nodeBed.server.assignPort('edge-2')).toBe(nodeBed.server.port);
      expect(nodeBed.server.portOf('edge-2')).toBe(nodeBed.server.port);
      // Said once per node, not on every assignment.
      expect(logged.filter((l) => l.includes('no free kubelet node port'))).toHaveLength(1);
      nodeBed.streams.summaries.set('edge-1', {
        node: { nodeName: 'edge-1', cpu: { time: '2026-11-23T10:00:00Z', usageCoreNanoSeconds: 1e9 } },
        pods: [],
      });
      const url = (p: string) => get(p, 'admin', port, undefined, nodeBed.pki);
      await new Promise((r) => setTimeout(r, 100)); // the listener opens asynchronously
      expect(JSON.parse((await url('/stats/summary')).body)).toMatchObject({ node: { nodeName: 'edge-1' } });
      expect((await url('/metrics/resource')).body).toMatch(/^node_cpu_usage_seconds_total 1 \d+$/m);
      expect((await get('/metrics/resource', 'user', port, undefined, nodeBed.pki)).status).toBe(403);
      nodeBed.streams.offline.add('edge-1');
      expect((await url('/metrics/resource')).body).toMatch(/^resource_scrape_error 1$/m);
      nodeBed.server.releasePort('edge-1');
      expect(nodeBed.server.portOf('edge-1')).toBe(nodeBed.server.port);
      await expect(url('/healthz')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await nodeBed.stop();
    }
  });
});

describe('upgrade handshakes', () => {
  it.each([
    ['no protocol header', '/exec/default/web/app?command=ls&output=1', SPDY, /400 Bad Request/, /X-Stream-Protocol-Version is required/],
    [
      'an unknown protocol',
      '/exec/default/web/app?command=ls&output=1',
      { ...SPDY, 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' },
      /403 Forbidden[^]*X-Accepted-Stream-Protocol-Versions: v4.channel.k8s.io/,
      /unable to negotiate protocol/,
    ],
    [
      'no command',
      '/exec/default/web/app?output=1',
      { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
      /400 Bad Request/,
      /specify a command/,
    ],
    [
      'no streams',
      '/exec/default/web/app?command=ls',
      { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
      /400 Bad Request/,
      /at least 1 of stdin/,
    ],
    [
      'an unknown pod',
      '/exec/default/nope/app?command=ls&output=1',
      { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
      /404 Not Found/,
      /not found/,
    ],
    [
      'a WebSocket port-forward without ports',
      '/portForward/default/web',
      { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      /400 Bad Request/,
      /query parameter \\"port\\" is required/,
    ],
  ])('refuses %s', async (_what, path, headers, head, body) => {
    const u = await upgrade(path, headers);
    const rest = await new Promise<string>((resolve) => {
      let s = u.rest.toString();
      u.socket.on('data', (c: Buffer) => (s += c.toString()));
      u.socket.on('end', () => resolve(s));
    });
    expect(u.head).toMatch(head);
    expect(rest).toMatch(body);
    u.socket.destroy();
  });

  it('port-forward: a bad port header is reported on the error stream', async () => {
    const u = await upgrade('/portForward/default/web', { ...SPDY, 'X-Stream-Protocol-Version': 'portforward.k8s.io' });
    expect(u.head).toMatch(/101 Switching Protocols[^]*X-Stream-Protocol-Version: portforward.k8s.io/);
    const peer = new SpdyTestPeer(u.socket);
    if (u.rest.length) u.socket.unshift(u.rest);
    await peer.synStream(1, { streamtype: 'error', port: 'http', requestid: '0' });
    await peer.synStream(3, { streamtype: 'data', port: 'http', requestid: '0' });
    expect((await peer.readStream(1)).toString()).toBe("unable to parse 'http' as a port");
    peer.close();
  });

  it('exec: a client that never opens its streams is cut off, and malformed frames end the connection', async () => {
    const idle = await upgrade('/exec/default/web/app?command=echo&output=1', {
      ...SPDY,
      'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
    });
    const idlePeer = new SpdyTestPeer(idle.socket);
    expect(await idlePeer.next((f) => f.type === 'goaway', 3_000)).toMatchObject({ type: 'goaway', status: 0 });
    idlePeer.close();
    const bad = await upgrade('/exec/default/web/app?command=echo&output=1', { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' });
    const badPeer = new SpdyTestPeer(bad.socket);
    badPeer.send(spdy.encode.windowUpdate(1, 0));
    expect(await badPeer.next((f) => f.type === 'goaway')).toMatchObject({ type: 'goaway', status: 1 });
    badPeer.close();
  });
});

describe('hostile paths (issue 20)', () => {
  const V4 = { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' };
  /** The user may `get nodes/stats` and nothing else. */
  const statsOnly = () => {
    const before = bed.kube.allow;
    bed.kube.allow = (u, a) => u.groups.includes('system:masters') || (u.username === 'nobody' && a.resource?.subresource === 'stats');
    return () => (bed.kube.allow = before);
  };
  async function answer(path: string, headers: Record<string, string>, who: Who) {
    const u = await upgrade(path, headers, who);
    u.socket.destroy();
    return u.head.split('\r\n')[0];
  }

  it.each([
    '/stats/../exec/default/web/app?command=id&output=1',
    '/stats/%2e%2e/exec/default/web/app?command=id&output=1',
    '/stats/%2E%2E/exec/default/web/app?command=id&output=1',
    '/stats/./../exec/default/web/app?command=id&output=1',
    '/metrics/..%2fexec/default/web/app?command=id&output=1',
    '/stats%2f..%2fexec/default/web/app?command=id&output=1',
    '/stats/..%5cexec/default/web/app?command=id&output=1',
    '/exec/default/web/./app?command=id&output=1',
    '/exec//default/web/app?command=id&output=1',
    '//stats/../exec/default/web/app?command=id&output=1',
  ])('an upgrade of %s is refused (400), not routed to exec', async (path) => {
    const restore = statsOnly();
    try {
      expect(await answer(path, V4, 'user')).toBe('HTTP/1.1 400 Bad Request');
    } finally {
      restore();
    }
  });

  it.each(['/stats/../containerLogs/default/web/app', '/stats/%2e%2e/pods', '/containerLogs/default/web/%2e%2e', '/pods/.'])(
    'GET %s is refused (400)',
    async (path) => {
      const restore = statsOnly();
      try {
        expect((await get(path, 'user')).status).toBe(400);
      } finally {
        restore();
      }
    },
  );

  it('authenticates before looking anything up: anonymous callers get 401 for pods that exist and pods that do not', async () => {
    for (const pod of ['web', 'nope', 'other']) {
      expect(await answer(`/exec/default/${pod}/app?command=id&output=1`, V4, 'anonymous')).toBe('HTTP/1.1 401 Unauthorized');
      expect((await get(`/containerLogs/default/${pod}/app`, 'anonymous')).status).toBe(401);
    }
    expect((await get('/nothing/here', 'anonymous')).status).toBe(401);
  });

  it('counts refusals by reason', async () => {
    const count = (r: Parameters<typeof bed.server.metrics.rejectedCount>[0]) => bed.server.metrics.rejectedCount(r);
    const before = { path: await count('bad_path'), anon: await count('unauthenticated'), denied: await count('forbidden') };
    await get('/stats/../pods', 'admin');
    await answer('/stats/%2e%2e/exec/default/web/app?command=id&output=1', V4, 'admin');
    await get('/pods', 'anonymous');
    await get('/containerLogs/default/web/app', 'user');
    expect(await count('bad_path')).toBe(before.path + 2);
    expect(await count('unauthenticated')).toBe(before.anon + 1);
    expect(await count('forbidden')).toBe(before.denied + 1);
    const text = await bed.server.metrics.registry.metrics();
    expect(text).toMatch(/^edgefarm_provider_kubelet_requests_rejected_total\{reason="bad_path"\} \d+$/m);
  });
});

describe('session bounds (issue 20)', () => {
  const V4 = { ...SPDY, 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' };
  const closed = (socket: tls.TLSSocket) => new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));

  it('a burst of upgrades passes the cap of concurrent sessions only up to it (429 for the rest), and a slot frees on close', async () => {
    const b = await startKubeletBed({ maxSessions: 2, streamCreationTimeoutMs: 60_000 });
    try {
      // Sessions that stay: the client never opens its streams (the creation timeout is a minute).
      const burst = await Promise.all(
        Array.from({ length: 6 }, () => upgrade('/exec/default/web/app?command=id&output=1', V4, 'admin', b)),
      );
      const lines = burst.map((u) => u.head.split('\r\n')[0]);
      expect(lines.filter((l) => l === 'HTTP/1.1 101 Switching Protocols')).toHaveLength(2);
      expect(lines.filter((l) => l === 'HTTP/1.1 429 Too Many Requests')).toHaveLength(4);
      expect(await b.server.metrics.rejectedCount('too_many_sessions')).toBe(4);
      // Followed logs count too.
      expect((await get('/containerLogs/default/web/app', 'admin', b.server.port, undefined, b.pki)).status).toBe(429);
      const open = burst.filter((u) => u.head.startsWith('HTTP/1.1 101'));
      open[0]!.socket.destroy();
      for (const u of burst) u.socket.destroy();
      await Promise.all(burst.map((u) => closed(u.socket)));
      for (let i = 0; i < 50 && b.server.sessions > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(b.server.sessions).toBe(0);
      const again = await upgrade('/exec/default/web/app?command=id&output=1', V4, 'admin', b);
      expect(again.head).toMatch(/^HTTP\/1.1 101/);
      again.socket.destroy();
    } finally {
      await b.stop();
    }
  }, 30_000);

  it('closes a streaming connection with no byte either way for the idle timeout, SPDY and WebSocket', async () => {
    const b = await startKubeletBed({ streamingIdleTimeoutMs: 300, streamCreationTimeoutMs: 60_000 });
    try {
      const spdyConn = await upgrade('/exec/default/web/app?command=id&output=1', V4, 'admin', b);
      expect(spdyConn.head).toMatch(/^HTTP\/1.1 101/);
      await closed(spdyConn.socket);
      const ws = await upgrade(
        '/exec/default/web/app?command=cat&input=1&output=1',
        {
          Connection: 'Upgrade',
          Upgrade: 'websocket',
          'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Protocol': 'v5.channel.k8s.io',
        },
        'admin',
        b,
      );
      expect(ws.head).toMatch(/^HTTP\/1.1 101/);
      await closed(ws.socket);
      const text = await b.server.metrics.registry.metrics();
      expect(text).toMatch(/^edgefarm_provider_kubelet_sessions_idle_closed_total 2$/m);
      for (let i = 0; i < 50 && b.streams.open.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(b.streams.open.size).toBe(0);
    } finally {
      await b.stop();
    }
  }, 30_000);

  it('refuses a WebSocket port-forward of more ports than the bound (400)', async () => {
    const ports = Array.from({ length: 40 }, (_, i) => `port=${1000 + i}`).join('&');
    const u = await upgrade(`/portForward/default/web?${ports}`, {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    u.socket.destroy();
    expect(u.head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(await bed.server.metrics.rejectedCount('too_many_ports')).toBe(1);
  });

  it('bounds node-scoped requests in flight (429 beyond)', async () => {
    const free = await freePort();
    const b = await startKubeletBed({ nodePorts: { from: free, to: free }, maxStatsRequests: 1 });
    let unblock!: () => void;
    const blocked = new Promise<void>((r) => (unblock = r));
    const real = b.streams.statsSummary.bind(b.streams);
    b.streams.statsSummary = async (node: string) => {
      await blocked;
      return real(node);
    };
    try {
      const port = b.server.assignPort('edge-1');
      await new Promise((r) => setTimeout(r, 100)); // the listener opens asynchronously
      const first = get('/stats/summary', 'admin', port, undefined, b.pki);
      for (let i = 0; i < 50 && b.streams.calls.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await get('/stats/summary', 'admin', port, undefined, b.pki)).status).toBe(429);
      unblock();
      expect((await first).status).toBe(200);
      expect((await get('/stats/summary', 'admin', port, undefined, b.pki)).status).toBe(200);
      expect(await b.server.metrics.rejectedCount('too_many_requests')).toBe(1);
    } finally {
      unblock();
      await b.stop();
    }
  }, 30_000);
});
