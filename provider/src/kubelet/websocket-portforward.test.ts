/**
 * port-forward over WebSocket against the KubeletServer over real TLS on loopback, with a real `ws` client and the
 * fake EdgeStreams (any port echoes; port 81 answers one HTTP request; refusedPorts fail).
 */
import { readFileSync } from 'node:fs';
import { WebSocket } from 'ws';
import { startKubeletBed, type KubeletBed } from './testing.js';

let bed: KubeletBed;

beforeAll(async () => {
  bed = await startKubeletBed();
});
afterAll(async () => {
  await bed?.stop();
});
afterEach(async () => {
  await until(() => bed.streams.open.size === 0);
  bed.streams.refusedPorts.clear();
});

async function until(ok: () => boolean, ms = 2_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A connected client that keeps every message, for `next` to take in order. */
class Client {
  private readonly got: { data: Buffer; binary: boolean }[] = [];
  private wake?: () => void;
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, binary) => {
      this.got.push({ data, binary });
      this.wake?.();
    });
    this.closed = new Promise((r) => ws.once('close', (code) => r(code)));
  }

  async next(ms = 2_000): Promise<{ channel: number; data: Buffer; binary: boolean }> {
    const end = Date.now() + ms;
    while (this.got.length === 0) {
      if (Date.now() > end) throw new Error('no message');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 20);
      });
    }
    const m = this.got.shift()!;
    return { channel: m.data[0]!, data: m.data.subarray(1), binary: m.binary };
  }

  /** Reads channel `channel` until `bytes` arrived (messages of other channels are kept out of the result). */
  async read(channel: number, bytes: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let n = 0;
    while (n < bytes) {
      const m = await this.next();
      if (m.channel !== channel) continue;
      parts.push(m.data);
      n += m.data.length;
    }
    return Buffer.concat(parts);
  }

  send(channel: number, data: string | Buffer): void {
    this.ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(data)]));
  }
}

const TLS = () => ({ cert: readFileSync(bed.pki.adminCert), key: readFileSync(bed.pki.adminKey), rejectUnauthorized: false });
const url = (query: string) => `wss://127.0.0.1:${bed.server.port}/portForward/default/web?${query}`;

async function connect(query: string, protocols: string[] = ['v4.channel.k8s.io']): Promise<Client> {
  const ws = new WebSocket(url(query), protocols, TLS());
  const client = new Client(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

/** The answer to an upgrade the server refuses. */
function refused(query: string, protocols: string[] = ['v4.channel.k8s.io']): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url(query), protocols, TLS());
    ws.once('open', () => reject(new Error('upgraded')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
  });
}

const le = (port: number) => Buffer.from([port & 0xff, port >> 8]);

