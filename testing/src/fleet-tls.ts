/**
 * The fleet's TLS for tests, made by the product's own script (`hack/pki.sh fleet DIR NAME SANS`): the fleet CA and
 * a serving certificate for the hub (server and client use: hub members dial each other with it).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './containerd.js';

const exec = promisify(execFile);

export interface FleetTls {
  dir: string;
  caFile: string;
  caKeyFile: string;
  certFile: string;
  keyFile: string;
}

/** Runs hack/pki.sh fleet into `dir` (created); `sans` like `IP:127.0.0.1,DNS:localhost`. */
export async function makeFleetTls(dir: string, name = 'hub', sans = 'IP:127.0.0.1,DNS:localhost'): Promise<FleetTls> {
  await exec('bash', [path.join(REPO_ROOT, 'hack/pki.sh'), 'fleet', dir, name, sans], { env: { ...process.env, EF_INSTANCE: 'dev' } });
  return {
    dir,
    caFile: path.join(dir, 'ca.crt'),
    caKeyFile: path.join(dir, 'ca.key'),
    certFile: path.join(dir, `${name}.crt`),
    keyFile: path.join(dir, `${name}.key`),
  };
}
