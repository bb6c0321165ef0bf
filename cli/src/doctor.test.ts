// `edgefarm doctor --dir` on a fake site (FakeSiteProbe) and `edgefarm doctor NODE` on the fake API.
import path from 'node:path';
import { formatCreds } from '@edgefarm/identity';
import { FLEET_NAMESPACE } from '@edgefarm/registrar';
import { createUser } from '@nats-io/nkeys';
import { fc, fuzzAsyncProperty, hostileString } from '@edgefarm/testing/fuzz';
import type { CheckResult } from './checks.js';
import { NOW, fakeCli } from './cli.fixtures.js';
import { jwtExpiry, monitorOf, parseEnvFile } from './doctor-site.js';
import { EXIT } from './errors.js';
import type { FakeSiteProbe } from './probe-fake.js';
import { TEST_CA } from './test-ca.fixtures.js';

const CA = TEST_CA;
const DIR = '/site/edgefarm';
const REGISTRAR = 'https://reg.example:8443';
const LEAVES = ['tls://hub-0:7422', 'tls://hub-1:7422'];
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const jwt = (expMs: number) => `${b64({ typ: 'JWT', alg: 'ed25519-nkey' })}.${b64({ exp: Math.floor(expMs / 1000) })}.c2ln`;

/** A joined directory as `edgefarm join` writes it, with credentials expiring at `expMs`. */
function site(probe: FakeSiteProbe, expMs = NOW + 6 * 86400_000): void {
  const node = createUser();
  const seed = new TextDecoder().decode(node.getSeed());
  const at = (f: string) => path.join(DIR, f);
  const nodeJson = {
    node: 'gw-1',
    wireId: node.getPublicKey(),
    registrarUrl: REGISTRAR,
    hubLeafUrls: LEAVES,
    domain: 'site-gw-1',
    issuedAt: new Date(NOW - 86400_000).toISOString(),
    expiresAt: new Date(expMs).toISOString(),
  };
  probe.files.set(at('node.json'), JSON.stringify(nodeJson));
  probe.files.set(at('ca.pem'), CA);
  probe.files.set(at('node.creds'), formatCreds(jwt(expMs), seed));
  probe.files.set(at('node.nk'), `${seed}\n`);
  probe.files.set(at('agent.nk'), `${new TextDecoder().decode(createUser().getSeed())}\n`);
  probe.files.set(at('nats-site.conf'), 'listen: "127.0.0.1:4222"\nhttp: "127.0.0.1:8222"\nleafnodes {}\n');
  probe.files.set(at('agent.env'), `EF_NODE_NAME=gw-1\nEF_CRI_ENDPOINT=/run/ctd.sock\n`);
  probe.registrars.set(REGISTRAR, { serverMs: NOW - 2_000, roundTripMs: 10 });
  for (const u of LEAVES) probe.leaves.set(u, 'TLS TLSv1.3, certificate hub');
  probe.http.set('http://127.0.0.1:8222/healthz', { status: 200, body: '{"status":"ok"}' });
  probe.http.set('http://127.0.0.1:8222/jsz', { status: 200, body: '{"streams":4}' });
  probe.http.set('http://127.0.0.1:8222/leafz', { status: 200, body: '{"leafs":[{}]}' });
  probe.cri.set('/run/ctd.sock', { runtimeName: 'containerd', runtimeVersion: '2.1.0' });
}

const byCheck = (out: string) => (JSON.parse(out) as { checks: CheckResult[] }).checks;

