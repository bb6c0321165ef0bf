/**
 * `make bench`: brings up its own stack (hack/up.sh as instance `bench` unless EF_INSTANCE says otherwise), runs the
 * benchmarks, writes bench/results/bench-<timestamp>.json and bench/results/latest.json, the growth curve
 * (bench/results/growth.png, gnuplot), prints a table per benchmark, and removes the stack again (hack/clean.sh, with
 * every hollow site; EF_BENCH_KEEP=1 keeps it). See bench/README.md for what each figure means; the settings are
 * declared in settings.ts (BENCH_SETTINGS) and listed in docs/reference/settings.md.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isConfigError } from '@edgefarm/settings';
import { Cluster } from './cluster.js';
import { HollowFleet } from './fleet.js';
import { agentFootprint, type FootprintResult } from './footprint.js';
import { latencyBench } from './latency.js';
import { apiRequestsText, cpuTable, providerBaseline, scaleStep, scaleTable, type ScalePoint } from './scale.js';
import { BENCH_SETTINGS } from './settings.js';
import { reconnectStorm, type StormResult } from './storm.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const NODE = 'edge-1';
const S = settings();
const ONLY = new Set<string>(S.only);
const instance = S.instance ?? 'bench';
const env: NodeJS.ProcessEnv = S.instance
  ? { ...process.env, EF_SITES: NODE }
  : { ...process.env, EF_INSTANCE: instance, EF_PORT_BASE: '18000', EF_NET_OCTET: '203', EF_NS_PREFIX: 'efb', EF_SITES: NODE };
const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);

function hack(script: string, extra: NodeJS.ProcessEnv = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('bash', [path.join(ROOT, 'hack', script)], { env: { ...env, ...extra }, stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hack/${script} exited with ${code}`))));
  });
}

function settings(): ReturnType<typeof BENCH_SETTINGS.parse> {
  try {
    return BENCH_SETTINGS.parse(process.env);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`[bench] ${err.message}\n`);
    process.exit(2);
  }
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
  log(`stack: hack/up.sh (instance ${instance}); benchmarks: ${[...ONLY].join(', ')}`);
  await hack('up.sh');
  const kubeconfig = await layout('echo "$EF_KUBECONFIG"');
  const state = await layout('echo "$EF_STATE"');
  const hubUrl = `nats://127.0.0.1:${await layout('echo "$EF_HUB_PORT"')}`;
  const hubMonitorUrl = `http://127.0.0.1:${await layout('echo "$EF_HUB_MON_PORT"')}`;
  const fleet = new HollowFleet({
    root: ROOT,
    env,
    realSites: [NODE],
    perSite: S.perSite,
    timers: { resyncMs: S.hollowResyncMs, relistMs: S.hollowRelistMs },
    log,
  });
  const deadline = started.getTime() + S.budgetS * 1000;
  const cluster = new Cluster(kubeconfig, deadline);
  const out: Record<string, unknown> = {};
  const texts: string[] = [];
  try {
    if (ONLY.has('latency')) {
      // edge-1 joined at make up: its key names its subjects; the probe connects as its agent, the hub side as the
      // provider's EF_CLOUD user (the two users that may use the node's session subjects).
      const joinDir = path.join(await layout(`ef_site_state ${NODE}`), 'identity');
      const { wireId } = JSON.parse(await readFile(path.join(joinDir, 'node.json'), 'utf8')) as { wireId: string };
      const { result, text } = await latencyBench({
        here: HERE,
        kubeconfig,
        node: NODE,
        wireId,
        agentSeedFile: path.join(joinDir, 'agent.nk'),
        namespace: 'default',
        hubUrl,
        hubCredsFile: path.join(await layout('echo "$EF_FLEET"'), 'users', 'provider-cloud.creds'),
        caFile: path.join(await layout('echo "$EF_FLEET_TLS"'), 'ca.crt'),
        state,
        sock: await layout(`ef_site_containerd_sock ${NODE}`),
        netns: await layout(`ef_site_netns ${NODE}`),
        n: S.n,
        ratePerS: S.rate,
        gentle: { n: S.gentleN, ratePerS: S.gentleRate },
        rttN: S.rttN,
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
          durationS: S.footprintS,
          everyS: 5,
          label: `f${Date.now().toString(36)}`,
          log,
        })
      : undefined;
    footprint?.catch(() => undefined); // awaited below
    if (ONLY.has('scale') || ONLY.has('storm')) {
      const label = `h${Date.now().toString(36)}`;
      cluster.watch(label);
      const stormAt = S.stormAt;
      const nodes = ONLY.has('scale') ? S.scaleNodes : [stormAt];
      const pods = S.scalePods;
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
            { fleet, cluster, state, hubMonitorUrl, label, idleS: S.idleS, log },
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
          perSite: S.perSite,
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
      instance,
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
    if (S.keep) log(`keeping the stack (instance ${instance}, EF_SITES="${fleet.sitesEnv()}"); remove it with hack/clean.sh`);
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
