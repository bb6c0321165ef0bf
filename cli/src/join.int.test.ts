/**
 * The join path against a real kube-apiserver (+etcd) and a real registrar over TLS with an openssl-made fleet CA,
 * the registrar running as its ServiceAccount under manifests/base/registrar-rbac.yaml: token create -> join -> the files
 * (modes checked, the site config accepted by nats-server) -> renew; and each refusal with its exit code. The bed is
 * registrar-bed.fixtures.ts (shared with status.int.test.ts).
 */
import { readFile, stat, readdir } from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import {
  FLEET_NAMESPACE,
  RegistrarClient,
  RegistrarMetrics,
  caHashOf,
  formatJoinToken,
  joinTokenSecret,
  newJoinToken,
  EDGENODE_API,
} from '@edgefarm/registrar';
import { NATS_SERVER, freePort, spawnLogged, waitFor } from '@edgefarm/testing';
import { EXIT } from './errors.js';
import { startRegistrarBed, type Outcome, type RegistrarBed } from './registrar-bed.fixtures.js';

let bed: RegistrarBed;
let dir: string;
let metrics: RegistrarMetrics;
let registrarUrl: string;
let caPem: string;
let admin: k8s.KubeConfig;

const cli = (args: string[], now?: () => number): Promise<Outcome> => bed.cli(args, now);
const token = (node: string): Promise<string> => bed.token(node);

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
  bed = await startRegistrarBed('ef-join-');
  ({ dir, metrics, registrarUrl, caPem, admin } = bed);
}, 180_000);

afterAll(async () => {
  await bed?.stop();
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
