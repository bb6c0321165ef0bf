/**
 * `edgefarm status`, `doctor NODE` and `doctor --dir` against real components: the bed of registrar-bed.fixtures.ts
 * (kube-apiserver + etcd with manifests/crds and the registrar's RBAC, a real registrar over TLS), a real hub
 * nats-server whose leafnode listener has a certificate of the fleet CA, a site joined with `edgefarm join` and its
 * nats-server started from the nats-site.conf the join wrote. The provider is not run: the test writes what it
 * would (the EdgeNode's status, the Node, a provider pod's status) through the API.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { EDGENODE_API, FLEET_NAMESPACE } from '@edgefarm/registrar';
import { NATS_SERVER, freePort, makeCert, spawnLogged, waitFor, type ManagedProcess } from '@edgefarm/testing';
import type { CheckResult } from './checks.js';
import { EXIT } from './errors.js';
import { startRegistrarBed, type RegistrarBed } from './registrar-bed.fixtures.js';
import type { StatusRow } from './status.js';

const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
let bed: RegistrarBed;
let hub: ManagedProcess | undefined;
let site: ManagedProcess | undefined;
let siteDir: string;
let monitor: number;

const checksOf = (out: string) => (JSON.parse(out) as { checks: CheckResult[] }).checks;
const statusOf = (checks: CheckResult[], name: string) => checks.filter((c) => c.check === name).map((c) => c.status);

async function healthz(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/healthz`)).ok;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  const leafPort = await freePort();
  bed = await startRegistrarBed('ef-status-', [`tls://127.0.0.1:${leafPort}`]);
  const cert = await makeCert(bed.dir, bed.ca, 'hub', { sans: 'IP:127.0.0.1' });
  const [client, hubMonitor] = [await freePort(), await freePort()];
  const conf = path.join(bed.dir, 'hub.conf');
  await writeFile(
    conf,
    `server_name: hub\nlisten: "127.0.0.1:${client}"\nhttp: "127.0.0.1:${hubMonitor}"\n` +
      `leafnodes { listen: "127.0.0.1:${leafPort}", tls { cert_file: "${cert.cert}", key_file: "${cert.key}" } }\n`,
  );
  hub = spawnLogged('hub', NATS_SERVER, ['-c', conf], { logFile: path.join(bed.dir, 'hub.log') });
  await waitFor('hub healthz', () => healthz(hubMonitor), 20_000);

  siteDir = path.join(bed.dir, 'site', 'edgefarm');
  monitor = await freePort();
  const joined = await bed.cli([
    'join',
    '--token',
    await bed.token('gw-1'),
    '--hub',
    bed.registrarUrl,
    '--dir',
    siteDir,
    '--listen',
    `127.0.0.1:${await freePort()}`,
    '--monitor',
    `127.0.0.1:${monitor}`,
    '--store-dir',
    path.join(bed.dir, 'site', 'js'),
  ]);
  expect(joined).toMatchObject({ code: EXIT.ok });
  site = spawnLogged('site', NATS_SERVER, ['-c', path.join(siteDir, 'nats-site.conf')], { logFile: path.join(bed.dir, 'site.log') });
  await waitFor('site healthz', () => healthz(monitor), 20_000);
}, 180_000);

afterAll(async () => {
  await site?.stop();
  await hub?.stop();
  await bed?.stop();
});

/** What the provider writes for a connected node: the EdgeNode's status, a Ready Node, its own Running pod. */
async function provide(node: string): Promise<void> {
  const core = bed.admin.makeApiClient(k8s.CoreV1Api);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await bed.admin.makeApiClient(k8s.CustomObjectsApi).patchClusterCustomObjectStatus(
    {
      ...EDGENODE_API,
      name: node,
      body: {
        status: { connected: true, lastHeartbeatTime: now, podCount: 1, desiredSequence: 4, appliedSequence: 4, agentVersion: '0.1.0' },
      },
    },
    mergePatch,
  );
  await core.createNode({ body: { metadata: { name: node } } });
  const ready = { type: 'Ready', status: 'True', reason: 'EdgeAgentReady', lastHeartbeatTime: now, lastTransitionTime: now } as never;
  await core.patchNodeStatus(
    { name: node, body: { status: { conditions: [ready], addresses: [{ type: 'InternalIP', address: '192.0.2.9' }] } } },
    mergePatch,
  );
}

async function providerPod(): Promise<void> {
  const core = bed.admin.makeApiClient(k8s.CoreV1Api);
  const name = 'edgefarm-provider-0';
  // no controller-manager here makes the namespace's default ServiceAccount
  await core.createNamespacedServiceAccount({ namespace: FLEET_NAMESPACE, body: { metadata: { name: 'default' } } });
  await core.createNamespacedPod({
    namespace: FLEET_NAMESPACE,
    body: {
      metadata: { name, labels: { 'app.kubernetes.io/name': 'edgefarm-provider' } },
      spec: { containers: [{ name: 'provider', image: 'edgefarm' }] },
    },
  });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await core.patchNamespacedPodStatus(
    {
      namespace: FLEET_NAMESPACE,
      name,
      body: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: now }] } } as never,
    },
    mergePatch,
  );
}

