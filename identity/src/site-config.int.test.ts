/**
 * The site server's JetStream store is capped by renderSiteConfig's max_file_store, against a real nats-server: the
 * server reports the cap, and a stream that would outgrow it is refused with JetStream's own error while the files
 * on disk stay below the cap (instead of JetStream taking 75 % of whatever the disk had free at its start, and
 * failing with the disk full once pods took the rest).
 */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { Streams, outboxSubjects, siteInboxPrefix } from '@edgefarm/proto';
import { freePort, startNats, type ManagedProcess } from '@edgefarm/testing';
import { renderSiteConfig } from './site-config.js';

const T = 60_000;
const CAP = 4 * 1024 * 1024;
let dir: string;
let server: ManagedProcess | undefined;

afterAll(async () => {
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}, T);

async function du(d: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(d, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}

describe('the site server JetStream store', () => {
  it(
    'is capped at maxFileStoreBytes: the cap is reported, writes past it are refused, the disk holds less',
    async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'ef-site-store-'));
      const agent = createUser();
      const [port, monitorPort] = [await freePort(), await freePort()];
      const conf = path.join(dir, 'nats.conf');
      await writeFile(
        conf,
        renderSiteConfig({
          node: 'edge-1',
          wireId: 'edge-1',
          listen: `127.0.0.1:${port}`,
          monitor: `127.0.0.1:${monitorPort}`,
          storeDir: path.join(dir, 'js'),
          syncAlways: false,
          hubLeafUrls: [`nats-leaf://127.0.0.1:${await freePort()}`], // no hub: the leaf keeps dialling
          credsFile: path.join(dir, 'none.creds'),
          agentPublicKey: agent.getPublicKey(),
          maxFileStoreBytes: CAP,
        }),
      );
      server = await startNats('nats-site-store', conf, path.join(dir, 'nats.log'), monitorPort);
      const jsz = (await (await fetch(`http://127.0.0.1:${monitorPort}/jsz`)).json()) as { config: { max_storage: number } };
      expect(jsz.config.max_storage).toBe(CAP);

      const nc = await connect({
        servers: `127.0.0.1:${port}`,
        authenticator: nkeyAuthenticator(agent.getSeed()),
        inboxPrefix: siteInboxPrefix('edge-1'),
      });
      try {
        const jsm = await jetstreamManager(nc);
        const subject = outboxSubjects.node('edge-1');
        await jsm.streams.add({ name: Streams.outbox('edge-1'), subjects: [subject] });
        const js = jetstream(nc);
        const payload = new Uint8Array(64 * 1024);
        let stored = 0;
        let refused: unknown;
        for (let i = 0; i < 200 && !refused; i++) {
          try {
            await js.publish(subject.replace('>', `pod.default.p${i}`), payload);
            stored++;
          } catch (err) {
            refused = err;
          }
        }
        const onDisk = await du(path.join(dir, 'js'));
        process.stdout.write(
          `site store: cap ${CAP} B; ${stored} writes of 64 KiB stored, then: ${String(refused)}; ${onDisk} B on disk\n`,
        );
        expect(refused).toBeDefined();
        expect(String(refused)).toMatch(/resources|storage/i);
        expect(onDisk).toBeLessThanOrEqual(CAP + 1024 * 1024);
      } finally {
        await nc.close();
      }
    },
    T,
  );
});