describe('edgefarm doctor --dir (at the site)', () => {
  it('all good: every check ✓, exit 0, in order, progress on stdout', async () => {
    const { probe, cli } = fakeCli();
    site(probe);
    const r = await cli('doctor', '--dir', DIR);
    expect(r.err).toBe('');
    expect(r.code).toBe(EXIT.ok);
    const marks = r.out.split('\n').filter((l) => /^[✓!✗-] /.test(l));
    expect(marks.map((l) => l.split(':')[0])).toEqual([
      '✓ join files',
      '✓ credentials',
      '✓ registrar',
      '✓ clock',
      '✓ hub leaf',
      '✓ hub leaf',
      '✓ site nats-server',
      '✓ site nats-server',
      '✓ site nats-server',
      '✓ containerd',
    ]);
    expect(r.out).toContain('JetStream: 4 stream(s)');
    expect(r.out).toContain('/run/ctd.sock: containerd 2.1.0');
    expect(r.out).toMatch(/all good\n$/);
  });

  it('warns (exit 0) on credentials under 2 days, a 40 s clock, no streams, a server not running', async () => {
    const { probe, cli } = fakeCli();
    site(probe, NOW + 86400_000);
    probe.registrars.set(REGISTRAR, { serverMs: NOW - 40_000, roundTripMs: 10 });
    probe.http.set('http://127.0.0.1:8222/jsz', { status: 200, body: '{"streams":0}' });
    const r = await cli('doctor', '--dir', DIR, '-o', 'json');
    expect(r.code).toBe(EXIT.ok);
    const checks = byCheck(r.out);
    expect(checks.filter((c) => c.status === 'warn').map((c) => c.check)).toEqual(['credentials', 'clock', 'site nats-server']);
    expect(checks.every((c) => c.status !== 'warn' || c.hint)).toBe(true);
    expect(r.err).toContain('! clock: 40.0 s off');
    probe.http.clear();
    const down = byCheck((await cli('doctor', '--dir', DIR, '-o', 'json')).out).find((c) => c.check === 'site nats-server');
    expect(down).toMatchObject({ status: 'warn', hint: `start it: nats-server -c ${DIR}/nats-site.conf` });
  });

  it('fails (exit 1) on expired credentials, an unreachable registrar or leaf, a 10 min clock, no containerd', async () => {
    const { probe, cli } = fakeCli();
    site(probe, NOW - 1000);
    probe.leaves.set(LEAVES[1]!, new Error('TLS: self-signed certificate in certificate chain'));
    probe.cri.clear();
    let r = await cli('doctor', '--dir', DIR, '-o', 'yaml');
    expect(r.code).toBe(EXIT.failed);
    expect(r.out).toMatch(/^ok: false\nfailed: 3\n/);
    expect(r.err).toContain('✗ credentials: expired');
    expect(r.err).toContain(`✗ hub leaf: ${LEAVES[1]}: TLS: self-signed`);
    expect(r.err).toContain('✗ containerd: /run/ctd.sock');
    probe.registrars.set(REGISTRAR, { serverMs: NOW - 10 * 60_000, roundTripMs: 10 });
    expect((await cli('doctor', '--dir', DIR, '--cri-endpoint', '/run/ctd.sock')).out).toContain('✗ clock: 600.0 s off');
    probe.registrars.set(REGISTRAR, new Error('connect ECONNREFUSED'));
    r = await cli('doctor', '--dir', DIR);
    expect(r.out).toContain(`✗ registrar: ${REGISTRAR}: connect ECONNREFUSED`);
    expect(r.out).toContain('- clock: the registrar was not reached');
  });

  it('a missing or malformed join file fails with the rejoin hint; the checks that need it are skipped', async () => {
    const { probe, cli } = fakeCli();
    const r = await cli('doctor', '--dir', DIR, '-o', 'json');
    expect(r.code).toBe(EXIT.failed);
    const checks = byCheck(r.out);
    expect(checks.filter((c) => c.check === 'join files')).toHaveLength(7);
    expect(checks.find((c) => c.check === 'join files')!.hint).toContain('edgefarm join --force');
    expect(checks.find((c) => c.check === 'registrar')!.status).toBe('skip');
    site(probe);
    probe.files.set(`${DIR}/node.json`, '{"node":"gw-1"}');
    probe.files.set(`${DIR}/agent.env`, 'rm -rf /\n');
    const bad = byCheck((await cli('doctor', '--dir', DIR, '-o', 'json')).out).filter((c) => c.status === 'fail');
    expect(bad.map((c) => c.detail)).toEqual([
      expect.stringContaining('node.json: wireId is missing or malformed'),
      expect.stringContaining('agent.env: line 1 is not KEY=VALUE'),
      // without agent.env's EF_CRI_ENDPOINT, the default socket
      expect.stringContaining('/run/containerd/containerd.sock'),
    ]);
  });

  it('prints what servers and files say without their control characters', async () => {
    const { probe, cli } = fakeCli();
    site(probe);
    probe.leaves.set(LEAVES[0]!, new Error('bad\u001b[31m red\r\nINJECTED'));
    const r = await cli('doctor', '--dir', DIR);
    expect(r.out).not.toContain('\u001b');
    expect(r.out).toContain('bad [31m red INJECTED');
  });

  it('parses the join files defensively', () => {
    expect(jwtExpiry(jwt(NOW))).toBe(Math.floor(NOW / 1000) * 1000);
    for (const j of ['', 'a', 'a.b.c', `a.${b64({ exp: 'x' })}.c`, `a.${b64(null)}.c`]) expect(jwtExpiry(j)).toBeUndefined();
    expect(parseEnvFile('# c\n\nA=1\nB_2=x=y\n')).toEqual({ A: '1', B_2: 'x=y' });
    expect(() => parseEnvFile('a=1')).toThrow('line 1');
    expect(monitorOf('http: "127.0.0.1:8222"\n')).toBe('127.0.0.1:8222');
    expect(monitorOf('http: "a b"\nhttps: "x"')).toBeUndefined();
  });

  it('hostile values: --timeout, --cri-endpoint, -o and NODE with --dir end with the usage exit code', async () => {
    const { probe, cli } = fakeCli();
    site(probe);
    await fuzzAsyncProperty(
      'cli.doctor values',
      [fc.oneof(hostileString(), fc.constantFrom('0', '301', '1.5', '-1', '')), hostileString()],
      async (t, o) => {
        const code = (await cli('doctor', '--dir', DIR, '--timeout', t, '-o', o)).code;
        return code === EXIT.usage || (/^\d{1,3}$/.test(t) && ['table', 'json', 'yaml'].includes(o));
      },
    );
    expect((await cli('doctor', 'gw-1', '--dir', DIR)).code).toBe(EXIT.usage);
    expect((await cli('doctor', '--dir', DIR, '--cri-endpoint', 'a b')).code).toBe(EXIT.usage);
    expect((await cli('doctor', 'Bad_Node')).code).toBe(EXIT.usage);
  });
});