describe('edgefarm status and doctor against a real kube-apiserver, registrar, hub and site server', () => {
  it('status and doctor NODE: a joined node the provider has not seen, then a connected Ready one', async () => {
    const before = await bed.cli(['status', '-o', 'json']);
    expect(before.code).toBe(EXIT.unhealthy);
    const [row] = JSON.parse(before.out) as StatusRow[];
    expect(row).toMatchObject({ name: 'gw-1', connected: false, ready: null, healthy: false });
    expect(Date.parse(row!.credentialsExpireAt!)).toBeGreaterThan(Date.now() + 6 * 86400_000);
    const doctorBefore = await bed.cli(['doctor', 'gw-1', '-o', 'json']);
    expect(doctorBefore.code).toBe(EXIT.failed);
    const cb = checksOf(doctorBefore.out);
    expect(statusOf(cb, 'edgenode')).toEqual(['ok']);
    expect(statusOf(cb, 'identity')).toEqual(['ok']);
    expect(statusOf(cb, 'connected')).toEqual(['fail']);
    expect(statusOf(cb, 'node')).toEqual(['fail']);
    expect(statusOf(cb, 'provider')).toEqual(['fail']);

    await provide('gw-1');
    await providerPod();
    const t0 = performance.now();
    const after = await bed.cli(['status', 'gw-1']);
    console.log(`edgefarm status took ${(performance.now() - t0).toFixed(0)} ms against the real API server`);
    expect(after.err).toBe('');
    expect(after.code).toBe(EXIT.ok);
    expect(after.out).toMatch(/^gw-1\s+true\s+\d+s ago\s+0\s+1\s+0\.1\.0\s+in 6d\s+True$/m);
    // one shard Lease: every node is the holder's
    await bed.admin.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({
      namespace: FLEET_NAMESPACE,
      body: {
        metadata: { name: 'edgefarm-shard-0', labels: { 'edgefarm.io/provider-lease': 'shard', 'edgefarm.io/shard': '0' } },
        spec: { holderIdentity: 'edgefarm-provider-0' },
      },
    });
    expect((await bed.cli(['status', '-o', 'wide'])).out).toMatch(/192\.0\.2\.9\s+edgefarm-provider-0\s+U/);
    expect((await bed.cli(['status', 'gw-1', 'gw-404'])).code).toBe(EXIT.notFound);
    const doctor = await bed.cli(['doctor', 'gw-1']);
    expect(doctor.out).toContain('✓ provider: edgefarm-provider-0 Running, Ready');
    expect(doctor.code).toBe(EXIT.ok);

    // site config from the cloud names the same leaf URLs and node key the join wrote
    const cfg = await bed.cli(['site', 'config', 'gw-1', '--dir', siteDir, '-o', 'json']);
    expect(cfg.code).toBe(EXIT.ok);
    expect((JSON.parse(cfg.out) as { hubLeafUrls: string[] }).hubLeafUrls).toEqual(bed.hubLeafUrls);
  }, 60_000);

  it('doctor --dir on the joined directory: files, credentials, registrar, clock, hub leaf, site server, containerd', async () => {
    const t0 = performance.now();
    const r = await bed.cli(['doctor', '--dir', siteDir, '--cri-endpoint', path.join(bed.dir, 'no-containerd.sock'), '-o', 'json']);
    console.log(`edgefarm doctor --dir took ${(performance.now() - t0).toFixed(0)} ms`);
    const checks = checksOf(r.out);
    expect(statusOf(checks, 'join files')).toEqual(['ok']);
    expect(statusOf(checks, 'credentials')).toEqual(['ok']);
    expect(statusOf(checks, 'registrar')).toEqual(['ok']);
    expect(statusOf(checks, 'clock')).toEqual(['ok']);
    // a real TLS handshake with the hub's leafnode listener, verified against the join's ca.pem
    expect(checks.find((c) => c.check === 'hub leaf')).toMatchObject({ status: 'ok', detail: expect.stringContaining('server hub, TLS') });
    const server = checks.filter((c) => c.check === 'site nats-server');
    expect(server[0]).toMatchObject({ status: 'ok', detail: expect.stringContaining('/healthz ok') });
    // no agent ran: JetStream has no streams yet
    expect(server[1]).toMatchObject({ status: 'warn', hint: expect.stringContaining('agent') });
    expect(statusOf(checks, 'containerd')).toEqual(['fail']);
    expect(r.code).toBe(EXIT.failed);
    expect(r.err).toContain('✓ hub leaf');

    // a clock 40 s ahead warns; 10 minutes fails
    const ahead = checksOf((await bed.cli(['doctor', '--dir', siteDir, '-o', 'json'], () => Date.now() + 40_000)).out);
    expect(statusOf(ahead, 'clock')).toEqual(['warn']);
    const far = checksOf((await bed.cli(['doctor', '--dir', siteDir, '-o', 'json'], () => Date.now() + 10 * 60_000)).out);
    expect(statusOf(far, 'clock')).toEqual(['fail']);

    // the site server down: a warning with the command that starts it
    await site!.stop();
    site = undefined;
    const down = checksOf((await bed.cli(['doctor', '--dir', siteDir, '-o', 'json'])).out);
    expect(down.find((c) => c.check === 'site nats-server')).toMatchObject({
      status: 'warn',
      hint: expect.stringContaining('nats-server -c'),
    });
  }, 60_000);
});
