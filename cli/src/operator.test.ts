// `edgefarm status`, `site config`, `-o yaml` and `completion` on the fake API.
import { execFileSync } from 'node:child_process';
import { FLEET_NAMESPACE } from '@edgefarm/registrar';
import { createUser } from '@nats-io/nkeys';
import { Command } from 'commander';
import { NOW, fakeCli } from './cli.fixtures.js';
import { bashCompletion } from './completion.js';
import { EXIT } from './errors.js';
import type { FakeCliKube } from './kube-fake.js';
import { yaml } from './output.js';
import { shardOf } from '@edgefarm/proto';
import { providerOf, statusRows } from './status.js';

const KEY = createUser().getPublicKey();
const iso = (ms: number) => new Date(ms).toISOString();

function fleet(kube: FakeCliKube) {
  kube.edgeNodes.set('gw-a', {
    metadata: { name: 'gw-a' },
    status: {
      connected: true,
      lastHeartbeatTime: iso(NOW - 20_000),
      podCount: 3,
      desiredSequence: 12,
      appliedSequence: 10,
      identity: { publicKey: KEY, issuedAt: iso(NOW - 86400_000), expiresAt: iso(NOW + 3 * 86400_000) },
    },
  });
  kube.nodes.set('gw-a', {
    metadata: { name: 'gw-a' },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      nodeInfo: { kubeletVersion: 'v0.1.0-edgefarm' } as never,
      addresses: [{ type: 'InternalIP', address: '192.0.2.7' }],
    },
  });
  kube.edgeNodes.set('gw-b', { metadata: { name: 'gw-b' }, status: { connected: false, agentVersion: '0.0.9' } });
  kube.nodes.set('gw-b', { metadata: { name: 'gw-b' }, status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } });
}

describe('edgefarm status', () => {
  it('computes the rows from EdgeNodes and Nodes', () => {
    const { kube } = fakeCli();
    fleet(kube);
    kube.edgeNodes.set('gw-c', { metadata: { name: 'gw-c' }, status: { connected: true } });
    const rows = statusRows([...kube.edgeNodes.values()], [...kube.nodes.values()], NOW);
    expect(rows.map((r) => r.name)).toEqual(['gw-a', 'gw-b', 'gw-c']);
    expect(rows[0]).toMatchObject({
      connected: true,
      heartbeatAgeMs: 20_000,
      lag: 2,
      pods: 3,
      agentVersion: 'v0.1.0-edgefarm',
      publicKey: KEY,
      ready: 'True',
      nodeIp: '192.0.2.7',
      healthy: true,
    });
    expect(rows[1]).toMatchObject({ agentVersion: '0.0.9', ready: 'Unknown', lag: null, healthy: false, heartbeatAgeMs: null });
    // no Node: not Ready, so not healthy
    expect(rows[2]).toMatchObject({ ready: null, healthy: false });
  });

  it('prints the table, wide, JSON and YAML; exits unhealthy when a listed node is disconnected or not Ready', async () => {
    const { kube, cli } = fakeCli();
    fleet(kube);
    const all = await cli('status');
    expect(all.code).toBe(EXIT.unhealthy);
    expect(all.err).toContain('1 of 2 node(s) disconnected or not Ready: gw-b');
    const lines = all.out.split('\n');
    expect(lines[0]).toMatch(/^NAME\s+CONNECTED\s+LAST HEARTBEAT\s+LAG\s+PODS\s+AGENT VERSION\s+CREDENTIALS\s+READY$/);
    expect(lines[1]).toMatch(/^gw-a\s+true\s+20s ago\s+2\s+3\s+v0.1.0-edgefarm\s+in 3d\s+True$/);
    expect(lines[2]).toMatch(/^gw-b\s+false\s+-\s+-\s+-\s+0.0.9\s+not joined\s+Unknown$/);
    const one = await cli('status', 'gw-a', '-o', 'wide');
    expect(one.code).toBe(EXIT.ok);
    expect(one.out).toContain('192.0.2.7');
    expect(one.out).toContain(KEY);
    expect(one.out).not.toContain('gw-b');
    const j = await cli('status', 'gw-a', 'gw-b', '-o', 'json');
    expect(j.code).toBe(EXIT.unhealthy);
    expect(JSON.parse(j.out)).toHaveLength(2);
    const y = await cli('status', 'gw-a', '-o', 'yaml');
    expect(y.out).toBe(yaml(JSON.parse((await cli('status', 'gw-a', '-o', 'json')).out)));
    expect(y.out).toContain(`publicKey: ${KEY}`);
  });

  it('a node without EdgeNode is not found; an empty fleet is fine; API errors exit with their code', async () => {
    const { kube, cli } = fakeCli();
    const empty = await cli('status');
    expect(empty).toMatchObject({ code: EXIT.ok, out: 'no edge nodes\n' });
    fleet(kube);
    const missing = await cli('status', 'gw-a', 'gw-x');
    expect(missing.code).toBe(EXIT.notFound);
    expect(missing.err).toContain('no EdgeNode gw-x');
    expect((await cli('status', 'Bad_Name')).code).toBe(EXIT.usage);
    kube.failNext('listNodes', new Error('connection refused'));
    expect((await cli('status')).code).toBe(EXIT.kubeFailed);
  });
});

