/**
 * The provider's Kubernetes permissions (decision 0010) against a real kube-apiserver (Node,RBAC authorization,
 * NodeRestriction admission) and kube-controller-manager (CSR approval and signing), with manifests/base/provider-rbac.yaml:
 * under its own identity the provider reads no Secret, requests no token and writes no pod; as a node it serves
 * (a client certificate from the CSR API, kube/node-clients.ts) it reaches exactly what that node's pods use; and
 * the pod controller still delivers a pod's Secret, ConfigMap and token to its node, watching them one by one.
 *
 * Pods: app/web on edge-1 (this provider's node: ServiceAccount robot, Secret db, ConfigMap cfg), app/far on
 * kubelet-1 (a real kubelet's node: ServiceAccount other, Secret far-secret), app/theirs on edge-9 (another
 * provider's node). Secret app/unused no pod uses.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { KubeApiServer, TEST, waitFor } from '@edgefarm/testing';
import { FakeBus } from '../bus/fake.js';
import { DesiredSequences } from '../bus/sequences.js';
import { FakeMembership, defaultPolicy } from '../membership/fake.js';
import { newNode } from '../nodecontroller/node.js';
import { NodeFacts } from '../nodecontroller/facts.js';
import { PodController } from '../podcontroller/controller.js';
import { RealKubeClient, type KubeClient, type Pod, type WatchedKind } from './client.js';
import { statusCodeOf } from './errors.js';
import { CsrNodeClients, NodeCredentialError } from './node-clients.js';
import { servingCsr } from './csr.js';
import { KUBELET_SERVING_SIGNER, ServingCertificate } from './serving-cert.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');
const NS = 'app';
const log = pino({ level: 'silent' });
let dir: string;
let api: KubeApiServer;
let admin: k8s.CoreV1Api;
let provider: RealKubeClient;
let nodes: CsrNodeClients;
const pods: Record<string, Pod> = {};

function podOn(name: string, node: string, serviceAccount: string, secret: string, configMap?: string): k8s.V1Pod {
  return {
    metadata: { name, namespace: NS },
    spec: {
      nodeName: node,
      serviceAccountName: serviceAccount,
      containers: [
        {
          name: 'c',
          image: 'docker.io/library/busybox:1.36',
          env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: secret, key: 'pw' } } }],
          volumeMounts: configMap ? [{ name: 'cfg', mountPath: '/etc/cfg' }] : [],
        },
      ],
      volumes: configMap ? [{ name: 'cfg', configMap: { name: configMap } }] : [],
    },
  };
}

/** The HTTP status the call failed with (0: it did not fail). */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 0;
  } catch (err) {
    return statusCodeOf(err) ?? -1;
  }
}

/** Opens a watch of one object as `kube`; resolves with the HTTP status of its failure (0: it listed). */
async function watchStatus(kube: KubeClient, kind: WatchedKind, name: string): Promise<{ status: number; object?: unknown }> {
  const w = kube.objectWatch(kind, NS, name);
  let failure: unknown;
  await w.start({
    changed: () => undefined,
    deleted: () => undefined,
    error: (err) => {
      failure ??= err;
      void w.stop();
    },
  });
  const object = w.get(NS, name);
  await w.stop();
  return failure === undefined ? { status: 0, object } : { status: statusCodeOf(failure) ?? -1 };
}

