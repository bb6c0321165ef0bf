/**
 * `edgefarm fleet init` then `fleet secrets --apply` against a real kube-apiserver (+etcd) with the base's namespace:
 * the objects read back as the manifests mount them, owned by field manager edgefarm-fleet, and a second apply (a
 * rerun of the install) changes nothing.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { KubeApiServer, TEST } from '@edgefarm/testing';
import { EXIT } from './errors.js';
import { RealCliKube } from './kube.js';
import { run } from './program.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const NS = 'edgefarm-system';
let dir: string;
let api: KubeApiServer;
let admin: k8s.KubeConfig;

async function cli(...args: string[]) {
  let out = '';
  let err = '';
  const code = await run(args, {
    out: (t) => (out += t),
    err: (t) => (err += t),
    now: Date.now,
    kube: () => new RealCliKube(admin),
    readInput: (file) => readFile(file, 'utf8'),
  });
  return { code, out, err };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-fleet-int-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube') });
  await api.apply(path.join(ROOT, 'manifests/base/namespace.yaml'));
  admin = api.kubeConfigFor();
}, 180_000);

afterAll(async () => {
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

it('fleet init, then fleet secrets --apply creates the ConfigMap and Secrets an install needs', async () => {
  const fleet = path.join(dir, 'fleet');
  const init = await cli('fleet', 'init', '--dir', fleet, '--hub-name', 'hub.example.com', '--registrar-name', 'registrar.example.com');
  expect(init).toMatchObject({ code: EXIT.ok, err: '' });
  const args = ['fleet', 'secrets', '--dir', fleet, '--registrar-url', 'https://registrar.example.com:8443'];
  const apply = await cli(...args, '--hub-leaf-urls', 'tls://hub.example.com:7422', '--apply');
  expect(apply).toMatchObject({ code: EXIT.ok, err: '' });
  expect(apply.out.trim().split('\n')).toHaveLength(4);

  const core = admin.makeApiClient(k8s.CoreV1Api);
  const cm = await core.readNamespacedConfigMap({ namespace: NS, name: 'edgefarm-fleet' });
  expect(cm.data).toMatchObject({
    'ca.crt': await readFile(path.join(fleet, 'tls/ca.crt'), 'utf8'),
    registrarUrl: 'https://registrar.example.com:8443',
    hubLeafUrls: 'tls://hub.example.com:7422',
  });
  expect(cm.metadata?.managedFields?.map((f) => [f.manager, f.operation])).toEqual([['edgefarm-fleet', 'Apply']]);
  const keys = async (name: string) => {
    const s = await core.readNamespacedSecret({ namespace: NS, name });
    return Object.keys(s.data ?? {}).sort();
  };
  expect(await keys('edgefarm-hub')).toEqual(['ca.crt', 'nats.conf', 'operator.jwt', 'tls.crt', 'tls.key']);
  expect(await keys('edgefarm-provider')).toEqual([
    'claims-pusher.creds',
    'operator-signer.nk',
    'provider-cloud.creds',
    'provider-desired.creds',
  ]);
  expect(await keys('edgefarm-registrar')).toEqual(['node-signer.nk', 'tls.crt', 'tls.key']);
  const registrar = await core.readNamespacedSecret({ namespace: NS, name: 'edgefarm-registrar' });
  expect(Buffer.from(registrar.data!['tls.key']!, 'base64').toString()).toBe(await readFile(path.join(fleet, 'tls/registrar.key'), 'utf8'));

  // a rerun with another leaf URL updates the one key, and nothing else moves
  const version = (await core.readNamespacedSecret({ namespace: NS, name: 'edgefarm-hub' })).metadata?.resourceVersion;
  expect(await cli(...args, '--hub-leaf-urls', 'tls://hub.example.com:7422,tls://hub2.example.com:7422', '--apply')).toMatchObject({
    code: EXIT.ok,
  });
  expect((await core.readNamespacedConfigMap({ namespace: NS, name: 'edgefarm-fleet' })).data?.hubLeafUrls).toBe(
    'tls://hub.example.com:7422,tls://hub2.example.com:7422',
  );
  expect((await core.readNamespacedSecret({ namespace: NS, name: 'edgefarm-hub' })).metadata?.resourceVersion).toBe(version);

  // a namespace that does not exist: the API's error, exit 10
  const missing = await cli('-n', 'nowhere', ...args, '--hub-leaf-urls', 'tls://hub.example.com:7422', '--apply');
  expect(missing.code).toBe(EXIT.kubeFailed);
  expect(missing.err).toContain('applying configmap/edgefarm-fleet in nowhere');
}, 120_000);
