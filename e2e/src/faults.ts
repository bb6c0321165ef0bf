/**
 * Helpers of the fault suite (fault.test.ts): what the site runs (from its containerd, through CRI), what the API
 * wants, whether they agree, the node's conditions while a fault lasts, and the table of results.
 *
 * "Converged" means, for the pods of the suite (label e2e=fault): every pod in the API that is not being deleted is
 * Running and Ready, and at the site it has exactly one sandbox (ready) with its containers; every pod the API no
 * longer has, or is deleting, has nothing left at the site; and the API's restart counts equal the site's container
 * attempts. "Duplicates" counts what was applied twice: a pod with more than one sandbox, or a container the suite
 * expects to be untouched that was restarted or replaced.
 */
import { execFile } from 'node:child_process';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cri as criApi } from '@edgefarm/proto';
import { criState, hack, isRunningReady, kubectlJson, layout, log, pods, type PodObj } from './stack.js';

const run = promisify(execFile);
export const SITE = 'edge-1';
export const SELECTOR = 'e2e=fault';

/** One pod at the site: its sandboxes and containers (every attempt still in containerd). */
export interface SitePod {
  uid: string;
  sandboxes: criApi.PodSandbox[];
  containers: criApi.Container[];
}

/** Every EdgeFarm pod at the site, by UID. */
export async function sitePods(site = SITE): Promise<Map<string, SitePod>> {
  const { sandboxes, containers } = await criState(site, {});
  const out = new Map<string, SitePod>();
  const of = (uid: string) => {
    let p = out.get(uid);
    if (!p) out.set(uid, (p = { uid, sandboxes: [], containers: [] }));
    return p;
  };
  for (const s of sandboxes) of(s.labels['io.kubernetes.pod.uid'] ?? '?').sandboxes.push(s);
  for (const c of containers) of(c.labels['io.kubernetes.pod.uid'] ?? '?').containers.push(c);
  return out;
}

/** The running container of a site pod (undefined when none runs). */
export function runningContainer(p: SitePod | undefined, name = 'app'): criApi.Container | undefined {
  return p?.containers.find((c) => c.metadata?.name === name && c.state === criApi.ContainerState.CONTAINER_RUNNING);
}

/** Highest CRI attempt of a container at the site (grows with every new container of that name). */
export function siteAttempt(p: SitePod | undefined, name = 'app'): number {
  return Math.max(-1, ...(p?.containers ?? []).filter((c) => c.metadata?.name === name).map((c) => c.metadata?.attempt ?? 0));
}

/**
 * The restart count the site keeps for a container: the kubelet's `io.kubernetes.container.restartCount` annotation
 * of its newest attempt. It can be below the attempt: a container created but never started (e.g. containerd went
 * away between create and start) is replaced without counting a restart.
 */
export function siteRestartCount(p: SitePod | undefined, name = 'app'): number {
  const newest = (p?.containers ?? [])
    .filter((c) => c.metadata?.name === name)
    .sort((a, b) => (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0))[0];
  return newest ? Number(newest.annotations['io.kubernetes.container.restartCount'] ?? -1) : -1;
}

export interface Agreement {
  ok: boolean;
  /** What still differs (empty when ok). */
  diffs: string[];
  /** Pods with more than one sandbox at the site. */
  duplicateSandboxes: string[];
  api: PodObj[];
  site: Map<string, SitePod>;
}

/**
 * Compares the suite's pods in the API with the site. `known` is every UID the suite has seen (pods of other test
 * files at the same site are not looked at).
 */
export async function agreement(known: Set<string>): Promise<Agreement> {
  const api = (await pods(SELECTOR)).filter((p) => p.spec.nodeName === SITE);
  for (const p of api) known.add(p.metadata.uid);
  const site = await sitePods();
  const diffs: string[] = [];
  const duplicateSandboxes: string[] = [];
  const wanted = new Set(api.filter((p) => !p.metadata.deletionTimestamp).map((p) => p.metadata.uid));
  for (const p of api) {
    const name = p.metadata.name;
    if (p.metadata.deletionTimestamp) {
      diffs.push(`${name}: still deleting in the API`);
      continue;
    }
    // A crash-looping pod (label e2e-crash) is never Ready for long: only its sandbox and restart count must agree.
    const crashing = p.metadata.labels?.['e2e-crash'] === 'true';
    if (!crashing && !isRunningReady(p)) diffs.push(`${name}: ${p.status.phase ?? 'no phase'}, not Running and Ready`);
    const s = site.get(p.metadata.uid);
    const ready = (s?.sandboxes ?? []).filter((x) => x.state === criApi.PodSandboxState.SANDBOX_READY);
    if (ready.length !== 1) diffs.push(`${name}: ${ready.length} ready sandboxes at the site`);
    if ((s?.sandboxes.length ?? 0) > 1) duplicateSandboxes.push(name);
    for (const cs of p.status.containerStatuses ?? []) {
      if (!crashing && !runningContainer(s, cs.name)) diffs.push(`${name}/${cs.name}: not running at the site`);
      const restarts = siteRestartCount(s, cs.name);
      if (cs.restartCount !== restarts)
        diffs.push(`${name}/${cs.name}: restartCount ${cs.restartCount} in the API, ${restarts} at the site`);
    }
  }
  for (const uid of known) {
    if (wanted.has(uid)) continue;
    const s = site.get(uid);
    if (s && (s.sandboxes.length > 0 || s.containers.length > 0))
      diffs.push(`pod ${uid}: gone from the API but ${s.sandboxes.length} sandboxes at the site`);
  }
  return { ok: diffs.length === 0, diffs, duplicateSandboxes, api, site };
}

