import { decode, parseCreds as libraryParseCreds, type User } from '@nats-io/jwt';
import { createAccount, createUser } from '@nats-io/nkeys';
import { claimsPusherPermissions, hollowLeafPermissions, providerPermissions } from '@edgefarm/proto';
import { isIdentityInputError } from './errors.js';
import { createFleet, type Fleet } from './fleet.js';
import { seedText } from './keys.js';
import { subjectPermissions } from './permissions.js';
import { MAX_NODE_LIFETIME_MS, formatCreds, mintHollowUser, mintNodeUser, parseCreds } from './users.js';

let fleet: Fleet;
/** The node key of the mints that do not name one (minting is stateless: one key serves them all). */
let nodeKey: string;
beforeAll(async () => {
  fleet = await createFleet();
  nodeKey = createUser().getPublicKey();
});

const HOUR = 3_600_000;
const mint = (over: Partial<Parameters<typeof mintNodeUser>[0]> = {}) =>
  mintNodeUser({
    signerSeed: fleet.seeds.nodeSigner,
    accountPublicKey: fleet.keys.accounts.sites,
    nodePublicKey: nodeKey,
    name: 'edge-1',
    expiresAt: new Date(Date.now() + HOUR),
    ...over,
  });

describe('mintNodeUser', () => {
  it('makes a scoped user of the node key: no permissions of its own, issued by the scoped key for EF_SITES', async () => {
    const node = createUser().getPublicKey();
    const issuedAt = new Date(Date.now() - 60_000);
    const expiresAt = new Date(Date.now() + HOUR);
    const c = decode<User>(await mint({ nodePublicKey: node, issuedAt, expiresAt }));
    expect([c.sub, c.iss, c.name, c.aud]).toEqual([node, fleet.keys.nodeSigner, 'edge-1', 'NATS']);
    expect(c.nats).toEqual({ issuer_account: fleet.keys.accounts.sites, type: 'user', version: 2 });
    expect(c.iat).toBe(Math.floor(issuedAt.getTime() / 1000));
    expect(c.exp).toBe(Math.floor(expiresAt.getTime() / 1000));
    expect(c.jti).toMatch(/^[A-Za-z0-9+/=]+$/);
  });

  it.each([
    ['an account key', () => createAccount().getPublicKey()],
    ['a user seed', () => seedText(createUser())],
    ['a name', () => 'edge-1'],
    ['a wildcard', () => '*'],
    ['a key with a wildcard', () => `U${'A'.repeat(54)}>`],
    // the last character changed (to another one: a key that ends in A stays valid with an A)
    [
      'a key with a bad checksum',
      () =>
        createUser()
          .getPublicKey()
          .replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    ],
    ['a key and more tokens', () => `${createUser().getPublicKey()}.>`],
  ])('refuses a nodePublicKey that is %s', async (_what, key) => {
    const err = await mint({ nodePublicKey: key() }).catch((e: unknown) => e);
    expect(isIdentityInputError(err)).toBe(true);
    expect((err as { field: string }).field).toBe('nodePublicKey');
  });

  // what a node name is, keys.test.ts checks (without signing); here: that mint applies it, to the names that matter in a JWT
  it.each(['*', 'a.>', 'edge\n1'])('refuses the name %j', async (name) => {
    await expect(mint({ name })).rejects.toThrow(/^name: /);
  });

  it('refuses the account key itself or a user seed as the signer, without quoting the seed', async () => {
    const sites = fleet.seeds.accounts.sites;
    const err = await mint({ signerSeed: sites }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/signerSeed/);
    expect((err as Error).message).not.toContain(sites);
    const user = seedText(createUser());
    const err2 = await mint({ signerSeed: user }).catch((e: unknown) => e);
    expect(isIdentityInputError(err2)).toBe(true);
    expect((err2 as Error).message).not.toContain(user);
  });

  it('refuses an expiry in the past, beyond the longest lifetime, or invalid; an issue time in the future', async () => {
    await expect(mint({ expiresAt: new Date(Date.now() - 1000) })).rejects.toThrow(/expiresAt/);
    await expect(mint({ expiresAt: new Date(Date.now() + MAX_NODE_LIFETIME_MS + HOUR) })).rejects.toThrow(/expiresAt/);
    await expect(mint({ expiresAt: new Date(NaN) })).rejects.toThrow(/expiresAt/);
    await expect(mint({ issuedAt: new Date(Date.now() + HOUR) })).rejects.toThrow(/issuedAt/);
  });
});

