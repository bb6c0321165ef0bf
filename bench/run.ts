/**
 * `make bench`: brings up its own stack (hack/up.sh as instance `bench` unless EF_INSTANCE says otherwise), runs the
 * benchmarks, writes bench/results/<name>-<timestamp>.json and bench/results/latest.json, prints a table, and removes
 * the stack again (hack/clean.sh; EF_BENCH_KEEP=1 keeps it). See bench/README.md for what each figure means.
 *
 * Environment: EF_BENCH_N (pods and CRI sequences, default 100), EF_BENCH_RATE (creates per second, default 10),
 * EF_BENCH_RTT_N (request-reply round trips, default 200), EF_BENCH_KEEP.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { desiredSubjects } from '@edgefarm/proto';
import { criFloor } from './floor.js';
import { deletePods, podStartup } from './pods.js';
import { nowMs, summarize, table, type Summary } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const NODE = 'edge-1';
const NAMESPACE = 'default';
const N = Number(process.env.EF_BENCH_N ?? 100);
const RATE = Number(process.env.EF_BENCH_RATE ?? 10);
const RTT_N = Number(process.env.EF_BENCH_RTT_N ?? 200);
const env: NodeJS.ProcessEnv = process.env.EF_INSTANCE
  ? { ...process.env }
  : { ...process.env, EF_INSTANCE: 'bench', EF_PORT_BASE: '18000', EF_NET_OCTET: '203', EF_NS_PREFIX: 'efb' };
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function hack(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'hack', script)], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hack/${script} exited with ${code}`))));
  });
}

async function layout(expr: string): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', ['-c', `. "${ROOT}/hack/lib.sh"; ${expr}`], { env });
  return stdout.trim();
}

/** The site probe (site-probe.ts) in the site's netns: desired-stream arrival times by subject, and an echo responder. */
async function startProbe(netns: string) {
  const p = spawn('nsenter', [`--net=/run/netns/${netns}`, '--', process.execPath, path.join(HERE, 'site-probe.js'), NODE], { stdio: ['pipe', 'pipe', 'inherit'] });
  const arrivals = new Map<string, number>();
  const ready = new Promise<void>((resolve, reject) => {
    p.on('exit', (code) => reject(new Error(`site probe exited with ${code}`)));
    createInterface({ input: p.stdout! }).on('line', (line) => {
      if (line === 'READY') return resolve();
      const [kind, at, subject] = line.split(' ');
      if (kind === 'D' && subject && !arrivals.has(subject)) arrivals.set(subject, Number(at));
    });
  });
  await ready;
  return { arrivals, stop: () => p.stdin!.end() };
}

async function natsRtt(hubUrl: string, n: number): Promise<number[]> {
  const nc = await connect({ servers: hubUrl, name: 'ef-bench' });
  try {
    for (let i = 0; ; i++) {
      try {
        await nc.request('bench.echo', 'warm', { timeout: 1000 });
        if (i >= 10) break;
      } catch (err) {
        if (i > 30) throw err; // the responder's interest has not crossed the leaf link
      }
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = nowMs();
      await nc.request('bench.echo', 'x', { timeout: 2000 });
      out.push(nowMs() - t0);
    }
    return out;
  } finally {
    await nc.close();
  }
}

async function main() {
  const started = new Date();
  log(`stack: hack/up.sh (instance ${env.EF_INSTANCE})`);
  await hack('up.sh');
  const kubeconfig = await layout('echo "$EF_KUBECONFIG"');
  const sock = await layout(`ef_site_containerd_sock ${NODE}`);
  const netns = await layout(`ef_site_netns ${NODE}`);
  const hubUrl = `nats://127.0.0.1:${await layout('echo "$EF_HUB_PORT"')}`;
  const state = await layout('echo "$EF_STATE"');
  const probe = await startProbe(netns);
  try {
    log(`NATS request-reply hub -> ${NODE} x${RTT_N}`);
    const rtt = natsRtt(hubUrl, RTT_N);
    const rttMs = await rtt;
    log(`raw CRI floor: ${N} sequences at ${RATE}/s against ${sock}`);
    const floor = await criFloor(sock, N, RATE, `${state}/bench-raw`);
    const label = `s${Date.now().toString(36)}`;
    log(`pod startup: ${N} pods at ${RATE}/s onto ${NODE} (label ${label})`);
    const pods = await podStartup({ kubeconfig, node: NODE, namespace: NAMESPACE, n: N, ratePerS: RATE, timeoutMs: 180_000, label });
    await new Promise((r) => setTimeout(r, 500)); // late probe lines
    const startup = pods.filter((p) => p.ready !== undefined).map((p) => p.ready! - p.created);
    const delivery = pods
      .map((p) => (p.bound === undefined ? NaN : (probe.arrivals.get(desiredSubjects.pod(NODE, { namespace: NAMESPACE, name: p.name })) ?? NaN) - p.bound))
      .filter((x) => !Number.isNaN(x));
    log('deleting the bench pods');
    await deletePods(kubeconfig, NAMESPACE, label);

    const figures: Record<string, Summary> = {
      'pod startup: create -> Ready (watch)': summarize(startup),
      'floor: raw CRI sandbox -> running': summarize(floor),
      'delivery: bound (watch) -> site stream': summarize(delivery),
      'NATS request-reply hub <-> site': summarize(rttMs),
    };
    const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;
    const s = Object.values(figures);
    const ratios = { startupOverFloorP50: ratio(s[0]!.p50, s[1]!.p50), deliveryOverRttP50: ratio(s[2]!.p50, s[3]!.p50) };
    const result = {
      name: 'bench', startedAt: started.toISOString(), instance: env.EF_INSTANCE, node: NODE, host: os.hostname(), cpus: os.cpus().length,
      params: { pods: N, ratePerS: RATE, rttN: RTT_N, pod: 'hostNetwork busybox sleep, no probes' },
      unreadyPods: N - startup.length, undeliveredPods: N - delivery.length, figures, ratios,
      raw: { startupMs: startup, floorMs: floor, deliveryMs: delivery, rttMs },
    };
    const dir = path.join(ROOT, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    const json = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(path.join(dir, `bench-${stamp}.json`), json);
    await writeFile(path.join(dir, 'latest.json'), json);
    process.stdout.write(`\n${table(Object.entries(figures))}\n`);
    process.stdout.write(`ratios (p50): startup/floor ${ratios.startupOverFloorP50}x, delivery/rtt ${ratios.deliveryOverRttP50}x\n`);
    process.stdout.write(`written: bench/results/bench-${stamp}.json, bench/results/latest.json\n`);
  } finally {
    probe.stop();
    if (process.env.EF_BENCH_KEEP === '1') log(`keeping the stack (instance ${env.EF_INSTANCE}); remove it with hack/clean.sh`);
    else {
      log('removing the stack: hack/clean.sh');
      await hack('clean.sh');
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
