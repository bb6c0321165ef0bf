/**
 * `edgefarm fleet init` and `fleet secrets` on a temporary directory: the certificates checked by openssl (chain,
 * names, usages, CA flag), modes, reruns keeping what exists, the objects' keys, the rendered 3-member nats.conf
 * accepted by `nats-server -t`, and hostile input refused with the usage exit code.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NATS_SERVER } from '@edgefarm/testing';
import { fakeCli } from './cli.fixtures.js';
import { EXIT } from './errors.js';
import { readFleetInputs } from './fleet.js';
import { hubNatsConf, type KubeObject } from './fleet-objects.js';

let root: string;
let dir: string;
const setup = () => fakeCli({}, Date.now);
const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
const tls = (name: string) => path.join(dir, 'tls', name);
const SECRETS = ['--registrar-url', 'https://registrar.example.com', '--hub-leaf-urls', 'tls://hub.example.com:7422'];

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-fleet-'));
  dir = path.join(root, 'fleet');
  const { cli } = setup();
  const r = await cli(
    'fleet',
    'init',
    '--dir',
    dir,
    '--hub-name',
    'hub.example.com',
    '203.0.113.7',
    '--registrar-name',
    'registrar.example.com',
  );
  expect(r).toMatchObject({ code: EXIT.ok, err: '' });
  expect(r.out).toContain('created the fleet identity');
  expect(r.out).toContain('made ca, hub, registrar');
}, 60_000);
afterAll(() => rm(root, { recursive: true, force: true }));

describe('edgefarm fleet init', () => {
  it("writes identity's fleet files and TLS keys of mode 0600", async () => {
    for (const f of ['fleet.json', 'operator.jwt', 'keys/node-signer.nk', 'users/provider-desired.creds', 'tls/ca.crt'])
      await stat(path.join(dir, f));
    for (const f of ['ca.key', 'hub.key', 'registrar.key', '../keys/operator-signer.nk'])
      expect((await stat(tls(f))).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, 'tls'))).mode & 0o777).toBe(0o700);
  });

  it('makes a P-256 CA and certificates openssl verifies, with the names and usages asked for', () => {
    expect(openssl('verify', '-CAfile', tls('ca.crt'), tls('hub.crt'), tls('registrar.crt'))).toMatch(/hub.crt: OK\n.*registrar.crt: OK/);
    const ca = openssl('x509', '-in', tls('ca.crt'), '-noout', '-text');
    expect(ca).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(ca).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(ca).toContain('ASN1 OID: prime256v1');
    const hub = openssl('x509', '-in', tls('hub.crt'), '-noout', '-text');
    expect(hub).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(hub).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    const sans = /Subject Alternative Name:\s+(.*)/.exec(hub)![1]!.split(', ');
    expect(sans).toEqual([
      'DNS:hub.example.com',
      'IP Address:203.0.113.7',
      ...[0, 1, 2].flatMap((n) => [`DNS:edgefarm-hub-${n}.edgefarm-hub`, `DNS:edgefarm-hub-${n}.edgefarm-hub.edgefarm-system.svc`]),
      'DNS:edgefarm-hub-leaf.edgefarm-system.svc',
    ]);
    const registrar = openssl('x509', '-in', tls('registrar.crt'), '-noout', '-text');
    expect(registrar).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(/Subject Alternative Name:\s+(.*)/.exec(registrar)![1]).toBe('DNS:registrar.example.com');
    const end = new Date(openssl('x509', '-in', tls('registrar.crt'), '-noout', '-enddate').trim().slice('notAfter='.length));
    expect(Math.round((end.getTime() - Date.now()) / 86_400_000)).toBe(825);
  });

  it('keeps what exists on a rerun, warns when the names asked for changed, and makes only what is missing', async () => {
    const before = await readFile(tls('hub.crt'), 'utf8');
    const { cli } = setup();
    const r = await cli('fleet', 'init', '--dir', dir, '--hub-name', 'other.example.com', '--registrar-name', 'registrar.example.com');
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toContain('kept the fleet identity');
    expect(r.err).toMatch(/hub.crt lacks dns:other.example.com names dns:hub.example.com,ip:203.0.113.7 not asked for/);
    expect(await readFile(tls('hub.crt'), 'utf8')).toBe(before);

    const copy = path.join(root, 'copy');
    execFileSync('cp', ['-a', dir, copy]);
    await rm(path.join(copy, 'tls', 'registrar.crt'));
    const again = await cli('fleet', 'init', '--dir', copy, '--hub-name', 'hub.example.com', '--registrar-name', 'r2.example.com');
    expect(again.out).toContain('made registrar');
    expect(openssl('verify', '-CAfile', path.join(copy, 'tls/ca.crt'), path.join(copy, 'tls/registrar.crt'))).toContain('OK');
    // without the CA key nothing can be signed
    await rm(path.join(copy, 'tls', 'registrar.crt'));
    await rm(path.join(copy, 'tls', 'ca.key'));
    const refused = await cli('fleet', 'init', '--dir', copy, '--hub-name', 'hub.example.com', '--registrar-name', 'r2.example.com');
    expect(refused.code).toBe(EXIT.failed);
    expect(refused.err).toContain('ca.key is missing');
  }, 60_000);
});

describe('edgefarm fleet secrets', () => {
  it('prints ConfigMap edgefarm-fleet and the three Secrets with the keys the manifests mount', async () => {
    const { cli } = setup();
    const r = await cli('fleet', 'secrets', '--dir', dir, ...SECRETS, '-o', 'json');
    expect(r.code).toBe(EXIT.ok);
    const items = (JSON.parse(r.out) as { items: KubeObject[] }).items;
    expect(items.map((o) => [o.kind, o.metadata.name, o.metadata.namespace, Object.keys(o.data).sort()])).toEqual([
      [
        'ConfigMap',
        'edgefarm-fleet',
        'edgefarm-system',
        ['accounts', 'ca.crt', 'hubLeafUrls', 'nodeSigner', 'registrarUrl', 'sitesAccount'],
      ],
      ['Secret', 'edgefarm-hub', 'edgefarm-system', ['ca.crt', 'nats.conf', 'operator.jwt', 'tls.crt', 'tls.key']],
      [
        'Secret',
        'edgefarm-provider',
        'edgefarm-system',
        ['claims-pusher.creds', 'operator-signer.nk', 'provider-cloud.creds', 'provider-desired.creds'],
      ],
      ['Secret', 'edgefarm-registrar', 'edgefarm-system', ['node-signer.nk', 'tls.crt', 'tls.key']],
    ]);
    const fleet = JSON.parse(await readFile(path.join(dir, 'fleet.json'), 'utf8')) as {
      keys: { nodeSigner: string; accounts: Record<string, string> };
    };
    expect(items[0]!.data).toMatchObject({
      'ca.crt': await readFile(tls('ca.crt'), 'utf8'),
      registrarUrl: 'https://registrar.example.com',
      hubLeafUrls: 'tls://hub.example.com:7422',
      nodeSigner: fleet.keys.nodeSigner,
      sitesAccount: fleet.keys.accounts.sites,
    });
    const secret = (i: number, k: string) => Buffer.from(items[i]!.data[k]!, 'base64').toString('utf8');
    expect(secret(2, 'operator-signer.nk')).toBe(await readFile(path.join(dir, 'keys/operator-signer.nk'), 'utf8'));
    expect(secret(3, 'tls.key')).toBe(await readFile(tls('registrar.key'), 'utf8'));
    const conf = secret(1, 'nats.conf');
    expect(conf).toContain('server_name: $POD_NAME');
    expect(conf).toContain('operator: "/etc/nats/operator.jwt"');
    expect(conf).toContain('store_dir: "/data/js"');
    expect(conf).toContain('http: "0.0.0.0:8222"');
    expect(conf).toContain(
      'routes: [ "nats-route://edgefarm-hub-0.edgefarm-hub:6222", "nats-route://edgefarm-hub-1.edgefarm-hub:6222", "nats-route://edgefarm-hub-2.edgefarm-hub:6222" ]',
    );
    expect(r.err).toContain('seal or encrypt it');

    const y = await cli('fleet', 'secrets', '-n', 'other', '--dir', dir, ...SECRETS, '--hub-members', '1');
    expect(y.out.split(/^---$/m)).toHaveLength(4);
    expect(y.out).toContain('namespace: other');
    expect(y.out).not.toContain('cluster {');
  });

  it('--apply applies every object server-side as edgefarm-fleet', async () => {
    const { cli, kube } = setup();
    const r = await cli('fleet', 'secrets', '--dir', dir, ...SECRETS, '--apply');
    expect(r).toMatchObject({ code: EXIT.ok, err: '' });
    expect(r.out).toContain('secret/edgefarm-hub serverside-applied');
    expect([...kube.applied.keys()]).toEqual([
      'ConfigMap/edgefarm-system/edgefarm-fleet',
      'Secret/edgefarm-system/edgefarm-hub',
      'Secret/edgefarm-system/edgefarm-provider',
      'Secret/edgefarm-system/edgefarm-registrar',
    ]);
    expect([...kube.applied.values()].every((a) => a.fieldManager === 'edgefarm-fleet')).toBe(true);
    kube.failNext('applyObject', new Error('namespaces "edgefarm-system" not found'));
    expect(await cli('fleet', 'secrets', '--dir', dir, ...SECRETS, '--apply')).toMatchObject({ code: EXIT.kubeFailed });
  });

  it('renders the local stack single server with --local (monitoring on loopback)', async () => {
    const { cli } = setup();
    const r = await cli(
      'fleet',
      'secrets',
      '--dir',
      dir,
      ...SECRETS,
      '--local',
      '127.0.0.1:4222,127.0.0.1:8222,10.0.0.1:7422',
      '-o',
      'json',
    );
    const hub = (JSON.parse(r.out) as { items: KubeObject[] }).items[1]!;
    const conf = Buffer.from(hub.data['nats.conf']!, 'base64').toString();
    expect(conf).toContain('server_name: "hub"');
    expect(conf).toContain('listen: "10.0.0.1:7422"');
    expect((await cli('fleet', 'secrets', '--dir', dir, ...SECRETS, '--local', '127.0.0.1:1,0.0.0.0:2,127.0.0.1:3')).code).toBe(EXIT.usage);
  });

  it.each([1, 3, 5])('nats-server -t accepts the rendered configuration of a %i-member hub', async (members) => {
    // the pod's /etc/nats and /data under a temporary directory, so nats-server finds the files
    const paths = { etc: path.join(root, `etc-${members}`), data: path.join(root, `data-${members}`) };
    await mkdir(paths.etc, { recursive: true });
    await mkdir(paths.data, { recursive: true });
    const inputs = await readFleetInputs(dir, path.join(dir, 'tls'));
    await writeFile(path.join(paths.etc, 'operator.jwt'), inputs.operatorJwt);
    await writeFile(path.join(paths.etc, 'ca.crt'), inputs.tls.ca);
    await writeFile(path.join(paths.etc, 'tls.crt'), inputs.tls.hub.cert);
    await writeFile(path.join(paths.etc, 'tls.key'), inputs.tls.hub.key);
    const conf = path.join(paths.etc, 'nats.conf');
    await writeFile(conf, hubNatsConf(inputs, { kind: 'statefulset', members }, paths));
    const t = spawnSync(NATS_SERVER, ['-c', conf, '-t'], { env: { ...process.env, POD_NAME: 'edgefarm-hub-1' }, encoding: 'utf8' });
    expect({ status: t.status, out: t.stdout + t.stderr }).toEqual({ status: 0, out: expect.stringMatching(/nats.conf is valid/) });
  });

  it.each([
    [['--registrar-url', 'http://r.example.com']],
    [['--registrar-url', 'https://user:pw@r.example.com']],
    [['--registrar-url', 'https://r.example.com/path']],
    [['--registrar-url', 'https://r.example.com?x=1']],
    [['--registrar-url', `https://${'a'.repeat(400)}`]],
    [['--registrar-url', 'https://r.example.com\nhttps://evil']],
    [['--hub-leaf-urls', 'nats://h:7422']],
    [['--hub-leaf-urls', 'tls://h']],
    [['--hub-leaf-urls', 'tls://h:7422,tls://h:7422']],
    [['--hub-leaf-urls', 'tls://h:7422,']],
    [['--hub-leaf-urls', 'tls://h:7422/x']],
    [['--hub-leaf-urls', Array.from({ length: 17 }, (_, i) => `tls://h${i}:7422`).join(',')]],
    [['--hub-members', '2']],
    [['--hub-members', '3', '--local', '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3']],
    [['--local', '127.0.0.1:1,127.0.0.1:2']],
    [['--local', '127.0.0.1:1,127.0.0.1:99999,127.0.0.1:3']],
    [['--local', '"a":1,127.0.0.1:2,127.0.0.1:3']],
    [['--apply', '-o', 'yaml']],
    [['-o', 'xml']],
    [['-n', 'Bad_NS']],
    [['-n', 'x\ny']],
  ])('refuses hostile input with the usage exit code: %j', async (bad) => {
    const { cli } = setup();
    const args = ['fleet', 'secrets', '--dir', dir, ...SECRETS, ...bad];
    const r = await cli(...args);
    expect(r.code).toBe(EXIT.usage);
    expect(r.out).toBe('');
  });

  it('refuses hostile names for fleet init and a TLS directory whose files do not belong together', async () => {
    const { cli } = setup();
    const init = (...extra: string[]) =>
      cli('fleet', 'init', '--dir', path.join(root, 'never'), '--registrar-name', 'r.example.com', ...extra);
    for (const bad of ['*.example.com', 'Hub.Example.com', 'a..b', '-a.b', 'a b', `${'a'.repeat(64)}.com`, 'x"y', '']) {
      expect((await init('--hub-name', bad)).code).toBe(EXIT.usage);
    }
    expect((await init('--hub-name', 'h.example.com', '--days', '0')).code).toBe(EXIT.usage);
    expect((await init('--hub-name', 'h.example.com', '--days', '3651')).code).toBe(EXIT.usage);
    expect((await init('--hub-name', 'h.example.com', '--hub-members', '4')).code).toBe(EXIT.usage);
    await expect(stat(path.join(root, 'never'))).rejects.toThrow();

    const mixed = path.join(root, 'mixed');
    await mkdir(mixed);
    for (const f of ['ca.crt', 'hub.crt', 'hub.key', 'registrar.crt']) execFileSync('cp', [tls(f), mixed]);
    execFileSync('cp', [tls('hub.key'), path.join(mixed, 'registrar.key')]);
    const r = await cli('fleet', 'secrets', '--dir', dir, '--tls-dir', mixed, ...SECRETS);
    expect(r.code).toBe(EXIT.failed);
    expect(r.err).toContain('registrar.key is not the key of');
  }, 30_000);
});
