import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { siteInboxPrefix } from '@edgefarm/proto';
import { LEVEL, recordingLogger, silentLogger } from '@edgefarm/testing';
import { isSeedFileError, readSeedFile, siteConnectionOptions } from './site-connection.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
let dir: string;
beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'ef-seed-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function seedFile(name: string, content: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return file;
}

/** What the authenticator sends for a nonce: the nkey it signs with. */
function authKey(options: ReturnType<typeof siteConnectionOptions>): string {
  const auth = options.authenticator;
  if (typeof auth !== 'function') throw new Error('no authenticator');
  return (auth('nonce') as { nkey: string }).nkey;
}

describe('siteConnectionOptions', () => {
  it("uses the node's inbox prefix (the only inboxes its leaf permissions reach), and no authentication without a seed", () => {
    const o = siteConnectionOptions(
      { natsUrl: 'nats://127.0.0.1:4222, nats://127.0.0.1:4223', node: 'edge-1', wireId: KEY },
      silentLogger(),
    );
    expect(o.inboxPrefix).toBe(siteInboxPrefix(KEY));
    expect(o.servers).toEqual(['nats://127.0.0.1:4222', 'nats://127.0.0.1:4223']);
    expect(o.name).toBe('edge-agent edge-1');
    expect(o.authenticator).toBeUndefined();
  });

  it('authenticates with the seed, read again at every connect; an unusable file then keeps the last good seed', () => {
    const a = nkeys.createUser();
    const b = nkeys.createUser();
    const file = seedFile('agent.nk', `${new TextDecoder().decode(a.getSeed())}\n`);
    const { log, records } = recordingLogger();
    const o = siteConnectionOptions({ natsUrl: 'nats://127.0.0.1:4222', node: 'edge-1', wireId: 'edge-1', seedFile: file }, log);
    expect(authKey(o)).toBe(a.getPublicKey());
    writeFileSync(file, new TextDecoder().decode(b.getSeed()));
    expect(authKey(o)).toBe(b.getPublicKey());
    writeFileSync(file, 'garbage');
    expect(authKey(o)).toBe(b.getPublicKey());
    expect(records.some((r) => r.level === LEVEL.warn && /last good seed/.test(String(r.msg)))).toBe(true);
  });

  it('refuses a seed file that is missing, not a seed, not a user seed, or too large', () => {
    const account = nkeys.createAccount();
    for (const file of [
      path.join(dir, 'missing.nk'),
      seedFile('bad.nk', 'SUNOTASEED'),
      seedFile('account.nk', new TextDecoder().decode(account.getSeed())),
      seedFile('big.nk', 'x'.repeat(5000)),
    ]) {
      let err: unknown;
      try {
        siteConnectionOptions({ natsUrl: 'nats://127.0.0.1:4222', node: 'edge-1', wireId: 'edge-1', seedFile: file }, silentLogger());
      } catch (e) {
        err = e;
      }
      expect(isSeedFileError(err)).toBe(true);
      expect((err as Error).message).toContain(file);
    }
  });

  it('reads the public key of the seed', () => {
    const u = nkeys.createUser();
    expect(readSeedFile(seedFile('u.nk', new TextDecoder().decode(u.getSeed()))).publicKey).toBe(u.getPublicKey());
  });
});
