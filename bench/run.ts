/**
 * `make bench`: brings up its own stack (hack/up.sh as instance `bench` unless EF_INSTANCE says otherwise), runs the
 * benchmarks, writes bench/results/bench-<timestamp>.json and bench/results/latest.json, the growth curve
 * (bench/results/growth.png, gnuplot), prints a table per benchmark, and removes the stack again (hack/clean.sh, with
 * every hollow site; EF_BENCH_KEEP=1 keeps it). See bench/README.md for what each figure means.
 *
 * Environment:
 *   EF_BENCH_ONLY            comma-separated subset of latency,scale,storm,footprint (default: all)
 *   EF_BENCH_N, EF_BENCH_RATE, EF_BENCH_RTT_N    latency: pods and CRI sequences (100), creates/s (10), round trips (200)
 *   EF_BENCH_GENTLE_N, EF_BENCH_GENTLE_RATE     latency: the second, gentler pod run (40 pods at 2/s; 0 pods: none)
 *   EF_BENCH_SCALE_NODES     hollow node counts of the scale steps (default 100,1000,3000)
 *   EF_BENCH_SCALE_PODS      pods per node of each step's new nodes (default 10,10,0)
 *   EF_BENCH_STORM_AT        the step (node count) after which the reconnect storm runs (default 1000)
 *   EF_BENCH_IDLE_S          idle measuring window per step (default 45)
 *   EF_BENCH_PER_SITE        hollow nodes per hollow site (leaf server + process; default 250)
 *   EF_BENCH_HOLLOW_RESYNC_MS, EF_BENCH_HOLLOW_RELIST_MS   hollow agents' timers (default 30000 and 2000, see README)
 *   EF_BENCH_FOOTPRINT_S     agent footprint window (default 300; runs beside the scale steps)
 *   EF_BENCH_BUDGET_S        time budget of the run (default 1140): no wait goes past it, later scale steps are skipped
 *   EF_BENCH_KEEP=1          keep the stack
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Cluster } from './cluster.js';
import { HollowFleet } from './fleet.js';
import { agentFootprint, type FootprintResult } from './footprint.js';
import { latencyBench } from './latency.js';
import { apiRequestsText, cpuTable, providerBaseline, scaleStep, scaleTable, type ScalePoint } from './scale.js';
import { reconnectStorm, type StormResult } from './storm.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const NODE = 'edge-1';
const num = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const list = (name: string, fallback: string) => (process.env[name] ?? fallback).split(',').map((x) => Number(x.trim()));
const ONLY = new Set((process.env.EF_BENCH_ONLY ?? 'latency,scale,storm,footprint').split(',').map((x) => x.trim()));
const env: NodeJS.ProcessEnv = process.env.EF_INSTANCE
  ? { ...process.env, EF_SITES: NODE }
  : { ...process.env, EF_INSTANCE: 'bench', EF_PORT_BASE: '18000', EF_NET_OCTET: '203', EF_NS_PREFIX: 'efb', EF_SITES: NODE };
const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function hack(script: string, extra: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'hack', script)], { env: { ...env, ...extra }, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hack/${script} exited with ${code}`))));
  });
}

async function layout(expr: string): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', ['-c', `. "${ROOT}/hack/lib.sh"; ${expr}`], { env });
  return stdout.trim();
}

/** The growth curve: gnuplot over a data file of the scale points. */
async function plot(points: readonly ScalePoint[], dir: string): Promise<string> {
  const dat = path.join(dir, 'growth.dat');
  const rows = points.map((p) =>
    [p.nodes, p.provider.rssMiB, p.provider.cpuSPerMin, p.wire.bytesPerNodePerS, p.provider.cpuMsPerNodePerMin].join(' '),
  );
  await writeFile(dat, `# nodes providerRssMiB providerCpuSPerMin bytesPerNodePerS cpuMsPerNodePerMin\n${rows.join('\n')}\n`);
  const png = path.join(dir, 'growth.png');
  await promisify(execFile)('gnuplot', ['-e', `datafile='${dat}'; outfile='${png}'`, path.join(ROOT, 'bench', 'growth.gp')]);
  return png;
}

