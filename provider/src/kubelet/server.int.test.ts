/**
 * The kubelet API against real Kubernetes client code: client-go's SPDY remotecommand executor and SPDY
 * port-forward dialer (what the apiserver runs toward a kubelet) and its WebSocket v5 executor (what kubectl runs),
 * built from the Go module proxy into a small program (provider/testdata/kubelet-client), talking to the
 * KubeletServer over TLS with an apiserver-like client certificate; behind it the fake EdgeStreams.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { CACHE } from '@edgefarm/testing';
import { startKubeletBed, type KubeletBed } from './testing.js';

const SRC = path.resolve(import.meta.dirname ?? '.', '../../testdata/kubelet-client');
/** The built client, cached outside the repository under a hash of its sources, so a changed source is rebuilt. */
const BIN = path.join(
  CACHE.root,
  `kubelet-client-${createHash('sha256')
    .update(['main.go', 'go.mod', 'go.sum'].map((f) => readFileSync(path.join(SRC, f), 'utf8')).join('\0'))
    .digest('hex')
    .slice(0, 12)}`,
);

let bed: KubeletBed;

beforeAll(async () => {
  if (!existsSync(BIN)) {
    execFileSync('go', ['build', '-o', BIN, '.'], {
      cwd: SRC,
      stdio: 'inherit',
      env: { ...process.env, PATH: `/usr/local/go/bin:${process.env.PATH}`, GOFLAGS: '-mod=mod' },
    });
  }
  bed = await startKubeletBed();
}, 900_000);

afterAll(async () => {
  await bed?.stop();
});

interface Run {
  code: number;
  stdout: Buffer;
  stderr: string;
}

function client(args: string[], input: Buffer | string = '', env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { ...process.env, KC_CERT: bed.pki.adminCert, KC_KEY: bed.pki.adminKey, ...env } });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

const execUrl = (query: string, kind = 'exec', pod = 'web') => `${bed.url}/${kind}/default/${pod}/app?${query}`;

describe.each(['exec', 'ws-exec'])('%s with client-go', (mode) => {
  it('runs a command and returns its output', async () => {
    const r = await client([mode, execUrl('command=echo&command=hello&command=world&output=1&error=1')]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('hello world\n');
  });

  it('passes stdin through and closes it at EOF', async () => {
    const input = Buffer.alloc(3 * 1024 * 1024 + 17, 'a');
    const r = await client([mode, execUrl('command=cat&input=1&output=1&error=1')], input);
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBe(input.length);
  });

  it('reports a non-zero exit code', async () => {
    const r = await client([mode, execUrl('command=exit&command=3&output=1')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('exit code 3');
  });

  it('carries stderr separately', async () => {
    const r = await client([mode, execUrl('command=stderr&command=oops&output=1&error=1')]);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr).toBe('oops');
  });

  it('delivers terminal resizes with a tty', async () => {
    const r = await client([mode, execUrl('command=sizes&input=1&output=1&tty=1')], '', { KC_TTY: '1', KC_RESIZE: '80x24,132x50' });
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toContain('80x24\n');
    expect(r.stdout.toString()).toContain('132x50\n');
  });

  it('attaches', async () => {
    const r = await client([mode, execUrl('input=1&output=1', 'attach')], 'typed\n');
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe('typed\n');
  });

  it('reports an offline node as the error of the session', async () => {
    bed.streams.offline.add('edge-1');
    try {
      const r = await client([mode, execUrl('command=echo&command=x&output=1')]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('edge node edge-1 is disconnected');
    } finally {
      bed.streams.offline.delete('edge-1');
    }
  });

  it('answers 404 for a pod this replica does not serve', async () => {
    const r = await client([mode, execUrl('command=echo&output=1', 'exec', 'other')]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/not found|404/);
  });

  it('refuses a client without rights (403) and one without credentials (401)', async () => {
    const denied = await client([mode, execUrl('command=echo&output=1')], '', { KC_CERT: bed.pki.userCert, KC_KEY: bed.pki.userKey });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toMatch(/403|Forbidden|forbidden/);
    const anon = await client([mode, execUrl('command=echo&output=1')], '', { KC_CERT: '', KC_KEY: '' });
    expect(anon.code).not.toBe(0);
    expect(anon.stderr).toMatch(/401|Unauthorized|unauthorized/);
  });
});

describe('portforward with client-go', () => {
  it('tunnels a connection both ways', async () => {
    const r = await client(['portforward', `${bed.url}/portForward/default/web`, '80'], 'ping over the tunnel');
    expect(r.stdout.toString()).toBe('ping over the tunnel');
  });

  it('serves an HTTP request through the tunnel', async () => {
    const r = await client(['portforward', `${bed.url}/portForward/default/web`, '81'], 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(r.stdout.toString()).toContain('hello');
  });

  it('reports a failed forward on the error stream', async () => {
    bed.streams.offline.add('edge-1');
    try {
      const r = await client(['portforward', `${bed.url}/portForward/default/web`, '80'], 'x');
      expect(r.stderr).toContain('edge node edge-1 is disconnected');
    } finally {
      bed.streams.offline.delete('edge-1');
    }
  });
});

describe('leaks', () => {
  it('leaves no session open', async () => {
    await new Promise((r) => setTimeout(r, 200));
    expect(bed.streams.open.size).toBe(0);
  });
});
