/**
 * Revocation end to end: a real kube-apiserver (the revoker runs as a provider under manifests/base/provider-rbac.yaml),
 * the secured fabric's hub (SecureFabric: configured as the product) with two real site servers linked by their node
 * credentials. `edgefarm node revoke`'s write to the revocation Secret closes node A's leaf link (and keeps it out)
 * while B stays; deleting B's EdgeNode closes B's. The times from the write to the closed link are printed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { EDGENODE_API, FLEET_NAMESPACE, revocationEntry, REVOCATIONS_SECRET } from '@edgefarm/registrar';
import { KubeApiServer, SecureFabric, TEST } from '@edgefarm/testing';
import { Revoker } from './revoker.js';
import { KubeRevocationSource } from './source.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
let dir: string;
let api: KubeApiServer;
let fabric: SecureFabric;
let revoker: Revoker;
const keys: Record<string, string> = {};

async function edgeNode(name: string, publicKey: string): Promise<void> {
  const custom = api.kubeConfigFor().makeApiClient(k8s.CustomObjectsApi);
  await custom.createClusterCustomObject({
    ...EDGENODE_API,
    body: { apiVersion: 'edgefarm.io/v1alpha1', kind: 'EdgeNode', metadata: { name }, spec: {} },
  });
  const now = new Date().toISOString();
  await custom.patchClusterCustomObjectStatus(
    { ...EDGENODE_API, name, body: { status: { identity: { publicKey, issuedAt: now, expiresAt: now } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

/** Milliseconds from now until `name` is no longer among the hub's leafs (waits past the 10 s requirement, so a miss is measured). */
const leafGoneMs = (name: string): Promise<number> => fabric.waitLeaf(name, false, 30_000);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-revoker-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }] });
  await api.apply(
    ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/provider-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
  fabric = await SecureFabric.start({ nodes: ['gw-a', 'gw-b'] });
  for (const n of ['gw-a', 'gw-b']) {
    keys[n] = fabric.node(n).wireId;
    await edgeNode(n, keys[n]);
  }
  const { fleet } = fabric;
  revoker = new Revoker({
    source: new KubeRevocationSource(api.kubeConfigFor('edgefarm-provider'), FLEET_NAMESPACE),
    connect: () =>
      connect({
        servers: fabric.member().clientUrl,
        authenticator: credsAuthenticator(new TextEncoder().encode(fleet.creds.claimsPusher)),
        tls: { caFile: fabric.tls.caFile },
        name: 'revoker',
      }),
    operatorSigningSeed: fleet.seeds.operatorSigner,
    accounts: fleet.keys.accounts,
    nodeSignerPublicKey: fleet.keys.nodeSigner,
    log: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  await revoker.start();
}, 180_000);

afterAll(async () => {
  await revoker?.stop();
  await fabric?.stop();
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

describe('revocation through the hub', () => {
  it("closes a revoked node's leaf within 10 s and keeps it out, while the other stays", async () => {
    const core = api.kubeConfigFor().makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedSecret({
      namespace: FLEET_NAMESPACE,
      body: { metadata: { name: REVOCATIONS_SECRET }, data: revocationEntry(keys['gw-a']!, new Date()) },
    });
    const ms = await leafGoneMs('gw-a');
    console.log(`revocation: node A's leaf closed ${ms.toFixed(0)} ms after the revocation Secret was written`);
    expect(ms).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await fabric.leafs()).map((l) => l.name)).toEqual(['gw-b']);
    expect(fabric.node('gw-a').site!.process.tail(200)).toMatch(/[Rr]evoked/);
  }, 60_000);

  it("revokes a deleted EdgeNode's key", async () => {
    await api
      .kubeConfigFor()
      .makeApiClient(k8s.CustomObjectsApi)
      .deleteClusterCustomObject({ ...EDGENODE_API, name: 'gw-b' });
    const ms = await leafGoneMs('gw-b');
    console.log(`revocation: node B's leaf closed ${ms.toFixed(0)} ms after its EdgeNode was deleted`);
    const secret = await api
      .kubeConfigFor()
      .makeApiClient(k8s.CoreV1Api)
      .readNamespacedSecret({ namespace: FLEET_NAMESPACE, name: REVOCATIONS_SECRET });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([keys['gw-a'], keys['gw-b']].sort());
  }, 60_000);
});
