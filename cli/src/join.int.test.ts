/**
 * The join path against a real kube-apiserver (+etcd) and a real registrar over TLS with an openssl-made fleet CA,
 * the registrar running as its ServiceAccount under manifests/registrar-rbac.yaml: token create -> join -> the files
 * (modes checked, the site config accepted by nats-server) -> renew; and each refusal with its exit code.
 */
import { mkdtemp, readFile, rm, stat, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createAccount } from '@nats-io/nkeys';
import { pino } from 'pino';
import {
  FLEET_NAMESPACE,
  Registrar,
  RegistrarClient,
  RegistrarMetrics,
  RegistrarServer,
  RealRegistrarKube,
  caHashOf,
  formatJoinToken,
  joinTokenSecret,
  newJoinToken,
  EDGENODE_API,
} from '@edgefarm/registrar';
import { mintNodeUser } from '@edgefarm/identity';
import { KubeApiServer, NATS_SERVER, TEST, freePort, makeCa, makeCert, spawnLogged, waitFor } from '@edgefarm/testing';
import { EXIT } from './errors.js';
import { RealCliKube } from './kube.js';
import { run } from './program.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const REGISTRAR_USER = 'system:serviceaccount:edgefarm-system:edgefarm-registrar';

let dir: string;
let api: KubeApiServer;
let server: RegistrarServer;
let metrics: RegistrarMetrics;
let registrarUrl: string;
let caPem: string;
let admin: k8s.KubeConfig;

interface Outcome {
  code: number;
  out: string;
  err: string;
}

async function cli(args: string[], now: () => number = Date.now): Promise<Outcome> {
  let out = '';
  let err = '';
  const code = await run(args, {
    out: (t) => (out += t),
    err: (t) => (err += t),
    now,
    kube: () => new RealCliKube(admin),
    readInput: (file) => readFile(file, 'utf8'),
  });
  return { code, out, err };
}

async function token(node: string): Promise<string> {
  const r = await cli(['token', 'create', node, '-o', 'json']);
  expect(r).toMatchObject({ code: 0 });
  return (JSON.parse(r.out) as { token: string }).token;
}

