/**
 * The kubelet API's and /metrics' authentication and authorization against a real kube-apiserver (TokenReview of
 * static bearer tokens, SubjectAccessReview through RBAC): a user allowed only `get nodes/stats` cannot reach exec
 * through a path with dot segments; anonymous callers get 401 whether the pod exists or not; /metrics with
 * EF_METRICS_AUTH lets in only a subject allowed `get` on the non-resource URL /metrics.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { KubeApiServer } from '@edgefarm/testing';
import { pino } from 'pino';
import { httpServer } from '../http.js';
import { RealKubeClient } from '../kube/client.js';
import { KubeletAuth } from './auth.js';
import { startKubeletBed, type KubeletBed } from './testing.js';

const T = 120_000;
let dir: string;
let api: KubeApiServer;
let bed: KubeletBed;

const RBAC = `
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: node-stats-reader }
rules: [{ apiGroups: [""], resources: [nodes/stats], verbs: [get] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: stats-reader }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-stats-reader }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: stats-reader }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: metrics-scraper }
rules: [{ nonResourceURLs: [/metrics], verbs: [get] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: metrics-scraper }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metrics-scraper }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: scraper }]
`;

const tokenOf = (user: string) => api.kubeConfigFor(user).getCurrentUser()!.token!;

/** The status line of an upgrade request sent with a bearer token (or none). */
async function upgradeStatus(target: string, token?: string): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port: bed.server.port, rejectUnauthorized: false });
  await new Promise((r) => socket.once('secureConnect', r));
  const headers = [
    `POST ${target} HTTP/1.1`,
    'Host: kubelet',
    'Connection: Upgrade',
    'Upgrade: SPDY/3.1',
    'X-Stream-Protocol-Version: v4.channel.k8s.io',
    ...(token ? [`Authorization: Bearer ${token}`] : []),
  ];
  socket.write(`${headers.join('\r\n')}\r\n\r\n`);
  const head = await new Promise<string>((resolve) => {
    let got = '';
    socket.on('data', (c: Buffer) => {
      got += c.toString('latin1');
      if (got.includes('\r\n')) resolve(got.split('\r\n')[0]!);
    });
    socket.on('close', () => resolve(got.split('\r\n')[0]!));
  });
  socket.destroy();
  return head;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-kubelet-auth-'));
  api = await KubeApiServer.start({ dir: path.join(dir, 'kube'), users: [{ user: 'stats-reader' }, { user: 'scraper' }] });
  await writeFile(path.join(dir, 'rbac.yaml'), RBAC);
  await api.apply(path.join(dir, 'rbac.yaml'));
  bed = await startKubeletBed({ kube: new RealKubeClient(api.kubeConfigFor()) });
}, T);

afterAll(async () => {
  await bed?.stop();
  await api?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, T);

describe('kubelet API on a real apiserver', () => {
  it(
    'a user allowed only get nodes/stats: 400 for /stats/../exec (was 101), 403 for /exec',
    async () => {
      // The RBAC is what the test assumes: the apiserver allows stats and denies proxy to this user.
      const sar = api.kubeConfigFor().makeApiClient(k8s.AuthorizationV1Api);
      const can = async (subresource: string) =>
        (
          await sar.createSubjectAccessReview({
            body: { spec: { user: 'stats-reader', resourceAttributes: { verb: 'get', resource: 'nodes', subresource, name: 'edge-1' } } },
          })
        ).status?.allowed;
      expect(await can('stats')).toBe(true);
      expect(await can('proxy')).toBe(false);
      const token = tokenOf('stats-reader');
      for (const target of [
        '/stats/../exec/default/web/app?command=id&output=1',
        '/stats/%2e%2e/exec/default/web/app?command=id&output=1',
        '/stats/..%2fexec/default/web/app?command=id&output=1',
      ]) {
        expect(await upgradeStatus(target, token)).toBe('HTTP/1.1 400 Bad Request');
      }
      expect(await upgradeStatus('/exec/default/web/app?command=id&output=1', token)).toBe('HTTP/1.1 403 Forbidden');
      expect(await bed.server.metrics.rejectedCount('bad_path')).toBe(3);
      expect(await bed.server.metrics.rejectedCount('forbidden')).toBe(1);
    },
    T,
  );

  it(
    'anonymous and unknown tokens: 401 for a pod that exists and for one that does not',
    async () => {
      for (const pod of ['web', 'nope']) {
        expect(await upgradeStatus(`/exec/default/${pod}/app?command=id&output=1`)).toBe('HTTP/1.1 401 Unauthorized');
        expect(await upgradeStatus(`/exec/default/${pod}/app?command=id&output=1`, 'not-a-token')).toBe('HTTP/1.1 401 Unauthorized');
      }
    },
    T,
  );
});

describe('/metrics with EF_METRICS_AUTH on a real apiserver', () => {
  it(
    'serves a subject allowed get /metrics; 403 for another, 401 without a token',
    async () => {
      const http = httpServer({
        notReady: () => undefined,
        metrics: { text: async () => 'up 1\n', contentType: 'text/plain' },
        metricsAuth: new KubeletAuth({ kube: new RealKubeClient(api.kubeConfigFor()), log: pino({ level: 'silent' }) }),
      });
      const scrape = (token?: string) =>
        http.inject({ method: 'GET', url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect((await scrape(tokenOf('scraper'))).statusCode).toBe(200);
      expect((await scrape(tokenOf('stats-reader'))).statusCode).toBe(403);
      expect((await scrape()).statusCode).toBe(401);
      expect((await scrape('not-a-token')).statusCode).toBe(401);
      await http.close();
    },
    T,
  );
});
