/**
 * Jest globalSetup of the e2e project: brings the e2e stack (instance `e2e`, ports 17xxx) up once per run, from a
 * clean state: hack/clean.sh, then hack/up.sh. With EF_E2E_KEEP=1 there is no clean (a kept stack is reused as is),
 * and global-teardown.ts leaves the stack running. Every test file cleans up what it creates, so the files are
 * independent of each other and of their order.
 *
 * Self-contained on purpose: Jest loads global setup through its CommonJS require hook, without the project's
 * moduleNameMapper, so a relative `./stack.js` import would not resolve to stack.ts here. The other way round works:
 * stack.ts (loaded with the mapper) imports runHack from this file. For the same reason EF_E2E_INSTANCE and EF_E2E_KEEP
 * are read here directly; they are declared with the other e2e settings in testing/src/settings.ts (E2E_SETTINGS).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

/**
 * Runs hack/SCRIPT for the e2e instance, streaming its output to stderr; rejects with the tail of its output on
 * failure. stack.ts's `hack()` is this, with the repository root filled in.
 */
export function runHack(root: string, script: string, ...args: string[]): Promise<void> {
  const instance = process.env.EF_E2E_INSTANCE ?? 'e2e';
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [path.join(root, 'hack', script), ...args], {
      env: { ...process.env, EF_INSTANCE: instance },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const keep = (b: Buffer) => {
      process.stderr.write(b);
      tail = (tail + b.toString()).slice(-4000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`hack/${[script, ...args].join(' ')} (EF_INSTANCE=${instance}) exited ${code}:\n${tail}`)),
    );
  });
}

export default async function globalSetup(_global: unknown, project: { rootDir: string }): Promise<void> {
  const keep = process.env.EF_E2E_KEEP === '1';
  const t0 = Date.now();
  process.stderr.write(`\n[e2e] global setup: bringing the e2e stack up${keep ? ' (EF_E2E_KEEP=1: no clean first)' : ''}\n`);
  if (!keep) await runHack(project.rootDir, 'clean.sh');
  await runHack(project.rootDir, 'up.sh');
  process.stderr.write(`[e2e] global setup: stack up in ${Date.now() - t0} ms\n`);
}
