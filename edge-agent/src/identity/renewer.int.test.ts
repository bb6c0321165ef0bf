/**
 * Renewal at a site, end to end: a real registrar over TLS (openssl-made fleet CA; running as its ServiceAccount
 * against a real kube-apiserver), a real operator-mode hub and a real site server linked with the node's
 * credentials. The credentials live 6 s; the renewer replaces node.creds at 70-90 % of that, the hub closes the leaf
 * at the old JWT's expiry and the site redials with the new file. Prints how long the link was down.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { createUser } from '@nats-io/nkeys';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  EDGENODE_API,
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
  writeJoinDir,
  type NodeJson,
} from '@edgefarm/registrar';
import { formatCreds, mintNodeUser } from '@edgefarm/identity';
import { KubeApiServer, OperatorHub, TEST, freePort, makeCa, makeCert, waitFor } from '@edgefarm/testing';
import { CredentialRenewer } from './renewer.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const REGISTRAR_USER = 'system:serviceaccount:edgefarm-system:edgefarm-registrar';
const LIFETIME_S = 6;
let dir: string;
let api: KubeApiServer;
let hub: OperatorHub;
let server: RegistrarServer;
let registrarUrl: string;
let caPem: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-renew-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: REGISTRAR_USER }] });
  await api.apply(...['namespace.yaml', 'edgenode-crd.yaml', 'registrar-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)));
  hub = await OperatorHub.start(path.join(dir, 'hub'));
  const ca = await makeCa(dir, 'fleet');
  const cert = await makeCert(dir, ca, 'registrar', { sans: 'IP:127.0.0.1' });
  caPem = await readFile(ca.cert, 'utf8');
  const port = await freePort();
  registrarUrl = `https://127.0.0.1:${port}`;
  const metrics = new RegistrarMetrics();
  const log = pino({ level: 'silent' });
  const registrar = new Registrar({
    kube: new RealRegistrarKube(api.kubeConfigFor(REGISTRAR_USER)),
    mint: mintNodeUser,
    signerSeed: hub.keys.nodeSignerSeed,
    sitesAccount: hub.keys.accounts.sites,
    caPem,
    hubLeafUrls: [hub.leafUrl],
    registrarUrl,
    credentialLifetimeSeconds: LIFETIME_S,
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
  await hub?.stop();
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

it('renews before expiry; the site is back on the new credentials about a second after the old expire', async () => {
  const token = newJoinToken(caHashOf(caPem));
  await api
    .kubeConfigFor()
    .makeApiClient(k8s.CoreV1Api)
    .createNamespacedSecret({
      namespace: FLEET_NAMESPACE,
      body: joinTokenSecret(token, 'gw-r', new Date(Date.now() + 600_000)) as k8s.V1Secret,
    });
  const node = createUser();
  const seed = new TextDecoder().decode(node.getSeed());
  const res = await new RegistrarClient({ url: registrarUrl, caPem }).join({
    token: formatJoinToken(token),
    publicKey: node.getPublicKey(),
    clientTime: new Date().toISOString(),
  });
  const joinDir = path.join(dir, 'site', 'edgefarm');
  const nodeJson: NodeJson = {
    node: res.node,
    wireId: res.wireId,
    registrarUrl: res.registrarUrl,
    hubLeafUrls: res.hubLeafUrls,
    domain: res.domain,
    issuedAt: res.issuedAt,
    expiresAt: res.expiresAt,
  };
  await writeJoinDir(
    joinDir,
    [
      { name: 'node.json', content: JSON.stringify(nodeJson), mode: 0o644 },
      { name: 'node.nk', content: seed, mode: 0o600 },
      { name: 'node.creds', content: formatCreds(res.jwt, seed), mode: 0o600 },
      { name: 'ca.pem', content: res.caPem, mode: 0o644 },
    ],
    false,
  );
  await hub.startSite('gw-r', path.join(joinDir, 'node.creds'));
  await waitFor('site linked', async () => (await hub.leafNames()).includes('gw-r'), 20_000);

  const registry = new Registry();
  const renewer = new CredentialRenewer({ dir: joinDir, log: pino({ level: 'silent' }), registry });
  await renewer.start();
  try {
    // watch the link across the first expiry: down at most briefly, then up on the new file
    const firstExpiry = Date.parse(res.expiresAt);
    let downSince: number | undefined;
    let longestDownMs = 0;
    while (Date.now() < firstExpiry + 4000) {
      const up = (await hub.leafNames()).includes('gw-r');
      if (!up) downSince ??= Date.now();
      else if (downSince !== undefined) {
        longestDownMs = Math.max(longestDownMs, Date.now() - downSince);
        downSince = undefined;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(downSince).toBeUndefined();
    console.log(`renewal: the leaf was down ${longestDownMs} ms around the old credentials' expiry`);
    expect(longestDownMs).toBeLessThan(3000);
    const renewed = JSON.parse(await readFile(path.join(joinDir, 'node.json'), 'utf8')) as NodeJson;
    expect(Date.parse(renewed.expiresAt)).toBeGreaterThan(firstExpiry);
    expect(await registry.metrics()).toMatch(/edgefarm_agent_credential_renewals_total\{result="ok"\} [1-9]/);
    const en = (await api
      .kubeConfigFor()
      .makeApiClient(k8s.CustomObjectsApi)
      .getClusterCustomObject({ ...EDGENODE_API, name: 'gw-r' })) as { status: { identity: { expiresAt: string } } };
    expect(Date.parse(en.status.identity.expiresAt)).toBeGreaterThan(firstExpiry);
  } finally {
    await renewer.stop();
  }
}, 60_000);
