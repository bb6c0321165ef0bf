import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createOperator } from '@nats-io/nkeys';
import { createFleet, type Fleet } from './fleet.js';
import { isIdentityStoreError } from './errors.js';
import { fleetPaths, readFleetFile, readFleetSeeds, readPreload, readSeedFile, writeFleet } from './store.js';
import { ACCOUNT_ROLES } from './accounts.js';

let fleet: Fleet;
let tmp: string;
beforeAll(async () => {
  fleet = await createFleet();
});
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-identity-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const mode = async (p: string) => (await stat(p)).mode & 0o777;

describe('a fleet directory', () => {
  it('holds the seeds 0600 in 0700 directories, the JWTs and fleet.json, and reads back the same fleet', async () => {
    const dir = path.join(tmp, 'fleet');
    expect(await writeFleet(dir, fleet)).toBe(true);
    const p = fleetPaths(dir);
    expect(await mode(dir)).toBe(0o700);
    for (const sub of ['keys', 'users', 'accounts']) expect([sub, await mode(path.join(dir, sub))]).toEqual([sub, 0o700]);
    for (const f of await readdir(path.join(dir, 'keys'))) expect([f, await mode(path.join(dir, 'keys', f))]).toEqual([f, 0o600]);
    for (const f of await readdir(path.join(dir, 'users'))) expect([f, await mode(path.join(dir, 'users', f))]).toEqual([f, 0o600]);
    expect(await readFleetSeeds(dir)).toEqual(fleet.seeds);
    expect((await readFleetFile(dir)).keys).toEqual(fleet.keys);
    const { preload } = await readPreload(dir);
    for (const r of ACCOUNT_ROLES) expect(preload[fleet.keys.accounts[r]]).toBe(fleet.jwts.accounts[r]);
    expect((await readFile(p.operatorJwt, 'utf8')).trim()).toBe(fleet.jwts.operator);
    const json = await readFile(p.fleet, 'utf8');
    for (const seed of [fleet.seeds.operator, fleet.seeds.nodeSigner, fleet.seeds.accounts.sites]) expect(json).not.toContain(seed);
  });

  it('is made once: a second write keeps the first fleet', async () => {
    await writeFleet(tmp, fleet);
    // another fleet, as far as what is kept shows: another operator
    const other: Fleet = { ...fleet, keys: { ...fleet.keys, operator: createOperator().getPublicKey() } };
    expect(await writeFleet(tmp, other)).toBe(false);
    expect((await readFleetFile(tmp)).keys.operator).toBe(fleet.keys.operator);
  });

  it('refuses a half-written directory, a seed others may read, seeds that do not match fleet.json', async () => {
    await mkdir(path.join(tmp, 'half', 'keys'), { recursive: true });
    await expect(writeFleet(path.join(tmp, 'half'), fleet)).rejects.toThrow(/half-written/);
    await writeFleet(path.join(tmp, 'ok'), fleet);
    const p = fleetPaths(path.join(tmp, 'ok'));
    await chmod(p.nodeSignerSeed, 0o644);
    const err = await readSeedFile(p.nodeSignerSeed).catch((e: unknown) => e);
    expect(isIdentityStoreError(err)).toBe(true);
    await chmod(p.nodeSignerSeed, 0o600);
    await writeFile(p.nodeSignerSeed, `${fleet.seeds.accounts.sites}\n`, { mode: 0o600 });
    await expect(readFleetSeeds(path.join(tmp, 'ok'))).rejects.toThrow(/do not match/);
    await expect(readFleetFile(path.join(tmp, 'none'))).rejects.toThrow(/identity init/);
  });
});