describe('port-forward over WebSocket', () => {
  it('announces the port on both channels, then echoes through the data channel', async () => {
    const c = await connect('port=8080');
    expect(c.ws.protocol).toBe('v4.channel.k8s.io');
    expect(await c.next()).toMatchObject({ channel: 0, data: le(8080), binary: true });
    expect(await c.next()).toMatchObject({ channel: 1, data: le(8080) });
    c.send(0, 'hello');
    expect((await c.read(0, 5)).toString()).toBe('hello');
    expect(bed.streams.calls.at(-1)).toMatchObject({
      method: 'portForward',
      ref: { node: 'edge-1', namespace: 'default', pod: 'web' },
      args: 8080,
    });
    c.ws.close();
    await c.closed;
  });

  it('forwards two ports on one connection, each on its own channel pair', async () => {
    const c = await connect('port=80&port=8080');
    const announced = [await c.next(), await c.next(), await c.next(), await c.next()];
    expect(announced.map((m) => [m.channel, m.data.readUInt16LE()])).toEqual([
      [0, 80],
      [1, 80],
      [2, 8080],
      [3, 8080],
    ]);
    await until(() => bed.streams.open.size === 2);
    c.send(2, 'to 8080');
    c.send(0, 'to 80');
    const got = new Map<number, string>();
    while (got.size < 2) {
      const m = await c.next();
      got.set(m.channel, (got.get(m.channel) ?? '') + m.data.toString());
    }
    expect(Object.fromEntries(got)).toEqual({ 0: 'to 80', 2: 'to 8080' });
    c.ws.close();
    await c.closed;
  });

  it('stops reading the socket while the edge takes nothing, and resumes when it does', async () => {
    let release!: () => void;
    bed.streams.heldPorts.set(9000, new Promise<void>((r) => (release = r)));
    const c = await connect('port=9000');
    await c.next();
    await c.next();
    // More than the kernel's loopback buffers and the server's window together: without the pause the server would
    // read it all and the client's buffer would drain.
    const payload = Buffer.alloc(24 * 1024 * 1024, 'z');
    for (let off = 0; off < payload.length; off += 64 * 1024) c.send(0, payload.subarray(off, off + 64 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    expect(c.ws.bufferedAmount).toBeGreaterThan(0);
    release();
    bed.streams.heldPorts.clear();
    expect((await c.read(0, payload.length)).equals(payload)).toBe(true);
    c.ws.close();
    await c.closed;
  });

  it('closes the WebSocket once the pod side ended (port 81 answers one HTTP request)', async () => {
    const c = await connect('port=81');
    await c.next();
    await c.next();
    c.send(0, 'GET / HTTP/1.1\r\nHost: web\r\n\r\n');
    const answer = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello';
    expect((await c.read(0, answer.length)).toString()).toBe(answer);
    expect(await c.closed).toBe(1000);
  });

  it('writes a refused port as text on its error channel; the other port still works', async () => {
    bed.streams.refusedPorts.add(5432);
    const c = await connect('port=5432,80');
    for (let i = 0; i < 4; i++) await c.next();
    const err = await c.next();
    expect(err.channel).toBe(1);
    expect(err.data.toString()).toBe('error forwarding port 5432 to pod default/web: dial tcp 127.0.0.1:5432: connect: connection refused');
    c.send(0, 'dropped: no connection behind port 5432');
    c.send(2, 'still here');
    expect((await c.read(2, 10)).toString()).toBe('still here');
    c.ws.close();
    await c.closed;
  });

  it('ends every edge connection when the client goes away', async () => {
    const c = await connect('port=80&port=81&port=82');
    for (let i = 0; i < 6; i++) await c.next();
    await until(() => bed.streams.open.size === 3);
    c.ws.terminate();
    await until(() => bed.streams.open.size === 0);
  });

  it('speaks v4.base64.channel.k8s.io: text messages, the channel as a digit, base64 data', async () => {
    const c = await connect('port=80', ['v4.base64.channel.k8s.io', 'v4.channel.k8s.io']);
    expect(c.ws.protocol).toBe('v4.base64.channel.k8s.io');
    const first = await c.next();
    expect(first.binary).toBe(false);
    expect(Buffer.concat([Buffer.from([first.channel]), first.data]).toString()).toBe(`0${le(80).toString('base64')}`);
    await c.next();
    c.ws.send(`0${Buffer.from('hi there').toString('base64')}`);
    const echo = await c.next();
    expect(String.fromCharCode(echo.channel)).toBe('0');
    expect(Buffer.from(echo.data.toString(), 'base64').toString()).toBe('hi there');
    c.ws.close();
    await c.closed;
  });

  it('takes no subprotocol as binary (as wsstream does)', async () => {
    const c = await connect('port=80', []);
    expect(c.ws.protocol).toBe('');
    expect(await c.next()).toMatchObject({ channel: 0, data: le(80), binary: true });
    c.ws.close();
    await c.closed;
  });

  it.each([
    ['', 400, /query parameter \\"port\\" is required/],
    ['port=', 400, /query parameter \\"port\\" cannot be empty/],
    ['port=0', 400, /port 0 is out of range/],
    ['port=65536', 400, /port 65536 is out of range/],
    ['port=http', 400, /unable to parse 'http' as a port/],
  ])('refuses ?%s before the upgrade', async (query, status, message) => {
    const before = bed.streams.calls.length;
    const r = await refused(query);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body)).toMatchObject({ kind: 'Status', code: status });
    expect(r.body).toMatch(message);
    expect(bed.streams.calls.length).toBe(before);
  });

  it('refuses subprotocols it does not speak', async () => {
    const r = await refused('port=80', ['portforward.k8s.io']);
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).message).toBe(
      'unable to negotiate protocol: client offered portforward.k8s.io; port-forward supports v4.channel.k8s.io, v4.base64.channel.k8s.io',
    );
  });
});
