/**
 * The e2e suite's handle on a real EdgeFarm stack: it runs the same hack/ scripts a user runs (`make up`), as
 * instance `e2e` (own ports, netns names, state dir), and talks to it with the real kubectl and CRI.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { type cri as criApi } from '@edgefarm/proto';
import { criClients } from '@edgefarm/cri';
import { E2E_SETTINGS } from '@edgefarm/testing/settings';
import { runHack } from './global-setup.js';

const run = promisify(execFile);
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The e2e settings (E2E_SETTINGS): the suite's one reading of the environment, besides global-setup.ts. */
export const E2E = E2E_SETTINGS.parse(process.env);
export const INSTANCE = E2E.instance;
const env = { ...process.env, EF_INSTANCE: INSTANCE };

/** Runs a hack/ script, streaming its output to the test log; rejects with the tail of its output on failure. */
export function hack(script: string, ...args: string[]): Promise<void> {
  return runHack(ROOT, script, ...args);
}

/** A value from hack/lib.sh for this instance, e.g. layout('ef_site_containerd_sock edge-1'). */
export async function layout(expr: string): Promise<string> {
  const { stdout } = await run('bash', ['-c', `. "${ROOT}/hack/lib.sh"; ${expr}`], { env });
  return stdout.trim();
}

export async function kubeconfig(): Promise<string> {
  return layout('echo "$EF_KUBECONFIG"');
}

export async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run('kubectl', args, { env: { ...env, KUBECONFIG: await kubeconfig() }, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export async function kubectlJson<T>(...args: string[]): Promise<T> {
  return JSON.parse(await kubectl(...args, '-o', 'json')) as T;
}

/** Polls `check` until it returns a value (not undefined) or the timeout passes; then throws with the last state. */
export async function eventually<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : JSON.stringify(last)}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function cri(site: string) {
  return criClients(await layout(`ef_site_containerd_sock ${site}`), 10_000);
}

/** The subset of a Pod the e2e tests read. */
export interface PodObj {
  metadata: {
    name: string;
    uid: string;
    labels?: Record<string, string>;
    deletionTimestamp?: string;
    ownerReferences?: { kind: string; name: string }[];
  };
  spec: { nodeName?: string; containers: { name: string; image: string }[] };
  status: {
    phase?: string;
    reason?: string;
    message?: string;
    podIP?: string;
    containerStatuses?: {
      name: string;
      ready: boolean;
      image: string;
      imageID?: string;
      containerID?: string;
      restartCount: number;
      state?: Record<string, unknown>;
    }[];
    conditions?: { type: string; status: string; reason?: string }[];
  };
}

/** Status of one of a pod's conditions (Ready, PodScheduled, ...), undefined when it has none of that type. */
export function podCondition(p: PodObj, type: string): string | undefined {
  return p.status.conditions?.find((c) => c.type === type)?.status;
}
export interface PodListObj {
  items: PodObj[];
}

export async function pods(selector: string): Promise<PodObj[]> {
  return (await kubectlJson<PodListObj>('get', 'pods', '-l', selector)).items;
}

/** Running, every container ready, not terminating. */
export function isRunningReady(p: PodObj): boolean {
  return (
    p.status.phase === 'Running' &&
    !p.metadata.deletionTimestamp &&
    (p.status.containerStatuses ?? []).length > 0 &&
    (p.status.containerStatuses ?? []).every((c) => c.ready)
  );
}

export function log(line: string): void {
  process.stderr.write(`[e2e] ${line}\n`);
}

/**
 * Cleanup for a test file: deletes what it created (kubectl delete --ignore-not-found, no wait) and waits until no
 * pod matching `selector` is left in the API. Pods of the file are labelled so one selector covers them.
 */
export async function deleteAndWait(selector: string, objects: string[], timeoutMs = 120_000): Promise<void> {
  for (const o of objects) await kubectl('delete', o, '--ignore-not-found', '--wait=false');
  await eventually(
    `pods ${selector} gone from the API`,
    timeoutMs,
    async () => ((await pods(selector)).length === 0 ? true : undefined),
    500,
  );
}

/** Sandboxes and containers in a site's containerd whose CRI labels match (e.g. io.kubernetes.pod.uid). */
export async function criState(
  site: string,
  labels: Record<string, string>,
): Promise<{ sandboxes: criApi.PodSandbox[]; containers: criApi.Container[] }> {
  const { runtime } = await cri(site);
  try {
    const { items } = await runtime.listPodSandbox({ filter: { labelSelector: labels } });
    const { containers } = await runtime.listContainers({ filter: { labelSelector: labels } });
    return { sandboxes: items, containers };
  } finally {
    runtime.close();
  }
}

/**
 * Runs a command in a pod's running container at the site, through the site's containerd (CRI ExecSync): how the
 * e2e tests look inside a container until the provider serves `kubectl exec`.
 */
export async function siteExec(
  site: string,
  podUid: string,
  container: string,
  cmd: string[],
): Promise<{ stdout: string; stderr: string; exitCode: number; containerId: string }> {
  const { runtime } = await cri(site);
  try {
    const { containers } = await runtime.listContainers({
      filter: { labelSelector: { 'io.kubernetes.pod.uid': podUid, 'io.kubernetes.container.name': container }, state: { state: 1 } },
    });
    const c = containers[0];
    if (!c) throw new Error(`no running container ${container} of pod ${podUid} at ${site}`);
    const res = await runtime.execSync({ containerId: c.id, cmd, timeout: 10n });
    const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
    return { stdout: text(res.stdout), stderr: text(res.stderr), exitCode: res.exitCode, containerId: c.id };
  } finally {
    runtime.close();
  }
}

/** `kubectl apply` of one object, given as a plain object (written to a temporary file: JSON is valid YAML). */
export async function applyObject(obj: object): Promise<string> {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-e2e-'));
  try {
    const file = path.join(dir, 'object.json');
    await writeFile(file, JSON.stringify(obj));
    return await kubectl('apply', '-f', file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const BUSYBOX = 'docker.io/edgefarm/busybox:1.35';
export const BUSYBOX_LATEST = 'docker.io/edgefarm/busybox:latest';
/** A shell loop that exits on SIGTERM (sh as PID 1 gets TERM only through a trap). */
export const SLEEP_LOOP_TRAPPED = ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'];

/** What puts a pod on edge node edge-1: the node-role and hostname selector and the edge taint's toleration. */
export const EDGE_PLACEMENT = {
  nodeSelector: { 'node-role.kubernetes.io/edge': '', 'kubernetes.io/hostname': 'edge-1' },
  tolerations: [{ key: 'edgefarm.io/edge', operator: 'Exists', effect: 'NoSchedule' }],
};

/** A Deployment of busybox pods on the edge, labelled app=<name> and e2e=<file>. */
export function edgeDeployment(name: string, file: string, replicas: number, opts: { image?: string; grace?: number } = {}): object {
  const labels = { app: name, e2e: file };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels },
        spec: {
          ...EDGE_PLACEMENT,
          terminationGracePeriodSeconds: opts.grace ?? 5,
          containers: [{ name: 'app', image: opts.image ?? BUSYBOX, imagePullPolicy: 'IfNotPresent', command: SLEEP_LOOP_TRAPPED }],
        },
      },
    },
  };
}

