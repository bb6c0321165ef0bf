/**
 * Test bed of the kubelet API: a throwaway PKI made with openssl (CA, serving certificate for 127.0.0.1, an
 * apiserver-like client certificate in system:masters and one of a user without rights), a KubeletServer on
 * loopback backed by {@link FakeEdgeStreams} and the fake KubeClient's TokenReview/SubjectAccessReview (or the
 * reviews of the `kube` given: a real apiserver's), and pods
 * `default/web` (container app, node edge-1) and `default/other` (node edge-9, not served).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import type { KubeClient, Pod } from '../kube/client.js';
import { BoundPods } from '../kube/bound-pods.js';
import { FakeKubeClient } from '../kube/fake.js';
import { KubeletAuth } from './auth.js';
import { FakeEdgeStreams } from './fake-streams.js';
import { KubeletServer, type KubeletServerOptions } from './server.js';

export interface TestPki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** O=system:masters, CN=kube-apiserver-kubelet-client */
  adminCert: string;
  adminKey: string;
  /** CN=nobody */
  userCert: string;
  userKey: string;
}

export function makePki(): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ef-kubelet-pki-'));
  const f = (n: string) => path.join(dir, n);
  const ossl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  ossl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.crt'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  );
  const leaf = (name: string, subj: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', subj, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
    ossl(
      'x509',
      '-req',
      '-days',
      '1',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-extfile',
      f(`${name}.ext`),
      '-out',
      f(`${name}.crt`),
    );
  };
  leaf('server', '/CN=edgefarm-provider', 'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  leaf('admin', '/O=system:masters/CN=kube-apiserver-kubelet-client', 'extendedKeyUsage=clientAuth\n');
  leaf('user', '/CN=nobody', 'extendedKeyUsage=clientAuth\n');
  return {
    dir,
    ca: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    adminCert: f('admin.crt'),
    adminKey: f('admin.key'),
    userCert: f('user.crt'),
    userKey: f('user.key'),
  };
}

export function testPod(name: string, node: string, containers = ['app']): Pod {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: { nodeName: node, containers: containers.map((c) => ({ name: c, image: 'busybox' })) },
  };
}

export interface KubeletBed {
  pki: TestPki;
  server: KubeletServer;
  streams: FakeEdgeStreams;
  kube: FakeKubeClient;
  pods: Map<string, Pod>;
  served: Set<string>;
  /** https://127.0.0.1:<shared port> */
  url: string;
  stop(): Promise<void>;
}

export async function startKubeletBed(
  opts: { log?: Logger; kube?: Pick<KubeClient, 'reviewToken' | 'reviewAccess'> } & Pick<
    KubeletServerOptions,
    'nodePorts' | 'streamCreationTimeoutMs' | 'maxSessions' | 'maxStatsRequests' | 'streamingIdleTimeoutMs' | 'maxPortForwardPorts'
  > = {},
): Promise<KubeletBed> {
  const log = opts.log ?? pino({ level: 'silent' });
  const pki = makePki();
  const streams = new FakeEdgeStreams();
  const kube = new FakeKubeClient();
  const pods = new Map<string, Pod>([
    ['default/web', testPod('web', 'edge-1')],
    ['default/other', testPod('other', 'edge-9')],
  ]);
  const served = new Set(['edge-1']);
  const server = new KubeletServer({
    streams,
    auth: new KubeletAuth({ kube: opts.kube ?? kube, log }),
    log,
    served: { serves: (node) => served.has(node), served: () => [...served] },
    pods: new BoundPods({ get: (ns, name) => pods.get(`${ns}/${name}`), list: () => [...pods.values()] }),
    tls: { cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), clientCA: readFileSync(pki.ca) },
    host: '127.0.0.1',
    port: 0,
    nodePorts: opts.nodePorts,
    streamCreationTimeoutMs: opts.streamCreationTimeoutMs,
    maxSessions: opts.maxSessions,
    maxStatsRequests: opts.maxStatsRequests,
    streamingIdleTimeoutMs: opts.streamingIdleTimeoutMs,
    maxPortForwardPorts: opts.maxPortForwardPorts,
  });
  await server.start();
  return {
    pki,
    server,
    streams,
    kube,
    pods,
    served,
    url: `https://127.0.0.1:${server.port}`,
    stop: async () => {
      await server.stop();
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
}
