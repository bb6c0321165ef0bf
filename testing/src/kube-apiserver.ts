/**
 * A real Kubernetes API for one test: etcd and kube-apiserver from the cache (hack/build-binaries.sh) on free
 * 127.0.0.1 ports, a serving certificate from a throwaway openssl CA, static bearer tokens (--token-auth-file: the
 * admin in system:masters, and any identity a test asks for, e.g. a ServiceAccount's name to try an RBAC manifest),
 * client certificates signed by the same CA, Node and RBAC authorization with NodeRestriction admission (a client
 * certificate CN=system:node:<name>, O=system:nodes is scoped as a kubelet), and manifests applied on request.
 * No scheduler: the objects are what a test writes. With `controllerManager`, a kube-controller-manager running only
 * the CSR controllers (approving and signing with the CA), so the CSR API issues client certificates as in the
 * stack. The flags follow hack/controlplane.sh.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { makeCa, makeCert } from './pki.js';
import { GiveUp, freePort, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import { CACHE } from './env.js';

export interface StaticUser {
  user: string;
  groups?: string[];
}

export interface KubeApiServerOptions {
  /** Directory for PKI, etcd data, logs (created). */
  dir: string;
  /** More identities with a bearer token each (kubeConfigFor(user) makes their client). */
  users?: StaticUser[];
  /** Also run kube-controller-manager's csrapproving and csrsigning controllers (signing with the CA). */
  controllerManager?: boolean;
}

export class KubeApiServer {
  private etcd?: ManagedProcess;
  private apiserver?: ManagedProcess;
  private controllerManager?: ManagedProcess;
  private readonly tokens = new Map<string, string>();
  port = 0;
  caFile = '';

  private constructor(readonly options: KubeApiServerOptions) {}

  static async start(options: KubeApiServerOptions): Promise<KubeApiServer> {
    const s = new KubeApiServer(options);
    try {
      await s.init();
    } catch (err) {
      await s.stop();
      throw err;
    }
    return s;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  private async init(): Promise<void> {
    const { dir } = this.options;
    const pki = path.join(dir, 'pki');
    await mkdir(pki, { recursive: true });
    const ca = await makeCa(pki, 'ca', 'kube test CA');
    this.caFile = ca.cert;
    const serving = await makeCert(pki, ca, 'apiserver', { cn: 'kube-apiserver', sans: 'IP:127.0.0.1,DNS:localhost' });
    const sa = await makeCert(pki, ca, 'sa', { usage: 'client' });
    const users: StaticUser[] = [{ user: 'test-admin', groups: ['system:masters'] }, ...(this.options.users ?? [])];
    const lines = users.map((u, i) => {
      const token = randomBytes(24).toString('hex');
      this.tokens.set(u.user, token);
      return `${token},${u.user},uid-${i},"${(u.groups ?? []).join(',')}"`;
    });
    const tokenFile = path.join(pki, 'tokens.csv');
    await writeFile(tokenFile, lines.join('\n') + '\n', { mode: 0o600 });

    const [etcdPort, peerPort, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
    this.port = apiPort;
    this.etcd = spawnLogged(
      'etcd',
      path.join(CACHE.bin, 'etcd'),
      [
        '--name',
        'test',
        '--data-dir',
        path.join(dir, 'etcd'),
        '--listen-client-urls',
        `http://127.0.0.1:${etcdPort}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${etcdPort}`,
        '--listen-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${peerPort}`,
        '--initial-cluster',
        `test=http://127.0.0.1:${peerPort}`,
        '--unsafe-no-fsync',
        '--log-level',
        'warn',
      ],
      { logFile: path.join(dir, 'etcd.log') },
    );
    await waitFor(
      'etcd /health',
      async () => {
        if (!this.etcd!.alive()) throw new GiveUp(`etcd exited: ${this.etcd!.tail(10)}`);
        return (await fetch(`http://127.0.0.1:${etcdPort}/health`)).ok;
      },
      30_000,
      100,
    );
    this.apiserver = spawnLogged(
      'kube-apiserver',
      path.join(CACHE.bin, 'kube-apiserver'),
      [
        '--etcd-servers',
        `http://127.0.0.1:${etcdPort}`,
        '--bind-address',
        '127.0.0.1',
        '--advertise-address',
        '127.0.0.1',
        '--endpoint-reconciler-type',
        'none',
        '--secure-port',
        String(apiPort),
        '--tls-cert-file',
        serving.cert,
        '--tls-private-key-file',
        serving.key,
        '--token-auth-file',
        tokenFile,
        '--client-ca-file',
        ca.cert,
        '--authorization-mode',
        'Node,RBAC',
        '--enable-admission-plugins',
        'NodeRestriction',
        '--service-cluster-ip-range',
        '10.96.0.0/24',
        '--service-account-issuer',
        'https://kubernetes.default.svc.cluster.local',
        '--service-account-key-file',
        sa.key,
        '--service-account-signing-key-file',
        sa.key,
        '--profiling=false',
      ],
      { logFile: path.join(dir, 'kube-apiserver.log') },
    );
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (!this.apiserver!.alive()) throw new GiveUp(`kube-apiserver exited: ${this.apiserver!.tail(10)}`);
        return (await this.get('/readyz')) === 200;
      },
      90_000,
      250,
    );
    if (this.options.controllerManager) await this.startControllerManager(ca.cert, ca.key);
  }