/** PID of provider replica `r` (hack/up.sh runs replica r as provider-r). */
export async function providerPid(r: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  if ((await layout('echo "$EF_DEPLOY"')) !== 'cluster')
    return Number((await readFile(path.join(await layout('echo "$EF_PIDS"'), `provider-${r}.pid`), 'utf8')).trim());
  // Installed into the cluster (one replica on the cloud node): the provider container's process, found by its
  // command and its cgroup below this instance's cloud kubelet.
  return providerProcess(`/edgefarm/${INSTANCE}/cloud/`);
}

/**
 * PID of the provider process serving `node`. Process stacks: replica {@link servingReplica}'s. Installed into the
 * cluster: the provider pod whose address the Node advertises (every replica listens on its own pod IP; with
 * EF_CLOUD_NET=host the one replica shares the host's), its container's process found by the pod's cgroup.
 */
export async function servingProviderPid(node: string): Promise<number> {
  if ((await layout('echo "$EF_DEPLOY"')) !== 'cluster') return providerPid(await servingReplica(node));
  if ((await layout('echo "$EF_CLOUD_NET"')) === 'host') return providerPid(1);
  const address = await kubectl('get', 'node', node, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}');
  const pods = await kubectlJson<{ items: { metadata: { uid: string; name: string }; status: { podIP?: string } }[] }>(
    '-n',
    'edgefarm-system',
    'get',
    'pods',
    '-l',
    'app.kubernetes.io/name=edgefarm-provider',
  );
  const pod = pods.items.find((p) => p.status.podIP === address);
  if (!pod) throw new Error(`no provider pod has ${node}'s address ${address}`);
  return providerProcess(`/edgefarm/${INSTANCE}/cloud/`, `pod${pod.metadata.uid}`);
}

/** The provider container's process below `cgroupRoot` whose cgroup path also holds `within` (a pod's). */
async function providerProcess(cgroupRoot: string, within = ''): Promise<number> {
  const { readFile, readdir } = await import('node:fs/promises');
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes('/opt/edgefarm/provider/dist/main.js')) continue;
      const cgroup = await readFile(`/proc/${entry}/cgroup`, 'utf8');
      if (cgroup.includes(cgroupRoot) && cgroup.includes(within)) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no provider process below cgroup ${cgroupRoot}${within ? ` in ${within}` : ''}`);
}

/**
 * The provider replica serving a node, from the kubelet port its Node advertises (hack/lib.sh): a port of replica r's
 * node-port range (20 from EF_KUBELET_NODE_PORT_BASE + (r-1)*20), or replica r's shared port EF_KUBELET_PORT + r - 1.
 */
export async function servingReplica(node: string): Promise<number> {
  const port = Number(await kubectl('get', 'node', node, '-o', 'jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}'));
  const nodeBase = Number(await layout('echo "$EF_KUBELET_NODE_PORT_BASE"'));
  if (port >= nodeBase && port < nodeBase + 100) return Math.floor((port - nodeBase) / 20) + 1;
  return port - Number(await layout('echo "$EF_KUBELET_PORT"')) + 1;
}

/** Whether a PID is gone or a zombie (this machine's PID 1 reaps exited processes only every ~2 s). */
export async function isZombieOrGone(pid: number): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  try {
    process.kill(pid, 0);
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}