const joinArgs = (t: string, d: string, ...more: string[]) => [
  'join',
  '--token',
  t,
  '--hub',
  registrarUrl,
  '--dir',
  d,
  '--store-dir',
  path.join(dir, 'js'),
  '-o',
  'json',
  ...more,
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-join-'));
  api = await KubeApiServer.start({
    dir: path.join(dir, 'kube'),
    users: [{ user: REGISTRAR_USER, groups: ['system:serviceaccounts', 'system:serviceaccounts:edgefarm-system'] }],
  });
  await api.apply(
    ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/registrar-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
  admin = api.kubeConfigFor();

  const ca = await makeCa(dir, 'fleet', 'fleet CA');
  const cert = await makeCert(dir, ca, 'registrar', { sans: 'IP:127.0.0.1,DNS:localhost' });
  caPem = await readFile(ca.cert, 'utf8');
  const port = await freePort();
  registrarUrl = `https://127.0.0.1:${port}`;
  await admin.makeApiClient(k8s.CoreV1Api).createNamespacedConfigMap({
    namespace: FLEET_NAMESPACE,
    body: { metadata: { name: 'edgefarm-fleet' }, data: { 'ca.crt': caPem, registrarUrl } },
  });
  metrics = new RegistrarMetrics();
  const log = pino({ level: 'silent' });
  const registrar = new Registrar({
    kube: new RealRegistrarKube(api.kubeConfigFor(REGISTRAR_USER)),
    mint: mintNodeUser,
    signerSeed: new TextDecoder().decode(createAccount().getSeed()),
    sitesAccount: createAccount().getPublicKey(),
    caPem,
    hubLeafUrls: ['tls://127.0.0.1:7422'],
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
}, 180_000);

afterAll(async () => {
  await server?.stop();
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('edgefarm join against a real registrar and kube-apiserver', () => {
  it('token create -> join -> files -> renew', async () => {
    const t = await token('gw-1');
    const d = path.join(dir, 'site-1', 'edgefarm');
    const t0 = performance.now();
    const [listen, monitor] = [await freePort(), await freePort()];
    const r = await cli(joinArgs(t, d, '--listen', `127.0.0.1:${listen}`, '--monitor', `127.0.0.1:${monitor}`));
    const ms = performance.now() - t0;
    console.log(`edgefarm join took ${ms.toFixed(0)} ms (token check, CA pin, clock, keys, register, write)`);
    expect(r.err).toContain('[7/7] writing');
    expect(r.code).toBe(EXIT.ok);
    const summary = JSON.parse(r.out) as { node: string; wireId: string; expiresAt: string; steps: { step: string; ms: number }[] };
    console.log(`join steps (first join of this registrar):\n${summary.steps.map((s) => `  ${s.ms} ms  ${s.step}`).join('\n')}`);
    expect(summary.node).toBe('gw-1');

    expect(await mode(d)).toBe(0o700);
    for (const f of ['node.nk', 'agent.nk', 'node.creds', 'agent.env']) expect(await mode(path.join(d, f))).toBe(0o600);
    expect((await readdir(d)).sort()).toEqual(['agent.env', 'agent.nk', 'ca.pem', 'nats-site.conf', 'node.creds', 'node.json', 'node.nk']);
    expect((await readdir(path.dirname(d))).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const nodeJson = JSON.parse(await readFile(path.join(d, 'node.json'), 'utf8'));
    expect(nodeJson).toMatchObject({
      node: 'gw-1',
      wireId: summary.wireId,
      registrarUrl,
      hubLeafUrls: ['tls://127.0.0.1:7422'],
      domain: 'site-gw-1',
    });
    expect(await readFile(path.join(d, 'ca.pem'), 'utf8')).toBe(caPem);
    const env = await readFile(path.join(d, 'agent.env'), 'utf8');
    expect(env).toContain(`EF_NODE_WIRE_ID=${summary.wireId}\n`);
    expect(env).toContain(`EF_IDENTITY_DIR=${d}\n`);
    const conf = await readFile(path.join(d, 'nats-site.conf'), 'utf8');
    expect(conf).toContain(path.join(d, 'node.creds'));
    // the rendered configuration runs (the hub is absent: the leaf only keeps redialing)
    const site = spawnLogged('site', NATS_SERVER, ['-c', path.join(d, 'nats-site.conf')], { logFile: path.join(dir, 'site-1.log') });
    try {
      await waitFor('site server healthz', async () => (await fetch(`http://127.0.0.1:${monitor}/healthz`)).ok, 20_000);
    } finally {
      await site.stop();
    }

    const edgeNode = (await admin.makeApiClient(k8s.CustomObjectsApi).getClusterCustomObject({ ...EDGENODE_API, name: 'gw-1' })) as {
      status: { identity: { publicKey: string } };
    };
    expect(edgeNode.status.identity.publicKey).toBe(summary.wireId);
    const list = await cli(['node', 'list', '-o', 'json']);
    expect(JSON.parse(list.out)).toEqual([
      expect.objectContaining({ name: 'gw-1', publicKey: summary.wireId, credentialsExpireAt: summary.expiresAt }),
    ]);

    const seed = (await readFile(path.join(d, 'node.nk'), 'utf8')).trim();
    const client = new RegistrarClient({ url: registrarUrl, caPem: await readFile(path.join(d, 'ca.pem'), 'utf8') });
    await new Promise((res) => setTimeout(res, 1100));
    const renewed = await client.renew(seed, {
      node: 'gw-1',
      publicKey: summary.wireId,
      time: new Date().toISOString(),
      nonce: 'int-test-nonce-0001',
    });
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(Date.parse(summary.expiresAt));
    expect(await metrics.count('renew', 'ok')).toBe(1);
  }, 60_000);

  it('refuses a reused token, a node that joined ("name taken") and a joined directory', async () => {
    const t = await token('gw-2');
    expect((await cli(joinArgs(t, path.join(dir, 'site-2')))).code).toBe(EXIT.ok);
    const t0 = performance.now();
    const again = await cli(joinArgs(t, path.join(dir, 'site-2b')));
    console.log(`a refused join (reused token) took ${(performance.now() - t0).toFixed(0)} ms`);
    expect(again.code).toBe(EXIT.tokenRefused);
    expect(again.err).toContain('token-reused');
    const taken = await cli(joinArgs(await token('gw-2'), path.join(dir, 'site-2c')));
    expect(taken.code).toBe(EXIT.nameTaken);
    expect(taken.err).toContain('edgefarm node revoke gw-2');
    const joinedDir = await cli(joinArgs(await token('gw-2'), path.join(dir, 'site-2')));
    expect(joinedDir.code).toBe(EXIT.alreadyJoined);
    // revoked, it may join again
    expect((await cli(['node', 'revoke', 'gw-2'])).code).toBe(0);
    const t1 = performance.now();
    const rejoin = await cli(joinArgs(await token('gw-2'), path.join(dir, 'site-2'), '--force'));
    expect(rejoin.code).toBe(EXIT.ok);
    console.log(`a later join (warm registrar) took ${(performance.now() - t1).toFixed(0)} ms, token create included`);
  }, 60_000);

  it("refuses an expired token and another node's token", async () => {
    const old = newJoinToken(caHashOf(caPem));
    await admin.makeApiClient(k8s.CoreV1Api).createNamespacedSecret({
      namespace: FLEET_NAMESPACE,
      body: joinTokenSecret(old, 'gw-3', new Date(Date.now() - 1000)) as k8s.V1Secret,
    });
    const expired = await cli(joinArgs(formatJoinToken(old), path.join(dir, 'site-3')));
    expect(expired.code).toBe(EXIT.tokenRefused);
    expect(expired.err).toContain('expired');
    const other = await cli(joinArgs(await token('gw-4'), path.join(dir, 'site-3'), '--node', 'gw-3'));
    expect(other.code).toBe(EXIT.tokenRefused);
    expect(other.err).toContain('token-wrong-node');
    await expect(stat(path.join(dir, 'site-3'))).rejects.toThrow();
  }, 60_000);

  it('refuses a wrong CA hash, a skewed clock and an unreachable registrar before sending anything', async () => {
    const before = await metrics.count('join', 'ok');
    const t = await token('gw-5');
    const wrongCa = t.replace(/\.[0-9a-f]{64}$/, `.${'0'.repeat(64)}`);
    const pin = await cli(joinArgs(wrongCa, path.join(dir, 'site-5')));
    expect(pin.code).toBe(EXIT.caMismatch);
    const skewed = await cli(joinArgs(t, path.join(dir, 'site-5')), () => Date.now() + 10 * 60_000);
    expect(skewed.code).toBe(EXIT.clockSkew);
    const closed = await freePort();
    const unreachable = await cli(['join', '--token', t, '--hub', `https://127.0.0.1:${closed}`, '--dir', path.join(dir, 'site-5')]);
    expect(unreachable.code).toBe(EXIT.unreachable);
    const reg = await metrics.registry.getSingleMetric('registrar_requests_total')!.get();
    expect(reg.values.filter((v) => v.labels.endpoint === 'join' && v.labels.result !== 'ok').map((v) => v.labels.result)).not.toContain(
      'malformed',
    );
    expect(await metrics.count('join', 'ok')).toBe(before);
    // the token was not spent: it still joins
    expect((await cli(joinArgs(t, path.join(dir, 'site-5')))).code).toBe(EXIT.ok);
  }, 60_000);
});
