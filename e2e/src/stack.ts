/**
 * The e2e suite's handle on a real EdgeFarm stack: it runs the same hack/ scripts a user runs (`make up`), as
 * instance `e2e` (own ports, netns names, state dir), and talks to it with the real kubectl and CRI.
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { criClients, type GrpcLike } from '@edgefarm/proto';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const INSTANCE = process.env.EF_E2E_INSTANCE ?? 'e2e';
const env = { ...process.env, EF_INSTANCE: INSTANCE };

/** Runs a hack/ script, streaming its output to the test log; rejects with the tail of its output on failure. */
export function hack(script: string, ...args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(ROOT, 'hack', script), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (b: Buffer) => {
      process.stderr.write(b);
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hack/${script} ${args.join(' ')} exited ${code}:\n${tail}`))));
  });
}

/** A value from hack/lib.sh for this instance, e.g. layout('ef_site_containerd_sock edge-1'). */
export async function layout(expr: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', `. "${ROOT}/hack/lib.sh"; ${expr}`], { env });
  return stdout.trim();
}

export async function kubeconfig(): Promise<string> {
  return layout('echo "$EF_KUBECONFIG"');
}

export async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env: { ...env, KUBECONFIG: await kubeconfig() }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function kubectlJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
}

/** Polls `check` until it returns a value (not undefined) or the timeout passes; then throws with the last state. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function cri(site: string) {
  return criClients(grpc, await layout(`ef_site_containerd_sock ${site}`), 10_000);
}
