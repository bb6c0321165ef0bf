/**
 * A COMPROMISED SITE for tests: a minimal leafnode-protocol client that holds a node's credentials and sends
 * whatever a test asks. A real site server drops what its leaf user's permissions forbid before sending it; this one
 * does not, so what it achieves is what the hub itself enforces (decision 0008).
 *
 * Speaks INFO, the TLS upgrade, CONNECT (the user JWT and the signature of the server's nonce), PING/PONG,
 * LS+/LS- and LMSG both ways (HMSG from the hub). Records every message, error and interest the hub sends it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { nkeys } from '@nats-io/transport-node';
import { parseCreds } from '@edgefarm/identity';

export interface RawLeafMessage {
  subject: string;
  reply: string;
  headers: string;
  data: string;
}

export interface RawLeafOptions {
  port: number;
  host?: string;
  /** The CA the hub's certificate must chain to; undefined: connect without TLS (refused by a TLS hub). */
  caFile?: string;
  /** Credentials file text (user JWT and seed); undefined: connect without credentials. */
  creds?: string;
  name?: string;
  /** How long to wait for the hub's PONG after CONNECT. Default 5 s. */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RawLeaf {
  readonly messages: RawLeafMessage[] = [];
  readonly errors: string[] = [];
  /** Subjects the hub announced interest in (LS+). */
  readonly interest: string[] = [];
  closed = false;
  private pongs = 0;
  private buf = Buffer.alloc(0);

  private constructor(private readonly sock: net.Socket) {}

  /** Connects and authenticates; resolves once the hub answered a PING or closed the connection (see {@link ok}). */
  static async connect(o: RawLeafOptions): Promise<RawLeaf> {
    const plain = net.connect(o.port, o.host ?? '127.0.0.1');
    const info = await new Promise<{ nonce?: string }>((resolve, reject) => {
      let b = Buffer.alloc(0);
      const onData = (d: Buffer) => {
        b = Buffer.concat([b, d]);
        const i = b.indexOf('\r\n');
        if (i < 0) return;
        plain.off('data', onData);
        const line = b.subarray(0, i).toString();
        if (!line.startsWith('INFO ')) reject(new Error(`expected INFO, got ${line.slice(0, 80)}`));
        else resolve(JSON.parse(line.slice(5)) as { nonce?: string });
      };
      plain.on('data', onData);
      plain.once('error', reject);
    });
    let sock: net.Socket = plain;
    if (o.caFile) {
      const t = tls.connect({ socket: plain, ca: readFileSync(o.caFile), servername: 'localhost' });
      await new Promise<void>((resolve, reject) => {
        t.once('secureConnect', resolve);
        t.once('error', reject);
      });
      sock = t;
    }
    const leaf = new RawLeaf(sock);
    sock.on('data', (d: Buffer) => leaf.onData(d));
    sock.on('close', () => (leaf.closed = true));
    sock.on('error', () => (leaf.closed = true));
    const connect: Record<string, unknown> = { name: o.name ?? 'raw-leaf', hub: false, headers: true, proto: 1, tls_required: !!o.caFile };
    if (o.creds) {
      const { jwt, seed } = parseCreds(o.creds);
      const kp = nkeys.fromSeed(new TextEncoder().encode(seed));
      connect.jwt = jwt;
      connect.sig = Buffer.from(kp.sign(new TextEncoder().encode(info.nonce ?? ''))).toString('base64url');
    }
    leaf.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
    const deadline = Date.now() + (o.timeoutMs ?? 5_000);
    while (!leaf.pongs && !leaf.closed && Date.now() < deadline) await sleep(20);
    return leaf;
  }

  /** Authenticated and still connected. */
  get ok(): boolean {
    return this.pongs > 0 && !this.closed;
  }

  sub(subject: string): void {
    this.write(`LS+ ${subject}\r\n`);
  }

  unsub(subject: string): void {
    this.write(`LS- ${subject}\r\n`);
  }

  pub(subject: string, data = '', reply = ''): void {
    const b = Buffer.from(data);
    this.write(`LMSG ${subject}${reply ? ` ${reply}` : ''} ${b.length}\r\n`);
    if (!this.closed) this.sock.write(Buffer.concat([b, Buffer.from('\r\n')]));
  }

  /** A PING round trip: true when the hub answered (everything sent before has been processed). */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    const before = this.pongs;
    this.write('PING\r\n');
    const deadline = Date.now() + timeoutMs;
    while (this.pongs === before && !this.closed && Date.now() < deadline) await sleep(10);
    return this.pongs > before;
  }

  /** Messages whose subject starts with `prefix`. */
  received(prefix: string): RawLeafMessage[] {
    return this.messages.filter((m) => m.subject.startsWith(prefix));
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }

  private write(s: string): void {
    if (!this.closed) this.sock.write(s);
  }

  private onData(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i < 0) return;
      const line = this.buf.subarray(0, i).toString();
      const op = line.split(' ')[0];
      if (op === 'LMSG' || op === 'HMSG') {
        const t = line.split(' ');
        const total = Number(t[t.length - 1]);
        const hdrLen = op === 'HMSG' ? Number(t[t.length - 2]) : 0;
        if (this.buf.length < i + 2 + total + 2) return;
        const body = this.buf.subarray(i + 2, i + 2 + total);
        this.buf = this.buf.subarray(i + 2 + total + 2);
        const args = t.slice(1, op === 'HMSG' ? -2 : -1);
        const reply = args[1] === '+' ? (args[2] ?? '') : args[1] === '|' ? '' : (args[1] ?? '');
        this.messages.push({
          subject: args[0] ?? '',
          reply,
          headers: body.subarray(0, hdrLen).toString(),
          data: body.subarray(hdrLen).toString(),
        });
        continue;
      }
      this.buf = this.buf.subarray(i + 2);
      if (op === 'PING') this.write('PONG\r\n');
      else if (op === 'PONG') this.pongs++;
      else if (op === '-ERR') this.errors.push(line.slice(5));
      else if (op === 'LS+') this.interest.push(line.slice(4));
    }
  }
}