const tokenFor = (pod: Pod) => ({ audience: '', expirationSeconds: 3600, pod: { name: pod.metadata!.name!, uid: pod.metadata!.uid! } });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-permissions-'));
  api = await KubeApiServer.start({
    dir: path.join(dir, 'kube'),
    users: [{ user: 'edgefarm-provider', groups: ['edgefarm:providers'] }, { user: 'outsider' }],
    controllerManager: true,
  });
  await api.apply(
    ...['base/namespace.yaml', 'crds/edgenode-crd.yaml', 'base/provider-rbac.yaml'].map((f) => path.join(ROOT, 'manifests', f)),
  );
  admin = api.kubeConfigFor().makeApiClient(k8s.CoreV1Api);
  await admin.createNamespace({ body: { metadata: { name: NS } } });
  for (const sa of ['robot', 'other', 'theirs'])
    await admin.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name: sa } } });
  for (const s of ['db', 'unused', 'far-secret', 'their-secret'])
    await admin.createNamespacedSecret({ namespace: NS, body: { metadata: { name: s }, stringData: { pw: `${s}-1` } } });
  await admin.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cfg' }, data: { 'a.conf': 'x=1' } } });
  for (const p of [
    podOn('web', 'edge-1', 'robot', 'db', 'cfg'),
    podOn('far', 'kubelet-1', 'other', 'far-secret'),
    podOn('theirs', 'edge-9', 'theirs', 'their-secret'),
  ])
    pods[p.metadata!.name!] = await admin.createNamespacedPod({ namespace: NS, body: p });
  const kc = api.kubeConfigFor('edgefarm-provider');
  provider = new RealKubeClient(kc);
  nodes = new CsrNodeClients({ kc, log, credentialSeconds: 3600, issueTimeoutMs: 60_000, pollMs: 100 });
}, 180_000);