describe('the provider replica serving a node (status -o wide)', () => {
  const lease = (i: number, holder?: string) => ({
    metadata: { name: `edgefarm-shard-${i}`, labels: { 'edgefarm.io/provider-lease': 'shard', 'edgefarm.io/shard': String(i) } },
    spec: holder ? { holderIdentity: holder } : {},
  });

  it('names the holder of the shard Lease; unknown when the Leases do not give the shard count', async () => {
    const holder = providerOf([lease(0, 'p-0'), lease(1, 'p-1'), lease(2)])!;
    expect(holder(['gw-a', 'gw-b', 'gw-c'].find((n) => shardOf(n, 3) === 1)!)).toBe('p-1');
    expect(holder(['gw-a', 'gw-b', 'gw-c', 'gw-d'].find((n) => shardOf(n, 3) === 2)!)).toBeNull();
    expect(providerOf([])).toBeUndefined();
    expect(providerOf([lease(0, 'p'), lease(2, 'p')])).toBeUndefined();
    expect(providerOf([lease(0, 'p'), lease(0, 'q')])).toBeUndefined();
    expect(providerOf([{ metadata: { labels: { 'edgefarm.io/shard': '-1' } } }])).toBeUndefined();

    const { kube, cli } = fakeCli();
    fleet(kube);
    kube.leases.set(FLEET_NAMESPACE, [lease(0, 'edgefarm-provider-x')]);
    expect((await cli('status', 'gw-a', '-o', 'wide')).out).toMatch(/^gw-a .*192\.0\.2\.7\s+edgefarm-provider-x\s+U/m);
    expect(JSON.parse((await cli('status', 'gw-a', '-o', 'json')).out)[0].provider).toBe('edgefarm-provider-x');
    expect((await cli('status', 'gw-a')).out).not.toContain('edgefarm-provider-x');
    kube.failNext('listLeases', new Error('forbidden'));
    const denied = await cli('status', 'gw-a', '-o', 'wide');
    expect(denied.code).toBe(EXIT.ok);
    expect(denied.out).toMatch(/192\.0\.2\.7\s+-\s+U/);
  });
});

describe('-o yaml', () => {
  it('every command with -o json takes -o yaml: the same data', async () => {
    const { kube, cli } = fakeCli();
    fleet(kube);
    for (const args of [
      ['node', 'list'],
      ['token', 'list'],
      ['status', 'gw-a'],
    ]) {
      const j = JSON.parse((await cli(...args, '-o', 'json')).out) as unknown;
      expect((await cli(...args, '-o', 'yaml')).out).toBe(yaml(j));
    }
    expect(yaml({ a: 'true', b: null, c: 'x: y' })).toBe("a: 'true'\nb: null\nc: 'x: y'\n");
  });
});

