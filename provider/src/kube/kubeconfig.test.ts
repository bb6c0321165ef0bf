import https from 'node:https';
import { readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { makePki, type TestPki } from '../kubelet/testing.js';
import { PooledKubeConfig } from './kubeconfig.js';

// An apiserver stand-in with mutual TLS that counts the TLS connections its clients open.
let pki: TestPki;
let server: https.Server;
let url: string;
let handshakes = 0;
let requests = 0;

beforeAll(async () => {
  pki = makePki();
  server = https.createServer(
    {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      requests++;
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/api/v1/namespaces'))
        res.end(JSON.stringify({ apiVersion: 'v1', kind: 'NamespaceList', metadata: {}, items: [] }));
      else res.writeHead(404).end(JSON.stringify({ kind: 'Status', code: 404 }));
    },
  );
  server.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(pki.dir, { recursive: true, force: true });
});

beforeEach(() => {
  handshakes = 0;
  requests = 0;
  server.closeAllConnections();
});

function load(kc: k8s.KubeConfig, cert = pki.adminCert, key = pki.adminKey): k8s.KubeConfig {
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, caFile: pki.ca, skipTLSVerify: false }],
    users: [{ name: 'u', certFile: cert, keyFile: key }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

// undici may open a second connection for the request right after the first (the first socket is not yet back in
// the pool when it is dispatched); from then on they are reused: the count does not grow with the requests.
test('sequential and concurrent requests share connections: TLS handshakes do not grow with requests', async () => {
  const kc = load(new PooledKubeConfig()) as PooledKubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (let i = 0; i < 20; i++) expect((await core.listNamespace()).kind).toBe('NamespaceList');
  expect(handshakes).toBeLessThanOrEqual(2);
  const sequential = handshakes;
  await Promise.all(Array.from({ length: 5 }, () => core.listNamespace()));
  for (let i = 0; i < 20; i++) await core.listNamespace();
  expect(requests).toBe(45);
  expect(handshakes).toBeLessThanOrEqual(sequential + 5);
  await kc.close();
});

test('the library on its own opens a connection per request (why PooledKubeConfig exists)', async () => {
  const core = load(new k8s.KubeConfig()).makeApiClient(k8s.CoreV1Api);
  for (let i = 0; i < 4; i++) await core.listNamespace();
  expect(handshakes).toBe(4);
});

test('a rejected client certificate is an error on every request, not a poisoned pool', async () => {
  const other = makePki(); // a certificate from another CA: the server refuses the handshake
  try {
    const kc = load(new PooledKubeConfig(), other.adminCert, other.adminKey) as PooledKubeConfig;
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await expect(core.listNamespace()).rejects.toThrow();
    await expect(core.listNamespace()).rejects.toThrow();
    expect(requests).toBe(0);
    await kc.close();
  } finally {
    rmSync(other.dir, { recursive: true, force: true });
  }
});

test('an API error comes back as the library reports it and the pool goes on serving', async () => {
  const kc = load(new PooledKubeConfig()) as PooledKubeConfig;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await expect(core.readNode({ name: 'nope' })).rejects.toMatchObject({ code: 404 });
  for (let i = 0; i < 10; i++) expect((await core.listNamespace()).kind).toBe('NamespaceList');
  expect(handshakes).toBeLessThanOrEqual(2);
  await kc.close();
});