describe('edgefarm doctor NODE (from the cloud)', () => {
  it('all good, then each failure with its hint', async () => {
    const { kube, cli } = fakeCli();
    const key = createUser().getPublicKey();
    kube.edgeNodes.set('gw-1', {
      metadata: { name: 'gw-1' },
      status: {
        connected: true,
        lastHeartbeatTime: new Date(NOW - 60_000).toISOString(),
        desiredSequence: 5,
        appliedSequence: 5,
        identity: { publicKey: key, issuedAt: 'x', expiresAt: new Date(NOW + 5 * 86400_000).toISOString() },
      },
    });
    kube.nodes.set('gw-1', { metadata: { name: 'gw-1' }, status: { conditions: [{ type: 'Ready', status: 'True' }] } });
    const pod = (name: string, phase: string, ready: string) => ({
      metadata: { name, labels: { 'app.kubernetes.io/name': 'edgefarm-provider' } },
      status: { phase, conditions: [{ type: 'Ready', status: ready }] },
    });
    kube.pods.set(FLEET_NAMESPACE, [pod('edgefarm-provider-a', 'Running', 'True')]);
    const good = await cli('doctor', 'gw-1');
    expect(good.code).toBe(EXIT.ok);
    expect(
      good.out
        .split('\n')
        .filter((l) => l.startsWith('✓ '))
        .map((l) => l.split(':')[0]),
    ).toEqual(['✓ edgenode', '✓ identity', '✓ connected', '✓ lag', '✓ node', '✓ provider']);

    kube.edgeNodes.get('gw-1')!.status!.connected = false;
    kube.edgeNodes.get('gw-1')!.status!.appliedSequence = 3;
    kube.nodes.get('gw-1')!.status!.conditions = [{ type: 'Ready', status: 'Unknown', message: 'no heartbeat' }];
    kube.pods.set(FLEET_NAMESPACE, [pod('edgefarm-provider-a', 'Running', 'True'), pod('edgefarm-provider-b', 'Pending', 'False')]);
    const bad = await cli('doctor', 'gw-1', '-o', 'json');
    expect(bad.code).toBe(EXIT.failed);
    const checks = byCheck(bad.out);
    expect(checks.map((c) => `${c.check} ${c.status}`)).toEqual([
      'edgenode ok',
      'identity ok',
      'connected fail',
      'lag warn',
      'node fail',
      'provider ok',
      'provider fail',
    ]);
    expect(checks[2]!.hint).toContain('edgefarm doctor --dir /etc/edgefarm');

    const none = byCheck((await cli('doctor', 'gw-9', '-o', 'json')).out);
    expect(none[0]).toMatchObject({ status: 'fail', hint: expect.stringContaining('edgefarm token create gw-9') });
    kube.failNext('getEdgeNode', new Error('connection refused'));
    const api = await cli('doctor', 'gw-1');
    expect(api.code).toBe(EXIT.failed);
    expect(api.out).toContain('✗ edgenode: reading the EdgeNode: connection refused');
  });
});
