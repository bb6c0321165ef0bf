/**
 * A real OCI registry (Debian's docker-registry, distribution 2.8) for one test, on 127.0.0.1 and a free port, with
 * its storage in a directory of its own and optional basic auth (htpasswd, bcrypt). Configured, pushed to and
 * trusted through hack/registry.sh (config, htpasswd, push with skopeo, hosts.toml for containerd), served by a
 * child process stopped by its PID. Its access log tells which manifests were fetched (pull observation).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { IMAGES_DIR, REPO_ROOT, ensureImages } from './containerd.js';
import { GiveUp, freePort, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import { TEST } from './env.js';

const exec = promisify(execFile);
const SCRIPT = path.join(REPO_ROOT, 'hack/registry.sh');

export interface RegistryOptions {
  /** Directory for config, storage, htpasswd and log (created; removed by stop()). */
  dir: string;
  /** Basic auth: pushes and pulls need these credentials. */
  auth?: { username: string; password: string };
}

export class TestRegistry {
  process: ManagedProcess | undefined;
  port = 0;

  private constructor(readonly options: RegistryOptions) {}

  /** HOST:PORT, the prefix of image names in this registry. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }
  get logFile(): string {
    return path.join(this.options.dir, 'registry.log');
  }

  static async start(options: RegistryOptions): Promise<TestRegistry> {
    const r = new TestRegistry(options);
    try {
      await r.init();
    } catch (err) {
      await r.stop();
      throw err;
    }
    return r;
  }

  private async init(): Promise<void> {
    const { dir, auth } = this.options;
    const htpasswd = auth ? path.join(dir, 'htpasswd') : '';
    if (auth) await exec('bash', [SCRIPT, 'htpasswd', htpasswd, auth.username, auth.password]);
    const config = path.join(dir, 'config.yml');
    this.port = await freePort();
    await exec('bash', [
      SCRIPT,
      'config',
      config,
      '127.0.0.1',
      String(this.port),
      path.join(dir, 'storage'),
      ...(htpasswd ? [htpasswd] : []),
    ]);
    this.process = spawnLogged('docker-registry', 'docker-registry', ['serve', config], { logFile: this.logFile });
    await waitFor(
      `registry on ${this.host}`,
      async () => {
        if (!this.process?.alive()) throw new GiveUp(`docker-registry exited: ${this.process?.tail(20)}`);
        const res = await fetch(`http://${this.host}/v2/`, { signal: AbortSignal.timeout(1000) });
        return res.status === 200 || res.status === 401;
      },
      15_000,
      50,
    );
  }

  /**
   * Pushes an image of hack/images.sh (default the busybox one, docker.io/edgefarm/busybox:1.35) as `repoTag`
   * (e.g. `test/bb:1`); returns the full name to pull (`127.0.0.1:PORT/test/bb:1`).
   */
  async push(repoTag: string, source: { archive?: string; ref?: string } = {}): Promise<string> {
    await ensureImages();
    const archive = source.archive ?? path.join(IMAGES_DIR, 'busybox.tar');
    const ref = source.ref ?? 'docker.io/edgefarm/busybox:1.35';
    const dest = `${this.host}/${repoTag}`;
    const auth = this.options.auth;
    await exec('bash', [SCRIPT, 'push', archive, ref, dest, ...(auth ? [`${auth.username}:${auth.password}`] : [])]);
    return dest;
  }

  /**
   * Pushes the busybox image with its config changed (a label `edgefarm.io/variant=<variant>`) as `repoTag`: the
   * same layer, another image id, so a test can tell images apart (e.g. the image GC's removal by id).
   */
  async pushVariant(repoTag: string, variant: string): Promise<string> {
    await ensureImages();
    const layout = path.join(this.options.dir, `variant-${variant}`);
    await rm(layout, { recursive: true, force: true });
    await mkdir(layout, { recursive: true });
    await exec('tar', ['-xf', path.join(IMAGES_DIR, 'busybox.tar'), '-C', layout]);
    const blob = (digest: string): string => path.join(layout, 'blobs/sha256', digest.replace(/^sha256:/, ''));
    const put = async (data: string): Promise<{ digest: string; size: number }> => {
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      await writeFile(blob(digest), data);
      return { digest, size: Buffer.byteLength(data) };
    };
    type Desc = { mediaType: string; digest: string; size: number; annotations?: Record<string, string> };
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Desc[] };
    const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { config: Desc };
    const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as { config: { Labels?: Record<string, string> } };
    config.config.Labels = { ...config.config.Labels, 'edgefarm.io/variant': variant };
    manifest.config = { ...manifest.config, ...(await put(JSON.stringify(config))) };
    const m = await put(JSON.stringify(manifest));
    const tag = repoTag.slice(repoTag.lastIndexOf(':') + 1);
    const entry: Desc = { ...index.manifests[0]!, ...m, annotations: { 'org.opencontainers.image.ref.name': tag } };
    await writeFile(path.join(layout, 'index.json'), JSON.stringify({ ...index, manifests: [entry] }));
    return this.push(repoTag, { archive: layout, ref: `variant:${tag}` });
  }

  /** Tells a containerd (its registry config_path) that this registry speaks plain HTTP. */
  async trustIn(registryConfigDir: string): Promise<void> {
    await exec('bash', [SCRIPT, 'hosts', registryConfigDir, this.host]);
  }

  /** Manifest requests (GET or HEAD) for a repository that the registry answered with `status` (default 200). */
  async manifestRequests(repo: string, status = 200): Promise<number> {
    const log = await readFile(this.logFile, 'utf8').catch(() => '');
    const re = new RegExp(`"(GET|HEAD) /v2/${repo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/manifests/[^ ]+ HTTP/[0-9.]+" ${status} `);
    return log.split('\n').filter((l) => re.test(l)).length;
  }

  async stop(): Promise<void> {
    await this.process?.stop(10_000);
    if (!TEST.keep) await rm(this.options.dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
