/**
 * Memory of reading Secrets with N Secrets in the cluster (real kube-apiserver), measured in this process, before and
 * after decision 0010: the provider's former cluster-wide Secret informer (every Secret of the cluster in its cache)
 * against the per-object watches it keeps now (ObjectWatches as node edge-1: one watch per Secret its pods use).
 * Reports figures (heap after a full GC, JSON on stdout); asserts only what was watched.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeApiServer, TEST } from '@edgefarm/testing';
import { CsrNodeClients } from './node-clients.js';
import { ObjectWatches } from './object-watches.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const N = 5000;
const USED = 3;
const NS = 'bulk';
const log = pino({ level: 'silent' });
let dir: string;
let api: KubeApiServer;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

async function heapMb(): Promise<number> {
  for (let i = 0; i < 6; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.memoryUsage().heapUsed / (1024 * 1024);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-secrets-memory-'));
  api = await KubeApiServer.start({
    dir: path.join(dir, 'kube'),
    users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }],
    controllerManager: true,
  });
  await api.apply(
    ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/provider-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
  const core = api.kubeConfigFor().makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: 'robot' } } });
  // Secrets of ~1 KiB each (a TLS key or a token is about that), created 16 at a time.
  const value = 'x'.repeat(1024);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let i = next++; i < N; i = next++)
        await core.createNamespacedSecret({
          namespace: NS,
          body: { metadata: { name: `s-${i}`, labels: { app: 'bulk' } }, stringData: { value } },
        });
    }),
  );
  await core.createNamespacedPod({
    namespace: NS,
    body: {
      metadata: { name: 'web' },
      spec: {
        nodeName: 'edge-1',
        serviceAccountName: 'robot',
        automountServiceAccountToken: false,
        containers: [
          {
            name: 'c',
            image: 'i',
            env: Array.from({ length: USED }, (_, i) => ({ name: `S${i}`, valueFrom: { secretKeyRef: { name: `s-${i}`, key: 'value' } } })),
          },
        ],
      },
    },
  });
}, 600_000);

afterAll(async () => {
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

it(`reports the heap held to read Secrets with ${N} in the cluster: a cluster-wide informer, then per-object watches`, async () => {
  // After (measured first, so nothing of the large cache is still being freed): the Secrets a served pod uses, one
  // watch each, as its node.
  const nodes = new CsrNodeClients({ kc: api.kubeConfigFor('edgefarm-provider'), log, credentialSeconds: 3600, issueTimeoutMs: 60_000 });
  await nodes.client('edge-1'); // the credential is not what is measured
  await heapMb(); // what setting up left behind is freed first
  const base = await heapMb();
  const watches = new ObjectWatches({ nodes, changed: () => undefined, log });
  for (let i = 0; i < USED; i++) expect(await watches.get('edge-1', `secret/${NS}/s-${i}`)).toBeDefined();
  const perObjectMb = (await heapMb()) - base;
  expect(watches.size).toBe(USED);

  // Before: what the provider ran until decision 0010 (its former ClusterRole let it list every Secret; as the admin here).
  const base2 = await heapMb();
  const kc = api.kubeConfigFor();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = new k8s.ListWatch<k8s.V1Secret>('/api/v1/secrets', new k8s.Watch(kc), () => core.listSecretForAllNamespaces(), false);
  await informer.start();
  const cached = informer.list().length;
  const clusterWideMb = (await heapMb()) - base2;
  await informer.stop();
  await watches.stop();
  await nodes.close();

  expect(cached).toBeGreaterThanOrEqual(N);
  const r = (x: number) => Math.round(x * 10) / 10;
  console.log(
    JSON.stringify({
      secretsInCluster: cached,
      secretsUsed: USED,
      heapMb: { clusterWideInformer: r(clusterWideMb), perObjectWatches: r(perObjectMb) },
    }),
  );
}, 300_000);
