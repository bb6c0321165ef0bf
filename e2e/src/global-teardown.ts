/**
 * Jest globalTeardown of the e2e project: removes the e2e stack (hack/clean.sh) unless EF_E2E_KEEP=1.
 * Self-contained for the same reason as global-setup.ts (which says where EF_E2E_INSTANCE and EF_E2E_KEEP are declared).
 */
import { spawn } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import path from 'node:path';

export default async function globalTeardown(_global: unknown, project: { rootDir: string }): Promise<void> {
  if (process.env.EF_E2E_KEEP === '1') {
    const instance = process.env.EF_E2E_INSTANCE ?? 'e2e';
    process.stderr.write(`\n[e2e] EF_E2E_KEEP=1: the e2e stack stays up (hack/clean.sh with EF_INSTANCE=${instance} removes it)\n`);
    return;
  }
  const env = { ...process.env, EF_INSTANCE: process.env.EF_E2E_INSTANCE ?? 'e2e' };
  // The stack's logs and the fault suite's results outlive the clean, for a look after a failure (replaced each run).
  const state = path.join(project.rootDir, '.local', env.EF_INSTANCE);
  const kept = path.join(project.rootDir, '.local', `last-run-${env.EF_INSTANCE}`);
  await rm(kept, { recursive: true, force: true });
  for (const part of ['logs', 'fault-results.jsonl']) {
    await cp(path.join(state, part), path.join(kept, part), { recursive: true }).catch(() => undefined);
  }
  process.stderr.write(`[e2e] logs of this run kept in ${kept}\n`);
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('bash', [path.join(project.rootDir, 'hack', 'clean.sh')], { env, stdio: ['ignore', 2, 2] });
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`hack/clean.sh (EF_INSTANCE=${env.EF_INSTANCE}) exited ${code}`);
}
