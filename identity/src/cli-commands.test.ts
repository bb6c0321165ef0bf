import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { decode, type User } from '@nats-io/jwt';
import { runCli } from './cli-commands.js';
import { parseCreds } from './users.js';
import { readFleetFile } from './store.js';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-identity-cli-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** One fleet for the file, made by `init` (checked by the first test; the others only read it). */
let fleetTmp: string;
let fleetDir: string;
let firstInit: { code: number; out: string; err: string };
beforeAll(async () => {
  fleetTmp = await mkdtemp(path.join(os.tmpdir(), 'ef-identity-cli-fleet-'));
  fleetDir = path.join(fleetTmp, 'fleet');
  firstInit = await cli('init', '--dir', fleetDir, '--desired-consumers', '200');
}, 30_000);
afterAll(async () => {
  await rm(fleetTmp, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli(
    argv,
    (s) => (out += s),
    (s) => (err += s),
  );
  return { code, out, err };
}
const SEED = /\bS[OAU][A-Z2-7]{56}\b/;

describe('the identity CLI', () => {
  it('makes a fleet once, renders a hub config from it, names the provider creds, mints node and hollow creds, printing no seed', async () => {
    const dir = fleetDir;
    const init = firstInit;
    expect(init.code).toBe(0);
    expect(init.out).toMatch(/^created the fleet identity/);
    expect((await cli('init', '--dir', dir)).out).toMatch(/^reusing/);
    const { keys, desiredConsumerLimit } = await readFleetFile(dir);
    expect(desiredConsumerLimit).toBe(200);

    const hub = await cli(
      'hub-config',
      ...['--dir', dir, '--name', 'hub', '--listen', '127.0.0.1:4222', '--monitor', '127.0.0.1:8222', '--leaf', '0.0.0.0:7422'],
      ...['--cert', '/p/hub.crt', '--key', '/p/hub.key', '--ca', '/p/ca.crt', '--store', '/s/js', '--resolver-dir', '/s/jwt'],
    );
    expect(hub.code).toBe(0);
    expect(hub.out).toContain(`system_account: ${keys.accounts.system}`);

    const prov = await cli('provider-creds', '--dir', dir);
    expect(prov.out).toMatch(/^EF_NATS_DESIRED_CREDS=\/.*provider-desired\.creds\nEF_NATS_CLOUD_CREDS=\/.*provider-cloud\.creds\n$/);

    const out = path.join(tmp, 'node');
    const node = await cli('node-creds', '--dir', dir, '--node', 'edge-1', '--out', out, '--days', '2');
    expect(node.code).toBe(0);
    const wireId = node.out.trim();
    const { jwt } = parseCreds(await readFile(path.join(out, 'node.creds'), 'utf8'));
    expect(decode<User>(jwt).sub).toBe(wireId);
    expect((await stat(path.join(out, 'node.nk'))).mode & 0o777).toBe(0o600);

    const hollow = await cli('hollow-creds', '--dir', dir, '--out', path.join(tmp, 'hollow.creds'));
    expect(hollow.out).toMatch(/bench only/);
    for (const r of [init, hub, prov, node, hollow]) expect(r.out + r.err).not.toMatch(SEED);
  }, 30_000);

  it('exits 2 on a bad use or refused input, 1 on a missing fleet', async () => {
    expect((await cli('nope')).code).toBe(2);
    expect((await cli('init')).code).toBe(2);
    expect((await cli('init', '--dir', tmp, '--bogus', 'x')).code).toBe(2);
    expect((await cli('init', '--dir', tmp, '--desired-consumers', '0')).code).toBe(2);
    const bad = await cli('node-creds', '--dir', fleetDir, '--node', 'Bad_Name', '--out', path.join(tmp, 'n'));
    expect([bad.code, bad.err]).toEqual([2, expect.stringMatching(/name/)]);
    expect((await cli('provider-creds', '--dir', path.join(tmp, 'missing'))).code).toBe(1);
  }, 30_000);
});
