/**
 * The int tests' fleet: a real kube-apiserver (+etcd) with manifests/crds and the registrar's RBAC from manifests/base,
 * an openssl-made fleet CA, the fleet ConfigMap, and a real registrar over TLS running as its ServiceAccount; the
 * `edgefarm` command run in-process against them as the admin. Used by join.int.test.ts and status.int.test.ts.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createAccount } from '@nats-io/nkeys';
import { pino } from 'pino';
import { FLEET_NAMESPACE, Registrar, RegistrarMetrics, RegistrarServer, RealRegistrarKube } from '@edgefarm/registrar';
import { mintNodeUser } from '@edgefarm/identity';
import { KubeApiServer, TEST, freePort, makeCa, makeCert, type TestCert } from '@edgefarm/testing';
import { RealCliKube } from './kube.js';
import { run } from './program.js';
import type { SiteProbe } from './probe.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REGISTRAR_USER = 'system:serviceaccount:edgefarm-system:edgefarm-registrar';

export interface Outcome {
  code: number;
  out: string;
  err: string;
}

export interface RegistrarBed {
  dir: string;
  api: KubeApiServer;
  metrics: RegistrarMetrics;
  registrarUrl: string;
  caPem: string;
  ca: TestCert;
  hubLeafUrls: string[];
  /** The admin's client. */
  admin: k8s.KubeConfig;
  /** `edgefarm ARGS` as the admin, output captured. */
  cli(args: string[], now?: () => number, probe?: SiteProbe): Promise<Outcome>;
  /** A join token for `node` (edgefarm token create). */
  token(node: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the bed in a fresh temporary directory named after `prefix`; `hubLeafUrls` go into joins and the ConfigMap. */
export async function startRegistrarBed(prefix: string, hubLeafUrls = ['tls://127.0.0.1:7422']): Promise<RegistrarBed> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const api = await KubeApiServer.start({
    dir: path.join(dir, 'kube'),
    users: [{ user: REGISTRAR_USER, groups: ['system:serviceaccounts', 'system:serviceaccounts:edgefarm-system'] }],
  });
  let server: RegistrarServer | undefined;
  try {
    await api.apply(
      ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/registrar-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
    );
    const admin = api.kubeConfigFor();
    const ca = await makeCa(dir, 'fleet', 'fleet CA');
    const cert = await makeCert(dir, ca, 'registrar', { sans: 'IP:127.0.0.1,DNS:localhost' });
    const caPem = await readFile(ca.cert, 'utf8');
    const port = await freePort();
    const registrarUrl = `https://127.0.0.1:${port}`;
    await admin.makeApiClient(k8s.CoreV1Api).createNamespacedConfigMap({
      namespace: FLEET_NAMESPACE,
      body: { metadata: { name: 'edgefarm-fleet' }, data: { 'ca.crt': caPem, registrarUrl, hubLeafUrls: hubLeafUrls.join(',') } },
    });
    const metrics = new RegistrarMetrics();
    const log = pino({ level: 'silent' });
    const registrar = new Registrar({
      kube: new RealRegistrarKube(api.kubeConfigFor(REGISTRAR_USER)),
      mint: mintNodeUser,
      signerSeed: new TextDecoder().decode(createAccount().getSeed()),
      sitesAccount: createAccount().getPublicKey(),
      caPem,
      hubLeafUrls,
      registrarUrl,
      credentialLifetimeSeconds: 7 * 24 * 3600,
      metrics,
      log,
    });
    server = new RegistrarServer({
      registrar,
      metrics,
      log,
      tls: { cert: await readFile(cert.cert, 'utf8'), key: await readFile(cert.key, 'utf8'), caPem },
      host: '127.0.0.1',
      port,
    });
    await server.start();
    const started = server;

    const cli = async (args: string[], now: () => number = Date.now, probe?: SiteProbe): Promise<Outcome> => {
      let out = '';
      let err = '';
      const code = await run(args, {
        out: (t) => (out += t),
        err: (t) => (err += t),
        now,
        kube: () => new RealCliKube(admin),
        readInput: (file) => readFile(file, 'utf8'),
        ...(probe ? { probe } : {}),
      });
      return { code, out, err };
    };
    const token = async (node: string): Promise<string> => {
      const r = await cli(['token', 'create', node, '-o', 'json']);
      if (r.code !== 0) throw new Error(`token create ${node}: exit ${r.code}: ${r.err}`);
      return (JSON.parse(r.out) as { token: string }).token;
    };
    return {
      dir,
      api,
      metrics,
      registrarUrl,
      caPem,
      ca,
      hubLeafUrls,
      admin,
      cli,
      token,
      stop: async () => {
        await started.stop();
        await api.stop();
        if (!TEST.keep) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await server?.stop();
    await api.stop();
    throw err;
  }
}