/** Waits until the API and the site agree; resolves with the time it took and the agreement. */
export async function converge(
  known: Set<string>,
  timeoutMs: number,
  extra: () => Promise<string[]> = async () => [],
): Promise<{ ms: number; agreement: Agreement }> {
  const start = Date.now();
  let last: Agreement | undefined;
  let lastExtra: string[] = [];
  while (Date.now() - start < timeoutMs) {
    try {
      last = await agreement(known);
      lastExtra = await extra();
      if (last.ok && lastExtra.length === 0) return { ms: Date.now() - start, agreement: last };
    } catch {
      // a component may be restarting; ask again
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`not converged after ${timeoutMs} ms: ${[...(last?.diffs ?? ['no answer']), ...lastExtra].join('; ')}`);
}

interface NodeObj {
  spec: { taints?: { key: string; effect: string }[] };
  status: { conditions?: { type: string; status: string }[] };
}

/** The node's Ready and EdgeConnected conditions and its taints. */
export async function nodeState(node = SITE): Promise<{ ready?: string; connected?: string; taints: string[] }> {
  const n = await kubectlJson<NodeObj>('get', 'node', node);
  const cond = (t: string) => n.status.conditions?.find((c) => c.type === t)?.status;
  return { ready: cond('Ready'), connected: cond('EdgeConnected'), taints: (n.spec.taints ?? []).map((t) => `${t.key}:${t.effect}`) };
}

/**
 * Samples the node every 2 s while a fault lasts and records anything that would make Kubernetes evict or recreate
 * pods: Ready not True, or a not-ready/unreachable taint. stop() returns what was seen.
 */
export function watchNode(node = SITE): { stop(): Promise<{ samples: number; problems: string[]; disconnectedAfterMs?: number }> } {
  const started = Date.now();
  const problems: string[] = [];
  let samples = 0;
  let disconnectedAfterMs: number | undefined;
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const s = await nodeState(node);
        samples++;
        if (s.ready !== 'True') problems.push(`Ready=${s.ready} at +${Date.now() - started} ms`);
        const bad = s.taints.filter((t) => t.startsWith('node.kubernetes.io/'));
        if (bad.length) problems.push(`taints ${bad.join(',')} at +${Date.now() - started} ms`);
        if (s.connected === 'False' && disconnectedAfterMs === undefined) disconnectedAfterMs = Date.now() - started;
      } catch {
        // the apiserver is not part of the faults; a failed sample is just skipped
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { samples, problems, disconnectedAfterMs };
    },
  };
}

export async function fault(...args: string[]): Promise<void> {
  await hack('fault.sh', ...args);
}

/** The site nats-server's JetStream view of the node's streams (messages and last sequence), from inside the netns. */
export async function siteStreams(site = SITE): Promise<Record<string, { messages: number; lastSeq: number }>> {
  const ns = await layout(`ef_site_netns ${site}`);
  const port = await layout('echo $EF_SITE_NATS_MON_PORT');
  const { stdout } = await run('nsenter', [
    `--net=/run/netns/${ns}`,
    'curl',
    '-sf',
    '--max-time',
    '3',
    `http://127.0.0.1:${port}/jsz?streams=true`,
  ]);
  const jsz = JSON.parse(stdout) as {
    account_details?: { stream_detail?: { name: string; state: { messages: number; last_seq: number } }[] }[];
  };
  const out: Record<string, { messages: number; lastSeq: number }> = {};
  for (const a of jsz.account_details ?? [])
    for (const s of a.stream_detail ?? []) out[s.name] = { messages: s.state.messages, lastSeq: s.state.last_seq };
  return out;
}

/** Lines of the site agent's log that match. */
export async function agentLog(match: RegExp, site = SITE): Promise<string[]> {
  const file = path.join(await layout('echo "$EF_LOGS"'), `agent-${site}.log`);
  return (await readFile(file, 'utf8')).split('\n').filter((l) => match.test(l));
}

export interface CaseResult {
  case: string;
  convergeMs: number;
  lost: number;
  duplicates: number;
  notes: string;
}

/** Logs a case's row and appends it to <state>/fault-results.jsonl (the closing note's table is made from it). */
export async function record(r: CaseResult): Promise<void> {
  log(
    `fault case | ${r.case} | converged ${r.convergeMs} ms after the fault ended | lost ${r.lost} | duplicates ${r.duplicates} | ${r.notes}`,
  );
  const dir = await layout('echo "$EF_STATE"');
  await mkdir(dir, { recursive: true });
  await appendFile(
    path.join(dir, 'fault-results.jsonl'),
    JSON.stringify({ at: new Date().toISOString(), hub: await layout('echo "$EF_HUB"'), ...r }) + '\n',
  );
}