  private async startControllerManager(caCert: string, caKey: string): Promise<void> {
    const { dir } = this.options;
    const kubeconfig = await this.writeKubeconfig(path.join(dir, 'controller-manager.kubeconfig'));
    const port = await freePort();
    this.controllerManager = spawnLogged(
      'kube-controller-manager',
      path.join(CACHE.bin, 'kube-controller-manager'),
      [
        '--kubeconfig',
        kubeconfig,
        '--authentication-kubeconfig',
        kubeconfig,
        '--authorization-kubeconfig',
        kubeconfig,
        '--cluster-signing-cert-file',
        caCert,
        '--cluster-signing-key-file',
        caKey,
        '--controllers',
        'csrapproving,csrsigning',
        '--leader-elect=false',
        '--bind-address',
        '127.0.0.1',
        '--secure-port',
        String(port),
        '--profiling=false',
      ],
      { logFile: path.join(dir, 'kube-controller-manager.log') },
    );
    await waitFor(
      'kube-controller-manager /healthz',
      async () => {
        if (!this.controllerManager!.alive()) throw new GiveUp(`kube-controller-manager exited: ${this.controllerManager!.tail(10)}`);
        return (await this.healthz(port)) === 200;
      },
      60_000,
      250,
    );
  }

  private healthz(port: number): Promise<number> {
    return new Promise((resolve) => {
      const req = request(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.end();
    });
  }

  private async get(p: string, user = 'test-admin'): Promise<number> {
    const ca = await readFile(this.caFile);
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.url}${p}`,
        { ca, headers: { authorization: `Bearer ${this.tokens.get(user)}` }, timeout: 5000 },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  /** A client as `user` (default: the admin). */
  kubeConfigFor(user = 'test-admin'): k8s.KubeConfig {
    const token = this.tokens.get(user);
    if (!token) throw new Error(`no static user ${user}`);
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: this.url, caFile: this.caFile }],
      users: [{ name: user, token }],
      contexts: [{ name: 'test', cluster: 'test', user }],
      currentContext: 'test',
    });
    return kc;
  }

  /** A client authenticating with a client certificate (PEM) signed by the cluster's CA, e.g. one the CSR API issued. */
  kubeConfigWithCert(name: string, certPem: string, keyPem: string): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'test', server: this.url, caFile: this.caFile }],
      users: [{ name, certData: Buffer.from(certPem).toString('base64'), keyData: Buffer.from(keyPem).toString('base64') }],
      contexts: [{ name: 'test', cluster: 'test', user: name }],
      currentContext: 'test',
    });
    return kc;
  }

  /** A kubeconfig file for `user`, for a process or a command line. */
  async writeKubeconfig(file: string, user = 'test-admin'): Promise<string> {
    await writeFile(file, this.kubeConfigFor(user).exportConfig(), { mode: 0o600 });
    return file;
  }

  /**
   * Creates every object of the YAML files (as the admin; existing ones are left as they are), then waits until the
   * API serves each CustomResourceDefinition's resource.
   */
  async apply(...files: string[]): Promise<void> {
    const client = k8s.KubernetesObjectApi.makeApiClient(this.kubeConfigFor());
    const crds: string[] = [];
    for (const file of files) {
      for (const obj of k8s.loadAllYaml(await readFile(file, 'utf8')) as k8s.KubernetesObject[]) {
        if (!obj?.kind) continue;
        try {
          await client.create(obj);
        } catch (err) {
          if ((err as { code?: number }).code !== 409) throw err;
        }
        if (obj.kind === 'CustomResourceDefinition') {
          const spec = (obj as unknown as { spec: { group: string; names: { plural: string }; versions: { name: string }[] } }).spec;
          crds.push(`/apis/${spec.group}/${spec.versions[0]!.name}/${spec.names.plural}`);
        }
      }
    }
    for (const p of crds) await waitFor(`${p} served`, async () => (await this.get(p)) === 200, 30_000, 200);
  }

  async stop(): Promise<void> {
    await this.controllerManager?.stop().catch(() => undefined);
    await this.apiserver?.stop().catch(() => undefined);
    await this.etcd?.stop().catch(() => undefined);
  }
}
