/**
 * Benchmarks 1-2 against the real site edge-1: pod startup beside its raw CRI floor, cloud->edge delivery beside the
 * bare NATS round trip through the leaf link. See bench/README.md for each figure.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { cpus } from 'node:os';
import path from 'node:path';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import { PROVIDER_INBOX_PREFIX, desiredSubjects, sessionSubjects } from '@edgefarm/proto';
import { ECHO_SESSION } from './echo.js';
import { criFloor, sandboxesGone } from './floor.js';
import { deletePods, podStartup } from './pods.js';
import { nowMs, summarize, table, type Summary } from './stats.js';
import { cpuWindow, pidsByComm, pidsOf, type CpuSplit } from './probes.js';

export interface LatencyOptions {
  /** Directory of the compiled bench (site-probe.js). */
  here: string;
  kubeconfig: string;
  node: string;
  /** The node's wire id (its key, from its join): what its desired subjects and session subjects name. */
  wireId: string;
  /** The agent's seed file from the site's join directory: the site probe connects as the agent's user. */
  agentSeedFile: string;
  namespace: string;
  sock: string;
  netns: string;
  hubUrl: string;
  /** The hub side of the round trip: the provider's EF_CLOUD user (it may publish and receive session subjects). */
  hubCredsFile: string;
  /** The fleet CA the hub's certificate chains to. */
  caFile: string;
  state: string;
  n: number;
  ratePerS: number;
  /**
   * A second, gentler pod run (0 pods: none): the pipeline's latency at a pace this machine keeps up with, beside
   * the 10/s run, which is over what 2 cores running the site and the whole control plane can start.
   */
  gentle: { n: number; ratePerS: number };
  rttN: number;
  log: (line: string) => void;
}