describe('edgefarm site config', () => {
  const urls = 'tls://hub-0.example:7422,tls://hub-1.example:7422';

  it("renders the join's nats-site.conf and agent.env with the fleet's leaf URLs, credentials by path", async () => {
    const { kube, cli } = fakeCli();
    fleet(kube);
    expect((await cli('site', 'config', 'gw-a')).code).toBe(EXIT.notFound);
    kube.configMaps.set(`${FLEET_NAMESPACE}/edgefarm-fleet`, { hubLeafUrls: urls });
    const r = await cli('site', 'config', 'gw-a', '--dir', '/srv/ef');
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toContain('# /srv/ef/nats-site.conf\n');
    expect(r.out).toContain('urls: [ "tls://hub-0.example:7422", "tls://hub-1.example:7422" ]');
    expect(r.out).toContain('credentials: "/srv/ef/node.creds"');
    expect(r.out).toContain('domain: "site-gw-a"');
    expect(r.out).toContain(`ef.outbox.${KEY}.>`);
    expect(r.out).toContain('nkey: AGENT_PUBLIC_KEY');
    expect(r.out).toContain(`EF_NODE_WIRE_ID=${KEY}\n`);
    expect(r.out).not.toContain('BEGIN');
    expect(r.err).toContain('--agent-key');
    const agent = createUser().getPublicKey();
    const j = JSON.parse((await cli('site', 'config', 'gw-a', '--agent-key', agent, '--monitor', 'off', '-o', 'json')).out) as {
      files: Record<string, string>;
      hubLeafUrls: string[];
    };
    expect(j.hubLeafUrls).toHaveLength(2);
    expect(j.files['nats-site.conf']).toContain(`nkey: ${agent}`);
    expect(j.files['nats-site.conf']).not.toContain('http:');
  });

  it('a node that has not joined gets a placeholder key; --hub-leaf-urls overrides the ConfigMap', async () => {
    const { cli } = fakeCli();
    const r = await cli('site', 'config', 'gw-new', '--hub-leaf-urls', 'tls://h:7422');
    expect(r.code).toBe(EXIT.ok);
    expect(r.out).toContain('ef.outbox.NODE_PUBLIC_KEY.>');
    expect(r.err).toContain('has not joined');
  });

  it('refuses hostile values with the usage exit code', async () => {
    const { cli } = fakeCli();
    const bad = [
      ['--hub-leaf-urls', 'http://h:1'],
      ['--hub-leaf-urls', 'tls://h:1,tls://"x:1'],
      ['--hub-leaf-urls', ','],
      ['--hub-leaf-urls', Array.from({ length: 6 }, (_, i) => `tls://h${i}:1`).join(',')],
      ['--agent-key', 'SUAAAA'],
      ['--dir', 'relative/dir'],
      ['--dir', '/etc/"quoted"'],
      ['--listen', 'nope'],
      ['--monitor', '0.0.0.0:8222'],
      ['--store-dir', '/x\n}'],
      ['-o', 'wide'],
    ];
    for (const args of bad)
      expect([args, (await cli('site', 'config', 'gw-a', '--hub-leaf-urls', 'tls://h:1', ...args)).code]).toEqual([args, EXIT.usage]);
    expect((await cli('site', 'config', '../etc', '--hub-leaf-urls', 'tls://h:1')).code).toBe(EXIT.usage);
  });
});

describe('edgefarm completion', () => {
  it('is generated from the command tree: every command, option and choice', async () => {
    const { cli } = fakeCli();
    const bash = await cli('completion', 'bash');
    expect(bash.code).toBe(EXIT.ok);
    for (const w of [
      '"site:config"',
      '":doctor"',
      '":status"',
      '"status:-o") COMPREPLY=($(compgen -W "table wide json yaml"',
      'complete -F',
    ])
      expect(bash.out).toContain(w);
    expect((await cli('completion', 'zsh')).out).toMatch(/^#compdef edgefarm kubectl-edgefarm\nautoload -U \+X bashcompinit/);
    expect((await cli('completion', 'fish')).code).toBe(EXIT.usage);
    // a command added to the tree is in the script
    const p = new Command('x');
    p.command('brand-new').option('--flag <v>');
    expect(bashCompletion(p, ['x'])).toContain('":brand-new"');
    expect(() => bashCompletion(new Command('x').addCommand(new Command('$(reboot)')), ['x'])).toThrow('cannot be quoted');
  });

  it('bash accepts the script and completes from it', () => {
    const script = bashCompletion(new Command('ef').addCommand(new Command('status').option('-o, --output <f>')), ['ef']);
    let bashPath: string;
    try {
      bashPath = execFileSync('sh', ['-c', 'command -v bash']).toString().trim();
    } catch {
      return; // no bash here
    }
    const complete = (line: string) =>
      execFileSync(bashPath, [
        '-c',
        `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _ef_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ])
        .toString()
        .trim()
        .split('\n');
    expect(complete('ef st')).toEqual(['status']);
    expect(complete('ef status --o')).toEqual(['--output']);
  });
});
