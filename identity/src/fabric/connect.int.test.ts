/**
 * Who may connect to the secured fabric at all: no credentials are refused at the hub's leaf and client ports and at
 * a site's client port; a node's credentials are leaf-only; a scoped user that carries its own permissions, a JWT
 * presented with another key, a JWT from a signer the account does not list are refused; an expired JWT is refused
 * and a connected leaf is closed at expiry (a renewed credentials file brings the running site back); a site that
 * trusts another CA, or none, does not link.
 */
import { readFile } from 'node:fs/promises';
import { encodeUser } from '@nats-io/jwt';
import { createAccount, createUser } from '@nats-io/nkeys';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { SecureFabric, waitFor } from '@edgefarm/testing';
import { formatCreds, parseCreds, seedText } from '../index.js';
import { Verdicts, connectVerdict, sleep } from './fabric.fixtures.js';

describe('connecting to the secured fabric', () => {
  let fabric: SecureFabric;
  const table = new Verdicts('Authentication, expiry and TLS');

  beforeAll(async () => {
    fabric = await SecureFabric.start();
  }, 60_000);

  afterAll(async () => {
    table.print();
    await fabric?.stop();
  });

  it('refuses clients without credentials at the hub and at a site, and clients that do not trust the fleet CA', async () => {
    const noCredsLeaf = await fabric.rawLeaf('node-a', { creds: null });
    table.record(
      "no credentials at the hub's leaf port",
      'refused',
      noCredsLeaf.ok ? 'connected' : 'refused',
      noCredsLeaf.errors.join('; '),
    );
    expect(noCredsLeaf.ok).toBe(false);
    const plainLeaf = await fabric.rawLeaf('node-a', { tls: false });
    table.record(
      "node credentials without TLS at the hub's leaf port",
      'refused',
      plainLeaf.ok ? 'connected' : 'refused',
      plainLeaf.errors.join('; '),
    );
    expect(plainLeaf.ok).toBe(false);
    const checks: [string, () => Promise<import('@nats-io/transport-node').NatsConnection>][] = [
      ["no credentials at the hub's client port", () => fabric.connectUnauthenticated({ hub: 0 })],
      ["no credentials at site A's client port", () => fabric.connectUnauthenticated({ site: 'node-a' })],
      [
        "an unknown nkey at site A's client port",
        () =>
          connect({
            servers: fabric.node('node-a').site!.url,
            authenticator: nkeyAuthenticator(new TextEncoder().encode(seedText(createUser()))),
            reconnect: false,
          }),
      ],
      ["node A's credentials on a standard connection (leaf only)", () => fabric.connectWithNodeCreds('node-a')],
      [
        'a client that does not trust the fleet CA',
        () => connect({ servers: fabric.member().clientUrl, reconnect: false, timeout: 3_000 }),
      ],
    ];
    for (const [what, fn] of checks) {
      const v = await connectVerdict(fn);
      table.record(what, 'refused', v.observed, v.detail);
      expect([what, v.observed]).toEqual([what, 'refused']);
    }
  });

  it('refuses node users the scope did not make: own permissions, another key, an unlisted signer', async () => {
    const a = fabric.node('node-a');
    const sites = fabric.fleet.keys.accounts.sites;
    const ukp = createUser();
    const ownPerms = await encodeUser(
      'node-x',
      ukp,
      sites,
      { pub: { allow: ['>'] }, sub: { allow: ['>'] } },
      {
        signer: fabric.fleet.seeds.nodeSigner,
        scopedUser: true,
      },
    );
    const stranger = createAccount();
    const unlisted = await encodeUser('node-y', ukp, sites, {}, { signer: stranger, scopedUser: true });
    const cases: [string, string][] = [
      ['a scoped user JWT with its own permissions (pub/sub >)', formatCreds(ownPerms, seedText(ukp))],
      ["node A's JWT presented with node B's seed", formatCreds(parseCreds(a.creds).jwt, fabric.node('node-b').seed)],
      ['a node JWT from a signing key EF_SITES does not list', formatCreds(unlisted, seedText(ukp))],
    ];
    for (const [what, creds] of cases) {
      const leaf = await fabric.rawLeaf('node-a', { creds });
      table.record(what, 'refused', leaf.ok ? 'connected' : 'refused', leaf.errors.join('; '));
      expect([what, leaf.ok]).toEqual([what, false]);
    }
  });

  it('closes a linked leaf when its JWT expires, keeps it out, and takes it back on a renewed credentials file', async () => {
    const expiresAt = new Date(Math.ceil(Date.now() / 1000) * 1000 + 5_000);
    await fabric.join('node-c', { expiresAt });
    await fabric.startSite('node-c');
    await fabric.waitLeaf('node-c', true);
    await fabric.waitLeaf('node-c', false, expiresAt.getTime() - Date.now() + 5_000);
    const afterExp = Date.now() - expiresAt.getTime();
    table.record('a linked leaf at its JWT expiry', 'closed', 'closed', `${afterExp} ms after exp`);
    await sleep(2_500);
    const back = await fabric.linked('node-c');
    table.record('the expired site redialing (2.5 s)', 'refused', back ? 'linked' : 'refused');
    expect(back).toBe(false);
    const raw = await fabric.rawLeaf('node-c');
    table.record('an expired node JWT at connect', 'refused', raw.ok ? 'connected' : 'refused', raw.errors.join('; '));
    expect(raw.ok).toBe(false);
    const node = fabric.node('node-c');
    await fabric.writeCreds('node-c', await fabric.mintCreds(node));
    const ms = await fabric.waitLeaf('node-c', true, 10_000);
    table.record('the running site after its credentials file was renewed', 'linked', 'linked', `after ${Math.round(ms)} ms, no restart`);
    await fabric.stopSite('node-c');
  }, 40_000);

  it('does not link a site that trusts another CA, or no CA', async () => {
    for (const [what, caFile] of [
      ['a site trusting another CA', fabric.otherTls.caFile],
      ['a site without a tls block (system roots)', null],
    ] as const) {
      const name = caFile ? 'node-d' : 'node-e';
      await fabric.join(name);
      const site = await fabric.startSite(name, { caFile });
      const linked = await waitFor(`${name} linked`, () => fabric.linked(name), 4_000).catch(() => false);
      const log = await readFile(site.logFile, 'utf8');
      const why = /[^\n]*(x509|certificate|handshake)[^\n]*/.exec(log)?.[0].replace(/^\[\d+\] \S+ \S+ /, '') ?? '';
      table.record(what, 'refused', linked ? 'linked' : 'refused', why.slice(0, 110));
      expect([what, linked]).toEqual([what, false]);
      expect(why).not.toBe('');
      await fabric.stopSite(name);
    }
  }, 30_000);
});
