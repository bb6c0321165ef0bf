import { FLEET_NAMESPACE, identityOf, readTokenSecret, type SecretLike } from '@edgefarm/registrar';
import { createUser } from '@nats-io/nkeys';
import { CliError, EXIT } from './errors.js';
import { FakeCliKube } from './kube-fake.js';
import { age, parseTtl, table } from './output.js';
import { run } from './program.js';
import { TEST_CA } from './test-ca.fixtures.js';

const CA = TEST_CA;
const NOW = Date.parse('2026-01-10T12:00:00Z');

function setup(files: Record<string, string> = {}) {
  const kube = new FakeCliKube();
  let out = '';
  let err = '';
  const readInput = (file: string) =>
    file in files ? Promise.resolve(files[file]!) : Promise.reject(new Error(`ENOENT: no such file, open '${file}'`));
  const cli = async (...args: string[]) => {
    out = '';
    err = '';
    const code = await run(args, { out: (t) => (out += t), err: (t) => (err += t), now: () => NOW, kube: () => kube, readInput });
    return { code, out, err };
  };
  return { kube, cli };
}

describe('edgefarm command line', () => {
  it('refuses bad arguments with the usage exit code', async () => {
    const { cli } = setup();
    expect((await cli('token', 'create')).code).toBe(EXIT.usage);
    expect((await cli('token', 'create', 'gw-1', '--ttl', '25h')).code).toBe(EXIT.usage);
    expect((await cli('token', 'create', 'gw-1', '--ttl', '10')).code).toBe(EXIT.usage);
    expect((await cli('token', 'create', 'Not_A_Node')).code).toBe(EXIT.usage);
    expect((await cli('token', 'list', '-o', 'xml')).code).toBe(EXIT.usage);
    expect((await cli('token', 'delete', 'TOOLONGID')).code).toBe(EXIT.usage);
    expect((await cli('join', '--hub', 'https://r')).code).toBe(EXIT.usage);
    expect((await cli('join', '--token', 't', '--hub', 'https://r', '--listen', 'nope')).code).toBe(EXIT.usage);
    expect((await cli('join', '--token', 't', '--token-file', '-', '--hub', 'https://r')).code).toBe(EXIT.usage);
    expect((await cli('node', 'add', 'gw-1', '--label', 'no-equals')).code).toBe(EXIT.usage);
    expect((await cli('frobnicate')).code).toBe(EXIT.usage);
    // program.fuzz.test.ts: --hub was not checked before the join dialled it (a TypeError, exit 1)
    const token = `ef1.abc123.${'a'.repeat(32)}.${'f'.repeat(64)}`;
    for (const hub of ['not a url', 'http://r:8443', 'https://user:pw@r', 'https://r/x?y', 'https://r#f', `https://${'a'.repeat(300)}`]) {
      expect((await cli('join', '--dir', '/nonexistent/ef-cli/edgefarm', '--token', token, '--hub', hub)).code).toBe(EXIT.usage);
    }
    expect((await cli('--help')).code).toBe(EXIT.ok);
  });

  it('join reads the token from --token-file (- is standard input), so it stays out of the process list', async () => {
    const { cli } = setup({ '-': 'not-a-token\n', '/big': 'x'.repeat(5000) });
    const dir = `/nonexistent-${process.pid}/site`;
    const fromStdin = await cli('join', '--token-file', '-', '--hub', 'https://r', '--dir', dir);
    expect(fromStdin.code).toBe(EXIT.tokenRefused);
    expect(fromStdin.err).toContain('not a join token');
    expect((await cli('join', '--token-file', '/big', '--hub', 'https://r', '--dir', dir)).code).toBe(EXIT.tokenRefused);
    const missing = await cli('join', '--token-file', '/nope', '--hub', 'https://r', '--dir', dir);
    expect(missing.code).toBe(EXIT.usage);
    expect(missing.err).toContain('--token-file /nope');
  });

  it('token create needs the fleet ConfigMap, stores only the hash and prints the join command', async () => {
    const { kube, cli } = setup();
    expect((await cli('token', 'create', 'gw-1')).code).toBe(EXIT.notFound);
    kube.configMaps.set(`${FLEET_NAMESPACE}/edgefarm-fleet`, { 'ca.crt': CA, registrarUrl: 'https://reg.example:8443' });
    const r = await cli('token', 'create', 'gw-1', '--ttl', '2h', '-o', 'json');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.out) as { id: string; token: string; joinCommand: string; expiration: string };
    expect(printed.joinCommand).toBe(`edgefarm join --token ${printed.token} --hub https://reg.example:8443`);
    expect(printed.expiration).toBe(new Date(NOW + 7200_000).toISOString());
    const secret = [...kube.secrets.values()][0] as SecretLike;
    expect(JSON.stringify(secret)).not.toContain(printed.token.split('.')[2]);
    expect(readTokenSecret({ ...secret, metadata: { ...secret.metadata, uid: 'u', resourceVersion: '1' } }).node).toBe('gw-1');
    expect((await cli('token', 'create', 'gw-2', '--label', 'zone=west', '-o', 'json')).code).toBe(0);
    expect((await cli('token', 'create', 'gw-2', '--label', 'zone=no spaces')).code).toBe(EXIT.usage);
    const text = await cli('token', 'create', 'gw-1');
    expect(text.out).toContain('edgefarm join --token ef1.');
  });

  it('lists tokens and nodes as tables, wide tables and JSON', async () => {
    const { kube, cli } = setup();
    kube.configMaps.set(`${FLEET_NAMESPACE}/edgefarm-fleet`, { 'ca.crt': CA, registrarUrl: 'https://r:1' });
    await cli('token', 'create', 'gw-b', '--ttl', '30m');
    const list = await cli('token', 'list');
    expect(list.out.split('\n')[0]).toMatch(/^ID\s+NODE\s+EXPIRES\s+STATUS$/);
    expect(list.out).toMatch(/gw-b\s+30m\s+valid/);
    expect((await cli('token', 'list', '-o', 'wide')).out).toContain('edgefarm-join-');
    expect(JSON.parse((await cli('token', 'list', '-o', 'json')).out)).toHaveLength(1);

    const key = createUser().getPublicKey();
    kube.edgeNodes.set('gw-a', {
      metadata: { name: 'gw-a' },
      status: { connected: true, identity: { publicKey: key, issuedAt: '2026-01-10T00:00:00Z', expiresAt: '2026-01-12T12:00:00Z' } },
    });
    kube.edgeNodes.set('gw-c', { metadata: { name: 'gw-c' } });
    const nodes = await cli('node', 'list');
    expect(nodes.out).toMatch(/gw-a\s+true\s+in 2d/);
    expect(nodes.out).toMatch(/gw-c\s+false\s+not joined/);
    expect((await cli('node', 'list', '-o', 'wide')).out).toContain(key);
    expect(JSON.parse((await cli('node', 'list', '-o', 'json')).out)[0]).toMatchObject({
      name: 'gw-a',
      publicKey: key,
      credentialsExpireAt: '2026-01-12T12:00:00Z',
    });
  });

  it('revokes a node: its key joins the revocation list and its identity is cleared', async () => {
    const { kube, cli } = setup();
    const key = createUser().getPublicKey();
    kube.edgeNodes.set('gw-a', { metadata: { name: 'gw-a' }, status: { identity: { publicKey: key, issuedAt: 'x', expiresAt: 'y' } } });
    expect((await cli('node', 'revoke', 'gw-a')).code).toBe(0);
    expect(kube.revocations(FLEET_NAMESPACE)).toEqual({ [key]: NOW / 1000 });
    expect(identityOf(kube.edgeNodes.get('gw-a'))).toBeUndefined();
    expect((await cli('node', 'revoke', 'gw-a')).code).toBe(EXIT.notFound);
    expect((await cli('node', 'revoke', 'nope')).code).toBe(EXIT.notFound);
  });

  it('node add and delete (delete revokes the key first); API errors exit with their code', async () => {
    const { kube, cli } = setup();
    expect((await cli('node', 'add', 'gw-a', '--label', 'zone=west')).code).toBe(0);
    expect(kube.edgeNodes.get('gw-a')?.spec?.labels).toEqual({ zone: 'west' });
    expect((await cli('node', 'add', 'gw-a')).code).toBe(EXIT.nameTaken);
    const key = createUser().getPublicKey();
    kube.edgeNodes.get('gw-a')!.status = { identity: { publicKey: key, issuedAt: 'x', expiresAt: 'y' } };
    expect((await cli('node', 'delete', 'gw-a')).code).toBe(0);
    expect(kube.revocations(FLEET_NAMESPACE)[key]).toBe(NOW / 1000);
    expect(kube.calls.slice(-2)).toEqual(['addRevocation', 'deleteEdgeNode']);
    kube.failNext('listEdgeNodes', new Error('connection refused'));
    const failed = await cli('node', 'list');
    expect(failed.code).toBe(EXIT.kubeFailed);
    expect(failed.err).toContain('connection refused');
  });
});

describe('output helpers', () => {
  it('aligns tables, prints ages and parses --ttl', () => {
    expect(table(['A', 'LONGER'], [['xxxx', 'y']])).toBe('A      LONGER\nxxxx   y\n');
    expect([age(5_000), age(600_000), age(3 * 3600_000), age(3 * 86400_000), age(-1)]).toEqual(['5s', '10m', '3h', '3d', '-']);
    expect(parseTtl('90m', 86400)).toBe(5400);
    expect(() => parseTtl('0m', 86400)).toThrow(CliError);
    expect(() => parseTtl('1d', 86400)).toThrow();
  });
});