/** The site probe (site-probe.ts) in the site's netns: desired-stream arrival times by subject, and an echo responder. */
async function startProbe(o: LatencyOptions) {
  const args = [path.join(o.here, 'site-probe.js'), o.node, o.wireId, o.agentSeedFile];
  const p = spawn('nsenter', [`--net=/run/netns/${o.netns}`, '--', process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const arrivals = new Map<string, number>();
  const ready = new Promise<void>((resolve, reject) => {
    p.on('exit', (code) => reject(new Error(`site probe exited with ${code}`)));
    createInterface({ input: p.stdout }).on('line', (line) => {
      if (line === 'READY') return resolve();
      const [kind, at, subject] = line.split(' ');
      if (kind === 'D' && subject && !arrivals.has(subject)) arrivals.set(subject, Number(at));
    });
  });
  await ready;
  return { arrivals, pid: p.pid!, stop: () => p.stdin.end() };
}

/**
 * The bare round trip through the leaf link: a message published on the hub to the node's echo session subject
 * (`...bench-echo.down`, as the provider's EF_CLOUD user over TLS), echoed by the probe at the site on `...up`:
 * sequential, after 10 warm-up round trips (the first ones wait for the probe's interest to cross the leaf link).
 */
async function natsRtt(o: LatencyOptions, n: number): Promise<number[]> {
  const nc = await connect({
    servers: o.hubUrl,
    name: 'ef-bench',
    authenticator: credsAuthenticator(readFileSync(o.hubCredsFile)),
    tls: { caFile: o.caFile },
    inboxPrefix: PROVIDER_INBOX_PREFIX,
  });
  const down = sessionSubjects.of(o.wireId, ECHO_SESSION, 'down');
  const waiting = new Map<string, () => void>();
  nc.subscribe(sessionSubjects.of(o.wireId, ECHO_SESSION, 'up'), {
    callback: (_err, m) => {
      const id = m.string();
      waiting.get(id)?.();
      waiting.delete(id);
    },
  });
  await nc.flush();
  let seq = 0;
  const roundTrip = (timeoutMs: number) =>
    new Promise<number>((resolve, reject) => {
      const id = String(++seq);
      const t0 = nowMs();
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`no echo from the site within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, () => {
        clearTimeout(timer);
        resolve(nowMs() - t0);
      });
      nc.publish(down, id);
    });
  try {
    for (let i = 0, ok = 0; ok < 10; i++) {
      try {
        await roundTrip(1000);
        ok++;
      } catch (err) {
        if (i > 30) throw err; // the probe's interest has not crossed the leaf link
      }
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await roundTrip(2000));
    return out;
  } finally {
    await nc.close();
  }
}

/**
 * The groups of processes the latency benchmark splits the machine's CPU into while the floor and the pods run: the
 * site (agent, its containerd and the pods' shims, its leaf nats-server), the cloud side (provider, hub, control
 * plane) and the bench itself. This machine runs both sides on 2 cores.
 */
function latencyGroups(state: string, node: string, benchPids: number[]): Record<string, () => Promise<number[]>> {
  const named =
    (...names: string[]) =>
    () =>
      pidsOf(state, names);
  return {
    agent: named(`agent-${node}`),
    containerd: named(`containerd-${node}`),
    shims: () => pidsByComm('containerd-shim'),
    'site nats': named(`nats-${node}`),
    provider: named('provider-1', 'provider-2', 'provider-3'),
    hub: named('hub', 'hub-1', 'hub-2', 'hub-3'),
    'control plane': named('etcd', 'kube-apiserver', 'kube-scheduler', 'kube-controller-manager'),
    bench: async () => benchPids,
  };
}

/** The CPU split of each phase, one row per phase: CPU s per s of each group (2 means both cores of 2). */
export function cpuSplitTable(rows: Record<string, CpuSplit>): string {
  const phases = Object.entries(rows);
  if (phases.length === 0) return '';
  const cols = Object.keys(phases[0]![1]);
  const w = cols.map((c) => Math.max(c.length, 6));
  const line = (first: string, cells: (string | number)[]) =>
    [first.padEnd(22), ...cells.map((c, i) => String(c).padStart(w[i]!))].join(' ');
  return [
    line('CPU s/s', cols),
    ...phases.map(([name, split]) =>
      line(
        name,
        cols.map((c) => split[c]!.toFixed(2)),
      ),
    ),
  ].join('\n');
}

/** Creates `n` pods at `ratePerS`/s under `label`: their times and the CPU split from the first create to the last Ready. */
async function podRun(o: LatencyOptions, groups: Record<string, () => Promise<number[]>>, n: number, ratePerS: number, label: string) {
  o.log(`pod startup: ${n} pods at ${ratePerS}/s onto ${o.node} (label ${label})`);
  const window = await cpuWindow(groups);
  const pods = await podStartup({ kubeconfig: o.kubeconfig, node: o.node, namespace: o.namespace, n, ratePerS, timeoutMs: 180_000, label });
  const cpu = await window();
  const startupMs = pods.filter((p) => p.ready !== undefined).map((p) => p.ready! - p.created);
  return { pods, startupMs, cpu };
}

export async function latencyBench(o: LatencyOptions) {
  const probe = await startProbe(o);
  const groups = latencyGroups(o.state, o.node, [process.pid, probe.pid]);
  try {
    o.log(`NATS request-reply hub -> ${o.node} x${o.rttN}`);
    const rttMs = await natsRtt(o, o.rttN);
    o.log(`raw CRI floor: ${o.n} sequences at ${o.ratePerS}/s against ${o.sock}`);
    const cpu: Record<string, CpuSplit> = {};
    const floorWindow = await cpuWindow(groups);
    const floor = await criFloor(
      o.sock,
      o.n,
      o.ratePerS,
      `${o.state}/bench-raw`,
      async () => (cpu['floor: raw CRI'] = await floorWindow()),
    );
    const label = `s${Date.now().toString(36)}`;
    const { pods, startupMs: startup, cpu: podCpu } = await podRun(o, groups, o.n, o.ratePerS, label);
    cpu['pod startup'] = podCpu;
    await new Promise((r) => setTimeout(r, 500)); // late probe lines
    const delivery = pods
      .map((p) =>
        p.bound === undefined
          ? NaN
          : (probe.arrivals.get(desiredSubjects.pod(o.wireId, { namespace: o.namespace, name: p.name })) ?? NaN) - p.bound,
      )
      .filter((x) => !Number.isNaN(x));
    o.log('deleting the bench pods');
    await deletePods(o.kubeconfig, o.namespace, label);
    let gentle: number[] = [];
    let gentleFloor: number[] = [];
    const gentleName = `pod startup at ${o.gentle.ratePerS}/s: create -> Ready`;
    const gentleFloorName = `floor at ${o.gentle.ratePerS}/s: raw CRI`;
    if (o.gentle.n > 0) {
      if (!(await sandboxesGone(o.sock, o.namespace, `bench-${label}-`))) o.log('the sandboxes of the first run are still on the site');
      o.log(`raw CRI floor: ${o.gentle.n} sequences at ${o.gentle.ratePerS}/s`);
      gentleFloor = await criFloor(o.sock, o.gentle.n, o.gentle.ratePerS, `${o.state}/bench-raw`);
      const label2 = `g${Date.now().toString(36)}`;
      const slow = await podRun(o, groups, o.gentle.n, o.gentle.ratePerS, label2);
      cpu[`pod startup at ${o.gentle.ratePerS}/s`] = slow.cpu;
      gentle = slow.startupMs;
      await deletePods(o.kubeconfig, o.namespace, label2);
    }

    const startupS = summarize(startup);
    const floorS = summarize(floor);
    const deliveryS = summarize(delivery);
    const rttS = summarize(rttMs);
    const gentleS = gentle.length > 0 ? summarize(gentle) : undefined;
    const gentleFloorS = gentleFloor.length > 0 ? summarize(gentleFloor) : undefined;
    const figures: Record<string, Summary> = {
      'pod startup: create -> Ready (watch)': startupS,
      'floor: raw CRI sandbox -> running': floorS,
      ...(gentleS && gentleFloorS ? { [gentleName]: gentleS, [gentleFloorName]: gentleFloorS } : {}),
      'delivery: bound (watch) -> site stream': deliveryS,
      'NATS request-reply hub <-> site': rttS,
    };
    const ratio = (a: number, b: number) => Math.round((a / b) * 10) / 10;
    const ratios = {
      startupOverFloorP50: ratio(startupS.p50, floorS.p50),
      ...(gentleS && gentleFloorS ? { gentleStartupOverFloorP50: ratio(gentleS.p50, gentleFloorS.p50) } : {}),
      deliveryOverRttP50: ratio(deliveryS.p50, rttS.p50),
    };
    const gentleRatio =
      ratios.gentleStartupOverFloorP50 !== undefined ? `, at ${o.gentle.ratePerS}/s ${ratios.gentleStartupOverFloorP50}x` : '';
    const text = `${table(Object.entries(figures))}\nratios (p50): startup/floor ${ratios.startupOverFloorP50}x${gentleRatio}, delivery/rtt ${ratios.deliveryOverRttP50}x\nwhere the CPU went while each ran (CPU s per s; the machine has ${cpus().length}):\n${cpuSplitTable(cpu)}`;
    return {
      result: {
        node: o.node,
        params: { pods: o.n, ratePerS: o.ratePerS, gentle: o.gentle, rttN: o.rttN, pod: 'hostNetwork busybox sleep, no probes' },
        unreadyPods: o.n - startup.length,
        gentleUnreadyPods: o.gentle.n - gentle.length,
        undeliveredPods: o.n - delivery.length,
        figures,
        ratios,
        cpu,
        raw: { startupMs: startup, gentleStartupMs: gentle, floorMs: floor, gentleFloorMs: gentleFloor, deliveryMs: delivery, rttMs },
      },
      text,
    };
  } finally {
    probe.stop();
  }
}