describe('credentials files', () => {
  it('formats the standard creds text that @nats-io/jwt parses, and parses it back', async () => {
    const ukp = createUser();
    const jwt = await mint({ nodePublicKey: ukp.getPublicKey() });
    const text = formatCreds(jwt, seedText(ukp));
    const lib = await libraryParseCreds(new TextEncoder().encode(text));
    expect([lib.jwt, lib.key, lib.aid]).toEqual([jwt, seedText(ukp), fleet.keys.accounts.sites]);
    expect(parseCreds(text)).toEqual({ jwt, seed: seedText(ukp) });
  });

  it('refuses a malformed JWT, a JWT with a line break, a seed that is not a user seed', () => {
    const seed = seedText(createUser());
    expect(() => formatCreds('not-a-jwt', seed)).toThrow(/jwt/);
    expect(() => formatCreds('a.b.c\n-----BEGIN USER NKEY SEED-----', seed)).toThrow(/jwt/);
    expect(() => formatCreds('a.b.c', fleet.seeds.accounts.sites)).toThrow(/seed/);
    expect(() => parseCreds('nothing here')).toThrow(/creds/);
  });

  it('refuses a file over 80 KiB and a flood of blank lines with IdentityInputError (users.fuzz.test.ts: the regex parser took seconds)', () => {
    const seed = seedText(createUser());
    const good = formatCreds('a.b.c', seed);
    expect(parseCreds(good.replace(/\n/g, '\r\n'))).toEqual({ jwt: 'a.b.c', seed });
    expect(() => parseCreds(good + ' '.repeat(80 * 1024))).toThrow(/creds/);
    expect(() => parseCreds(`-----BEGIN NATS USER JWT-----${' \n'.repeat(40_000)}`)).toThrow(/creds/);
    expect(() => parseCreds(good.replace('a.b.c', 'a.b.c d.e.f'))).toThrow(/JWT/);
    expect(() => parseCreds(good.replace('\na.b.c\n', 'a.b.c'))).toThrow(/JWT/);
  });
});

describe('the standing users', () => {
  const claimsOf = (creds: string) => decode<User>(parseCreds(creds).jwt);

  it("gives the provider proto's two permission sets on standard connections, signed by their accounts", () => {
    for (const [creds, account, perms] of [
      [fleet.creds.providerDesired, fleet.keys.accounts.desired, providerPermissions.desired()],
      [fleet.creds.providerCloud, fleet.keys.accounts.cloud, providerPermissions.cloud()],
    ] as const) {
      const c = claimsOf(creds);
      expect(c.iss).toBe(account);
      expect(subjectPermissions(c.nats)).toEqual(perms);
      expect(c.nats.allowed_connection_types).toEqual(['STANDARD']);
    }
  });

  it('gives the claims pusher the claims update request only, in the system account', () => {
    const c = claimsOf(fleet.creds.claimsPusher);
    expect(c.iss).toBe(fleet.keys.accounts.system);
    expect(subjectPermissions(c.nats)).toEqual(claimsPusherPermissions());
  });

  it("makes the bench-only hollow user a leaf of EF_SITES with proto's hollow permissions", async () => {
    const u = await mintHollowUser({ sitesAccountSeed: fleet.seeds.accounts.sites });
    const c = decode<User>(u.jwt);
    expect([c.iss, c.sub, c.name]).toEqual([fleet.keys.accounts.sites, u.publicKey, 'hollow-bench-only']);
    expect(subjectPermissions(c.nats)).toEqual(hollowLeafPermissions());
    expect(c.nats.allowed_connection_types).toEqual(['LEAFNODE']);
  });
});
