/**
 * A throwaway containerd for integration tests: configured by hack/containerd-config.sh (own root, state, socket,
 * CNI conflist with a bridge named for this instance), images from hack/images.sh imported with ctr, running in the
 * host network namespace. stop() removes every sandbox it holds (so the shims exit), stops containerd by PID,
 * unmounts what is left under its directories, deletes the bridge, and removes the directories.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { criClients, type ImageServiceClient, type RuntimeServiceClient } from '@edgefarm/cri';
import { GiveUp, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import { CACHE } from './env.js';

const exec = promisify(execFile);

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
/** Where hack/images.sh writes the image archives. */
export const IMAGES_DIR = CACHE.images;

export interface ContainerdOptions {
  /** Directory for config, root, CNI files (created). Any length. */
  dir: string;
  /** Short directory for the socket and state (unix sockets: < 108 bytes), e.g. /run/edgefarm/int-<pid>/c1. */
  runDir: string;
  podCidr: string;
  /** Bridge name (max 15 chars); unique per instance in the host network namespace. */
  bridge: string;
  /** Image tarballs to import (default: every *.tar from hack/images.sh). */
  images?: string[];
}

/** Builds the images (hack/images.sh skips when up to date) and returns the tarballs. */
export async function ensureImages(): Promise<string[]> {
  await exec('bash', [path.join(REPO_ROOT, 'hack/images.sh')], { maxBuffer: 16 * 1024 * 1024 });
  return ['pause.tar', 'busybox.tar'].map((f) => path.join(IMAGES_DIR, f));
}

export class Containerd {
  process: ManagedProcess | undefined;
  runtime!: RuntimeServiceClient;
  image!: ImageServiceClient;

  private constructor(readonly options: ContainerdOptions) {}

  get socket(): string {
    return path.join(this.options.runDir, 'containerd.sock');
  }
  get stateDir(): string {
    return path.join(this.options.runDir, 'state');
  }
  /** containerd's registry config_path (hack/containerd-config.sh): one HOST:PORT/hosts.toml per registry. */
  get registryConfigDir(): string {
    return path.join(this.options.dir, 'certs.d');
  }

  static async start(options: ContainerdOptions): Promise<Containerd> {
    const c = new Containerd(options);
    try {
      await c.init();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private async init(): Promise<void> {
    const { dir, runDir, podCidr, bridge } = this.options;
    await mkdir(dir, { recursive: true });
    await mkdir(runDir, { recursive: true });
    const script = path.join(REPO_ROOT, 'hack/containerd-config.sh');
    if (!existsSync(script)) throw new Error(`${script} is missing`);
    await exec('bash', [script, dir, this.socket, podCidr]);
    const conflist = path.join(dir, 'cni/net.d/10-edgefarm.conflist');
    await writeFile(conflist, (await readFile(conflist, 'utf8')).replace('"efbr0"', JSON.stringify(bridge)));

    this.process = spawnLogged('containerd', 'containerd', ['--config', path.join(dir, 'config.toml')], {
      logFile: path.join(dir, 'containerd.log'),
    });
    const clients = criClients(this.socket, 30_000);
    this.runtime = clients.runtime;
    this.image = clients.image;
    await waitFor(
      'containerd CRI',
      async () => {
        if (!this.process?.alive()) throw new GiveUp(`containerd exited: ${this.process?.tail(20)}`);
        await this.runtime.version({ version: 'v1' }, { deadlineMs: 1000 });
        return true;
      },
      30_000,
      100,
    );
    const tarballs = this.options.images ?? (await ensureImages());
    for (const t of tarballs) {
      await exec('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', t], { maxBuffer: 16 * 1024 * 1024 });
    }
  }

  /** Removes every pod sandbox (and so every container) this containerd holds. */
  async removeAllPods(): Promise<void> {
    const res = await this.runtime.listPodSandbox({});
    for (const s of res.items) {
      await this.runtime.stopPodSandbox({ podSandboxId: s.id }).catch(() => undefined);
      await this.runtime.removePodSandbox({ podSandboxId: s.id }).catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.process?.alive()) await this.removeAllPods().catch(() => undefined);
    this.runtime?.close();
    this.image?.close();
    await this.process?.stop(15_000);
    await this.killLeftoverShims();
    await unmountUnder([this.options.dir, this.options.runDir]);
    await exec('ip', ['link', 'del', this.options.bridge]).catch(() => undefined);
    await rm(this.options.dir, { recursive: true, force: true }).catch(() => undefined);
    await rm(this.options.runDir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** Shims of this instance are found by their -address argument (our socket), and stopped by PID. */
  private async killLeftoverShims(): Promise<void> {
    const { stdout } = await exec('ps', ['-eo', 'pid=,args=']).catch(() => ({ stdout: '' }));
    for (const line of stdout.split('\n')) {
      const m = /^\s*(\d+)\s+(.*)$/.exec(line);
      if (m && m[2]!.includes('containerd-shim') && m[2]!.includes(`-address ${this.socket}`)) {
        try {
          process.kill(Number(m[1]), 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }
}

/** Lazily unmounts every mount point under the given directories, deepest first. */
export async function unmountUnder(dirs: string[]): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => dirs.some((d) => p === d || p.startsWith(d.endsWith('/') ? d : `${d}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await exec('umount', ['-l', p]).catch(() => undefined);
}