async function main() {
  const started = new Date();
  log(`stack: hack/up.sh (instance ${env.EF_INSTANCE}); benchmarks: ${[...ONLY].join(', ')}`);
  await hack('up.sh');
  const kubeconfig = await layout('echo "$EF_KUBECONFIG"');
  const state = await layout('echo "$EF_STATE"');
  const hubUrl = `nats://127.0.0.1:${await layout('echo "$EF_HUB_PORT"')}`;
  const hubMonitorUrl = `http://127.0.0.1:${await layout('echo "$EF_HUB_MON_PORT"')}`;
  const fleet = new HollowFleet({
    root: ROOT,
    env,
    realSites: [NODE],
    perSite: num('EF_BENCH_PER_SITE', 250),
    timers: { resyncMs: num('EF_BENCH_HOLLOW_RESYNC_MS', 30_000), relistMs: num('EF_BENCH_HOLLOW_RELIST_MS', 2_000) },
    log,
  });
  const deadline = started.getTime() + num('EF_BENCH_BUDGET_S', 1140) * 1000;
  const cluster = new Cluster(kubeconfig, deadline);
  const out: Record<string, unknown> = {};
  const texts: string[] = [];
  try {
    if (ONLY.has('latency')) {
      const { result, text } = await latencyBench({
        here: HERE,
        kubeconfig,
        node: NODE,
        namespace: 'default',
        hubUrl,
        state,
        sock: await layout(`ef_site_containerd_sock ${NODE}`),
        netns: await layout(`ef_site_netns ${NODE}`),
        n: num('EF_BENCH_N', 100),
        ratePerS: num('EF_BENCH_RATE', 10),
        gentle: { n: num('EF_BENCH_GENTLE_N', 40), ratePerS: num('EF_BENCH_GENTLE_RATE', 2) },
        rttN: num('EF_BENCH_RTT_N', 200),
        log,
      });
      out.latency = result;
      texts.push(`latency (site ${NODE})\n${text}`);
    }
    const footprint: Promise<FootprintResult> | undefined = ONLY.has('footprint')
      ? agentFootprint({
          kubeconfig,
          state,
          node: NODE,
          pods: 10,
          durationS: num('EF_BENCH_FOOTPRINT_S', 300),
          everyS: 5,
          label: `f${Date.now().toString(36)}`,
          log,
        })
      : undefined;
    footprint?.catch(() => undefined); // awaited below
    if (ONLY.has('scale') || ONLY.has('storm')) {
      const label = `h${Date.now().toString(36)}`;
      cluster.watch(label);
      const stormAt = num('EF_BENCH_STORM_AT', 1000);
      const nodes = ONLY.has('scale') ? list('EF_BENCH_SCALE_NODES', '100,1000,3000') : [stormAt];
      const pods = list('EF_BENCH_SCALE_PODS', '10,10,0');
      const baseline = await providerBaseline(state);
      const points: ScalePoint[] = [];
      let storm: StormResult | undefined;
      const skipped: number[] = [];
      const failures: string[] = [];
      for (const [i, n] of nodes.entries()) {
        // A step needs its hollow sites started, its nodes connected and an idle window: not begun with less than 5 min.
        if (Date.now() > deadline - 300_000) {
          skipped.push(n);
          log(`scale ${n}: skipped, the time budget (EF_BENCH_BUDGET_S) is spent`);
          continue;
        }
        let point: ScalePoint;
        try {
          point = await scaleStep(
            { fleet, cluster, state, hubMonitorUrl, label, idleS: num('EF_BENCH_IDLE_S', 45), log },
            { nodes: n, podsPerNode: pods[i] ?? 0 },
            baseline,
          );
        } catch (err) {
          failures.push(`scale ${n}: ${(err as Error).message}`);
          log(`scale ${n} failed: ${(err as Error).message}`);
          break;
        }
        points.push(point);
        log(
          `scale point:\n${scaleTable([point])}\nCPU s/min over the idle window:\n${cpuTable([point])}\napiserver requests/s over the idle window:\n${apiRequestsText([point])}`,
        );
        if (ONLY.has('storm') && n === stormAt) storm = await reconnectStorm(fleet, cluster, label, log);
      }
      const dir = path.join(ROOT, 'bench', 'results');
      await mkdir(dir, { recursive: true });
      if (ONLY.has('scale')) {
        out.scale = {
          perSite: num('EF_BENCH_PER_SITE', 250),
          hollowTimers: fleet.timers,
          providerBaselineKiB: baseline?.rssKiB,
          points,
          skipped,
          failures,
        };
        texts.push(
          `scale (hollow nodes; provider and hub)\n${scaleTable(points)}\nwhere the CPU went over the idle window (CPU s/min):\n${cpuTable(points)}\napiserver requests/s over the idle window:\n${apiRequestsText(points)}${skipped.length ? `\nskipped (time budget): ${skipped.join(', ')} nodes` : ''}${failures.map((f) => `\nFAILED ${f}`).join('')}`,
        );
        if (points.length > 1) texts.push(`growth curve: ${path.relative(ROOT, await plot(points, dir))}`);
      }
      if (storm) {
        out.storm = storm;
        texts.push(
          `reconnect storm (${storm.nodes} nodes, ${storm.deleted} deletes + ${storm.created} creates while cut)\n` +
            `cut -> all EdgeConnected=False ${storm.disconnectedS} s; after the heal: all connected ${storm.reconnectedS} s, deletes applied ${storm.deletesAppliedS} s, ` +
            `creates Ready ${storm.createsAppliedS} s, everything ${storm.allAppliedS} s`,
        );
      }
    }
    if (footprint) {
      const f = await footprint;
      out.footprint = f;
      texts.push(
        `agent footprint (${f.node}, ${f.podsReady}/${f.pods} pods Running, ${f.durationS} s, ${f.rssMiB.n} samples)\n` +
          `VmRSS MiB p50 ${f.rssMiB.p50}, p95 ${f.rssMiB.p95}, max ${f.rssMiB.max}; RssAnon (private) MiB p50 ${f.anonMiB.p50}, ` +
          `p95 ${f.anonMiB.p95}; CPU ${f.cpuSPerMin} s/min`,
      );
    }
    const result = {
      name: 'bench',
      startedAt: started.toISOString(),
      instance: env.EF_INSTANCE,
      host: os.hostname(),
      cpus: os.cpus().length,
      loadavg: os.loadavg(),
      ...out,
    };
    const dir = path.join(ROOT, 'bench', 'results');
    await mkdir(dir, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    const json = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(path.join(dir, `bench-${stamp}.json`), json);
    await writeFile(path.join(dir, 'latest.json'), json);
    process.stdout.write(
      `\n${texts.join('\n\n')}\n\nload average at the end: ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')}\n`,
    );
    process.stdout.write(`written: bench/results/bench-${stamp}.json, bench/results/latest.json\n`);
  } finally {
    cluster.stop();
    if (process.env.EF_BENCH_KEEP === '1')
      log(`keeping the stack (instance ${env.EF_INSTANCE}, EF_SITES="${fleet.sitesEnv()}"); remove it with hack/clean.sh`);
    else {
      log('removing the stack: hack/clean.sh');
      await hack('clean.sh', { EF_SITES: fleet.sitesEnv() });
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