afterAll(async () => {
  await nodes?.close();
  await api?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

describe('under its own identity the provider', () => {
  it('reads no Secret or ConfigMap: not one by name, not a list, not a watch', async () => {
    expect(await statusOf(() => admin.readNamespacedSecret({ namespace: NS, name: 'db' }))).toBe(0);
    const core = api.kubeConfigFor('edgefarm-provider').makeApiClient(k8s.CoreV1Api);
    expect(await statusOf(() => core.readNamespacedSecret({ namespace: NS, name: 'unused' }))).toBe(403);
    expect(await statusOf(() => core.readNamespacedSecret({ namespace: NS, name: 'db' }))).toBe(403);
    expect(await statusOf(() => core.listSecretForAllNamespaces())).toBe(403);
    expect(await statusOf(() => core.listConfigMapForAllNamespaces())).toBe(403);
    expect((await watchStatus(provider, 'secret', 'db')).status).toBe(403);
  });

  it('requests no ServiceAccount token and writes no pod', async () => {
    expect(await statusOf(() => provider.createToken(NS, 'robot', tokenFor(pods.web!)))).toBe(403);
    const far = await provider.getPod(NS, 'far');
    expect(far?.spec?.nodeName).toBe('kubelet-1'); // it still reads pods (its informer)
    expect(await statusOf(() => provider.replacePodStatus({ ...far!, status: { ...far!.status, phase: 'Failed' } }))).toBe(403);
    expect(await statusOf(() => provider.deletePod(NS, 'far', { uid: far!.metadata!.uid!, gracePeriodSeconds: 0 }))).toBe(403);
  });
});

describe('under its own identity, on Nodes, the provider', () => {
  it("makes, changes and deletes edge Nodes only: never a kubelet's (manifests/base/provider-rbac.yaml's admission policy)", async () => {
    const kubelet = await admin.createNode({
      body: { metadata: { name: 'kubelet-1', labels: { 'kubernetes.io/hostname': 'kubelet-1' } } },
    });
    // An admission policy is in force a moment after it is created: wait for it (a canary label, set while it was
    // not yet; a miss fails after 15 s).
    const canary = () => provider.patchNode('kubelet-1', { metadata: { labels: { canary: String(Date.now()) } } });
    await waitFor('the policy in force', async () => (await statusOf(canary)) === 403, 15_000, 200).catch(async () =>
      expect(await statusOf(canary)).toBe(403),
    );
    expect(await statusOf(() => provider.patchNode('kubelet-1', { metadata: { labels: { evil: 'true' } } }))).toBe(403);
    expect(await statusOf(() => provider.patchNode('kubelet-1', { spec: { taints: [{ key: 'x', effect: 'NoSchedule' }] } }))).toBe(403);
    expect(await statusOf(() => provider.patchNodeStatus('kubelet-1', { status: { phase: 'Terminated' } }))).toBe(403);
    expect(await statusOf(() => provider.deleteNode('kubelet-1', kubelet.metadata!.uid!))).toBe(403);
    expect(await statusOf(() => provider.createNode({ metadata: { name: 'plain-1' } }))).toBe(403);
    // Adding the edge label to a kubelet's Node does not make it the provider's.
    expect(await statusOf(() => provider.patchNode('kubelet-1', { metadata: { labels: { 'node-role.kubernetes.io/edge': '' } } }))).toBe(
      403,
    );

    const edge = await provider.createNode(newNode('edge-5', 10250, defaultPolicy('edge-5')));
    expect(await statusOf(() => provider.patchNode('edge-5', { metadata: { labels: { site: 'a' } } }))).toBe(0);
    expect(await statusOf(() => provider.patchNodeStatus('edge-5', { status: { phase: 'Running' } }))).toBe(0);
    expect(await provider.deleteNode('edge-5', edge.metadata!.uid!)).toBe(true);
    const after = await provider.getNode('kubelet-1');
    expect(after?.metadata?.labels?.evil).toBeUndefined();
    expect((after?.spec?.taints ?? []).map((t) => t.key)).not.toContain('x');
  }, 60_000);
});

describe('as a node it serves (a client certificate from the CSR API) the provider', () => {
  it('reads the Secret and ConfigMap its pods use, watched one by one, and no other', async () => {
    const edge1 = await nodes.client('edge-1');
    const db = await watchStatus(edge1, 'secret', 'db');
    expect(db.status).toBe(0);
    expect(Buffer.from((db.object as k8s.V1Secret).data!.pw!, 'base64').toString()).toBe('db-1');
    expect((await watchStatus(edge1, 'configmap', 'cfg')).status).toBe(0);
    expect((await watchStatus(edge1, 'secret', 'unused')).status).toBe(403);
    expect((await watchStatus(edge1, 'secret', 'far-secret')).status).toBe(403); // a kubelet's pod's
    expect((await watchStatus(edge1, 'secret', 'their-secret')).status).toBe(403); // another provider's node's
  }, 90_000);

  it("requests tokens only for its pods' ServiceAccounts, bound to those pods", async () => {
    const edge1 = await nodes.client('edge-1');
    expect((await edge1.createToken(NS, 'robot', tokenFor(pods.web!))).token).toMatch(/^ey/);
    expect(await statusOf(() => edge1.createToken(NS, 'other', tokenFor(pods.far!)))).toBe(403);
    expect(await statusOf(() => edge1.createToken(NS, 'theirs', tokenFor(pods.theirs!)))).toBe(403);
    // Its ServiceAccount, bound to a pod on another node: refused by NodeRestriction.
    expect(await statusOf(() => edge1.createToken(NS, 'robot', tokenFor(pods.far!)))).toBe(403);
  }, 90_000);

  it("writes the status of its pods only, and deletes no other node's pod", async () => {
    const edge1 = await nodes.client('edge-1');
    const web = (await provider.getPod(NS, 'web'))!;
    expect(
      await statusOf(() => edge1.replacePodStatus({ ...web, status: { ...web.status, phase: 'Pending', message: 'as edge-1' } })),
    ).toBe(0);
    for (const name of ['far', 'theirs']) {
      const p = (await provider.getPod(NS, name))!;
      expect(await statusOf(() => edge1.replacePodStatus({ ...p, status: { ...p.status, phase: 'Failed' } }))).toBe(403);
      expect(await statusOf(() => edge1.deletePod(NS, name, { uid: p.metadata!.uid!, gracePeriodSeconds: 0 }))).toBe(403);
    }
    expect(await provider.getPod(NS, 'far')).toBeDefined();
    // Its own pod's deletion (what the status manager does once the edge confirmed removal) goes through.
    const own = await admin.createNamespacedPod({ namespace: NS, body: podOn('done', 'edge-1', 'robot', 'db') });
    expect(await statusOf(() => edge1.deletePod(NS, 'done', { uid: own.metadata!.uid!, gracePeriodSeconds: 0 }))).toBe(0);
    expect(await provider.getPod(NS, 'done')).toBeUndefined();
  }, 90_000);
});

describe('a node credential', () => {
  it('is renewed in the background once 80% of its lifetime has passed; the current one serves meanwhile', async () => {
    let offsetMs = 0;
    const clients = new CsrNodeClients({
      kc: api.kubeConfigFor('edgefarm-provider'),
      log,
      credentialSeconds: 600, // the signer backdates by 5 min: 80% of 15 min from notBefore is 7 min from now
      issueTimeoutMs: 60_000,
      pollMs: 100,
      now: () => Date.now() + offsetMs,
    });
    try {
      const first = await clients.client('edge-1');
      expect(await clients.client('edge-1')).toBe(first);
      offsetMs = 8 * 60_000;
      expect(await clients.client('edge-1')).toBe(first); // still valid: served while the new one is issued
      await waitFor('renewed', async () => (await clients.client('edge-1')) !== first, 60_000, 100);
      const renewed = await clients.client('edge-1');
      expect((await renewed.createToken(NS, 'robot', tokenFor(pods.web!))).token).toMatch(/^ey/);
      clients.forget('edge-1');
      expect(await clients.client('edge-1')).not.toBe(renewed); // a node taken on again gets a new one
    } finally {
      await clients.close();
    }
  }, 120_000);

  it('that cannot be requested is a NodeCredentialError with the API error as cause, and no new CSR for a while', async () => {
    const creates: string[] = [];
    const clients = new CsrNodeClients({
      kc: api.kubeConfigFor('outsider'), // no RBAC at all: may not create CSRs
      log,
      credentialSeconds: 3600,
      issueTimeoutMs: 10_000,
      observe: (verb, resource, code) => {
        if (verb === 'create') creates.push(`${resource} ${code}`);
      },
    });
    const first = await clients.client('edge-1').catch((e: unknown) => e);
    expect(first).toBeInstanceOf(NodeCredentialError);
    expect(statusCodeOf((first as NodeCredentialError).cause)).toBe(403);
    expect(await clients.client('edge-1').catch((e: unknown) => e)).toBe(first);
    expect(creates).toEqual(['certificatesigningrequests 403']);
    await clients.close();
  });
});

describe('the pod controller, as the nodes it serves', () => {
  it("delivers a pod's Secret, ConfigMap and token to its node, follows changes, and lets go once the pod is gone", async () => {
    const bus = new FakeBus();
    const membership = new FakeMembership();
    const sequences = new DesiredSequences(bus, membership);
    const podWatch = provider.podWatch();
    const ctl = new PodController({
      kube: provider,
      nodes,
      bus: sequences,
      pods: podWatch,
      served: membership,
      facts: new NodeFacts(),
      log,
    });
    membership.subscribe(sequences);
    membership.subscribe(ctl);
    await ctl.start();
    try {
      await membership.take(['edge-1']);
      const delivered = (prefix: string) => bus.log.some((l) => l.startsWith(prefix));
      await waitFor('web and what it uses published', async () => delivered('pod edge-1 app/web'), 60_000, 100);
      expect(bus.log.filter((l) => !l.startsWith('configmap edge-1 app/kube-root-ca.crt'))).toEqual([
        expect.stringMatching(/^configmap edge-1 app\/cfg@/),
        expect.stringMatching(/^secret edge-1 app\/db@/),
        expect.stringMatching(/^token edge-1 app\/web@/),
        'pod edge-1 app/web',
      ]);
      expect(bus.objects.find((o) => o.kind === 'secret')!.object.data.pw).toEqual(new TextEncoder().encode('db-1'));

      await admin.patchNamespacedSecret(
        { namespace: NS, name: 'db', body: { stringData: { pw: 'db-2' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await waitFor('the changed Secret published', async () => bus.objects.filter((o) => o.kind === 'secret').length === 2, 30_000, 100);
      expect(bus.objects.filter((o) => o.kind === 'secret').at(-1)!.object.data.pw).toEqual(new TextEncoder().encode('db-2'));

      await admin.deleteNamespacedPod({ namespace: NS, name: 'web', gracePeriodSeconds: 0 });
      await waitFor('tombstones', async () => delivered('-secret edge-1 app/db'), 30_000, 100);
      expect(bus.log).toEqual(expect.arrayContaining(['-pod edge-1 app/web', '-configmap edge-1 app/cfg', '-token edge-1 app/web']));
    } finally {
      await ctl.stop();
    }
  }, 120_000);
});

describe('its kubelet serving certificate (EF_KUBELET_SERVING_CSR=1)', () => {
  const csrBody = (node: string, signerName: string, usages: string[]): k8s.V1CertificateSigningRequest => ({
    metadata: { generateName: 'test-serving-' },
    spec: {
      signerName,
      usages,
      request: Buffer.from(servingCsr(node, ['192.0.2.9']).csrPem).toString('base64'),
    },
  });
  const approval = (csr: k8s.V1CertificateSigningRequest): k8s.V1CertificateSigningRequest => ({
    ...csr,
    status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'test' }] },
  });

  it('comes from the cluster: its own CSR, approved by itself, signed with the cluster CA, naming its address', async () => {
    const serving = new ServingCertificate({
      kc: api.kubeConfigFor('edgefarm-provider'),
      log,
      name: 'provider-1',
      ips: ['192.0.2.2'],
      lifetimeSeconds: 3600,
      timeoutMs: 60_000,
    });
    const pair = await serving.obtain();
    const cert = new X509Certificate(pair.cert);
    expect(cert.subject).toContain('CN=system:node:provider-1');
    expect(cert.subjectAltName).toBe('IP Address:192.0.2.2');
    expect(cert.verify(new X509Certificate(await readFile(api.caFile)).publicKey)).toBe(true);
    expect(pair.notAfterMs).toBeGreaterThan(Date.now());
    serving.stop();
  });

  it('approves no CSR someone else requested, and none for another signer', async () => {
    const certs = api.kubeConfigFor().makeApiClient(k8s.CertificatesV1Api);
    const theirs = await certs.createCertificateSigningRequest({
      body: csrBody('kubelet-1', KUBELET_SERVING_SIGNER, ['digital signature', 'server auth']),
    });
    const asProvider = api.kubeConfigFor('edgefarm-provider').makeApiClient(k8s.CertificatesV1Api);
    expect(
      await statusOf(() => asProvider.replaceCertificateSigningRequestApproval({ name: theirs.metadata!.name!, body: approval(theirs) })),
    ).toBe(403);
    const clientCsr = await asProvider.createCertificateSigningRequest({
      body: csrBody('provider-1', 'kubernetes.io/kube-apiserver-client', ['digital signature', 'client auth']),
    });
    expect(
      await statusOf(() =>
        asProvider.replaceCertificateSigningRequestApproval({ name: clientCsr.metadata!.name!, body: approval(clientCsr) }),
      ),
    ).toBe(403);
    const outsider = api.kubeConfigFor('outsider').makeApiClient(k8s.CertificatesV1Api);
    expect(
      await statusOf(() =>
        outsider.createCertificateSigningRequest({ body: csrBody('x', KUBELET_SERVING_SIGNER, ['digital signature', 'server auth']) }),
      ),
    ).toBe(403);
  });
});
