/**
 * The cost of `jetstream { sync_interval: always }` on a site's nats-server (every acknowledged write fsync'd before
 * the ack) against the default (writes reach the OS at once, fsync every 2 minutes), on this machine's disk.
 *
 *   node bench/dist/fsync.js      (after tsc -b; settings: bench/settings.ts FSYNC_SETTINGS)
 *
 * For each mode: a fresh nats-server with a file store in a temp dir, one stream like the agent's outbox (last value
 * per subject, work queue) and N sequential publishes of a 300-byte status-sized message, each awaited (as the agent
 * awaits its outbox writes), over 100 subjects. Prints p50/p99 ack latency and msgs/s, writes
 * bench/results/fsync-<timestamp>.json.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { NATS_SERVER as NATS, freePort } from '@edgefarm/testing';
import { isConfigError } from '@edgefarm/settings';
import { FSYNC_SETTINGS } from './settings.js';
import { nowMs, sleep, summarize, table, type Summary } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const N = settings().n;

function settings(): ReturnType<typeof FSYNC_SETTINGS.parse> {
  try {
    return FSYNC_SETTINGS.parse(process.env);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`[fsync] ${err.message}\n`);
    process.exit(2);
  }
}

async function run(mode: 'default' | 'always'): Promise<{ latency: Summary; perSecond: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `ef-fsync-${mode}-`));
  const port = await freePort();
  const conf = path.join(dir, 'nats.conf');
  await writeFile(
    conf,
    `listen: "127.0.0.1:${port}"\njetstream { store_dir: "${dir}/js"${mode === 'always' ? ', sync_interval: always' : ''} }\n`,
  );
  const server = spawn(NATS, ['-c', conf], { stdio: 'ignore' });
  try {
    let nc;
    for (let i = 0; ; i++) {
      try {
        nc = await connect({ servers: `nats://127.0.0.1:${port}` });
        break;
      } catch (err) {
        if (i > 50) throw err;
        await sleep(100);
      }
    }
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: 'OUTBOX',
      subjects: ['ob.>'],
      storage: StorageType.File,
      retention: RetentionPolicy.Workqueue,
      max_msgs_per_subject: 1,
    });
    const js = jetstream(nc);
    const payload = new Uint8Array(300).fill(7);
    const lat: number[] = [];
    const t0 = nowMs();
    for (let i = 0; i < N; i++) {
      const s = nowMs();
      await js.publish(`ob.pod.${i % 100}`, payload);
      lat.push(nowMs() - s);
    }
    const seconds = (nowMs() - t0) / 1000;
    await nc.close();
    return { latency: summarize(lat), perSecond: Math.round(N / seconds) };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

const results = { default: await run('default'), always: await run('always') };
process.stdout.write(
  table([
    ['publish ack, sync_interval default (ms)', results.default.latency],
    ['publish ack, sync_interval always (ms)', results.always.latency],
  ]) + '\n',
);
process.stdout.write(
  `msgs/s: default ${results.default.perSecond}, always ${results.always.perSecond} (p50 ratio ${(results.always.latency.p50 / results.default.latency.p50).toFixed(1)}x)\n`,
);
const out = path.resolve(HERE, '../results');
await mkdir(out, { recursive: true });
await writeFile(
  path.join(out, `fsync-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  JSON.stringify({ n: N, host: os.hostname(), cpus: os.cpus().length, results }, null, 2),
);
