/**
 * The secured fleet on the real stack (decisions 0008 and 0009, docs/security.md): the sites joined by token as
 * `make up` joined them; nothing reaches the hub's leaf port or a site's server without credentials; `edgefarm node
 * revoke` cuts a site off within seconds and keeps it out while its pods run on, and a new token brings it back under
 * a new key; the registrar refuses a token for another node, a node that has joined, and a token naming another CA.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { cri as criApi } from '@edgefarm/proto';
import { RawLeaf } from '@edgefarm/testing';
import {
  BUSYBOX,
  INSTANCE,
  ROOT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  criState,
  deleteAndWait,
  eventually,
  hack,
  isRunningReady,
  kubeconfig,
  kubectl,
  kubectlJson,
  layout,
  log,
  pods,
  type PodObj,
} from './stack.js';

jest.setTimeout(10 * 60_000);

const SELECTOR = 'e2e=security';
const NAME = 'e2e-security';
/** The site this file revokes and joins again; edge-1 must not notice. */
const REVOKED = 'edge-2';
const OTHER = 'edge-1';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command for this instance; `stdin` is written to its standard input (a token never goes on a command line). */
function run(cmd: string, args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, EF_INSTANCE: INSTANCE }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(stdin);
  });
}

/** The edgefarm command (cli/dist) as the admin. */
async function edgefarm(args: string[], stdin = ''): Promise<Run> {
  return run(process.execPath, [path.join(ROOT, 'cli/dist/main.js'), '--kubeconfig', await kubeconfig(), ...args], stdin);
}

async function tokenCreate(node: string): Promise<{ id: string; token: string }> {
  const r = await edgefarm(['token', 'create', node, '--ttl', '10m', '-o', 'json']);
  expect(r).toMatchObject({ code: 0 });
  return JSON.parse(r.stdout) as { id: string; token: string };
}

interface NodeJson {
  node: string;
  wireId: string;
  registrarUrl: string;
  hubLeafUrls: string[];
  expiresAt: string;
}

async function joinDir(site: string): Promise<string> {
  return path.join(await layout(`ef_site_state ${site}`), 'identity');
}

async function nodeJson(site: string): Promise<NodeJson> {
  return JSON.parse(await readFile(path.join(await joinDir(site), 'node.json'), 'utf8')) as NodeJson;
}

interface EdgeNodeObj {
  status?: { connected?: boolean; identity?: { publicKey?: string; expiresAt?: string } };
}
interface NodeObj {
  status: { conditions: { type: string; status: string }[] };
}

async function recordedKey(node: string): Promise<string | undefined> {
  return (await kubectlJson<EdgeNodeObj>('get', 'edgenode', node)).status?.identity?.publicKey;
}

async function condition(node: string, type: string): Promise<string | undefined> {
  return (await kubectlJson<NodeObj>('get', 'node', node)).status.conditions.find((c) => c.type === type)?.status;
}

let monitorPorts: string[] = [];
/** Names (site server names) of the leaf connections every hub member holds, from their monitoring ports. */
async function hubLeafs(): Promise<string[]> {
  const names: string[] = [];
  for (const port of monitorPorts) {
    const res = await fetch(`http://127.0.0.1:${port}/leafz`);
    const body = (await res.json()) as { leafs?: { name: string }[] };
    names.push(...(body.leafs ?? []).map((l) => l.name));
  }
  return names;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  monitorPorts = (await layout('ef_hub_members')).split('\n').map((line) => line.split(' ')[3]!);
});

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`deployment/${NAME}`]);
});

test("each site joined by token as make up did: the key it made is its EdgeNode identity; no secret in a process list, a log or the hub's disk", async () => {
  for (const site of [OTHER, REVOKED]) {
    const n = await nodeJson(site);
    expect(n.node).toBe(site);
    expect(n.wireId).toMatch(/^U[A-Z2-7]{55}$/);
    expect(await recordedKey(site)).toBe(n.wireId);
    expect(n.hubLeafUrls.every((u) => u.startsWith('tls://'))).toBe(true);
    const dir = await joinDir(site);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const f of ['node.nk', 'node.creds', 'agent.nk', 'agent.env']) expect((await stat(path.join(dir, f))).mode & 0o777).toBe(0o600);
    const join = JSON.parse(await readFile(path.join(await layout(`ef_site_state ${site}`), 'join.json'), 'utf8')) as {
      durationMs: number;
      steps: { step: string; ms: number }[];
    };
    log(`${site}: make up's edgefarm join took ${join.durationMs} ms: ${join.steps.map((s) => `${s.step} ${s.ms} ms`).join('; ')}`);
  }
  expect((await hubLeafs()).sort()).toEqual(expect.arrayContaining([OTHER, REVOKED]));

  // Every seed of the fleet (hub, provider, registrar, sites) is read from a 0600 file: none on a command line, none logged.
  const fleet = await layout('echo "$EF_FLEET"');
  for (const f of await readdir(path.join(fleet, 'keys'))) expect((await stat(path.join(fleet, 'keys', f))).mode & 0o777).toBe(0o600);
  const secret = /\bS[OAU][A-Z2-7]{54,}|ef1\.[a-z0-9]{6}\.[a-z0-9]{32}\./;
  const cmdlines: string[] = [];
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    cmdlines.push(await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''));
  }
  expect(cmdlines.filter((c) => secret.test(c)).map((c) => c.slice(0, 80))).toEqual([]);
  // A reader of the hub's disk finds no seed: the hub holds the operator's and the accounts' JWTs (public), its streams.
  const hub = path.join(await layout('echo "$EF_STATE"'), 'hub');
  const hubFiles = (await readdir(hub, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  for (const e of hubFiles) {
    const file = path.join(e.parentPath, e.name);
    expect([file, secret.test(await readFile(file, 'latin1'))]).toEqual([file, false]);
  }
  log(`no seed or token in ${cmdlines.length} command lines, the stack's logs, or the ${hubFiles.length} files of the hub's directory`);
  const logs = await layout('echo "$EF_LOGS"');
  for (const f of await readdir(logs)) {
    const text = await readFile(path.join(logs, f), 'utf8').catch(() => '');
    expect([f, secret.test(text)]).toEqual([f, false]);
  }
});

test("without credentials nothing gets in: the hub's leaf and client ports, a site's client port", async () => {
  const fleetIp = await layout('echo "$EF_FLEET_IP"');
  const leafPort = Number(await layout('echo "$EF_HUB_LEAF_PORT"'));
  const caFile = path.join(await layout('echo "$EF_FLEET_TLS"'), 'ca.crt');
  const noCreds = await RawLeaf.connect({ host: fleetIp, port: leafPort, caFile, name: 'e2e-no-credentials' });
  const plain = await RawLeaf.connect({ host: fleetIp, port: leafPort, name: 'e2e-plain-text' });
  const client = await RawLeaf.connect({ port: Number(await layout('echo "$EF_HUB_PORT"')), caFile, name: 'e2e-client-no-credentials' });
  try {
    log(`hub leaf port, TLS and no credentials: ${noCreds.ok ? 'ACCEPTED' : 'refused'} (${noCreds.errors.join('; ')})`);
    log(`hub leaf port, plain text: ${plain.ok ? 'ACCEPTED' : 'refused'} (${plain.errors.join('; ')})`);
    log(`hub client port, TLS and no credentials: ${client.ok ? 'ACCEPTED' : 'refused'} (${client.errors.join('; ')})`);
    expect(noCreds.ok).toBe(false);
    expect(noCreds.errors.join(' ')).toMatch(/Authorization Violation/i);
    expect(plain.ok).toBe(false);
    expect(client.ok).toBe(false);
    expect(client.errors.join(' ')).toMatch(/Authorization Violation/i);
  } finally {
    for (const c of [noCreds, plain, client]) c.close();
  }

  // The site's own server: a client without the agent's nkey gets INFO (auth_required) and then an error.
  const ns = await layout(`ef_site_netns ${OTHER}`);
  const port = await layout('echo "$EF_SITE_NATS_PORT"');
  const script =
    `exec 3<>/dev/tcp/127.0.0.1/${port}; IFS= read -r -t 3 info <&3; printf '%s\\n' "$info"; ` +
    `printf 'CONNECT {"verbose":false,"pedantic":false,"name":"e2e-no-credentials"}\\r\\nPING\\r\\n' >&3; ` +
    `IFS= read -r -t 3 answer <&3; printf '%s\\n' "$answer"`;
  const r = await run('nsenter', [`--net=/run/netns/${ns}`, 'bash', '-c', script]);
  const [info = '', answer = ''] = r.stdout.split('\n');
  log(`${OTHER}'s site server, no credentials: ${answer.trim()}`);
  expect(info).toMatch(/"auth_required":true/);
  expect(answer).toMatch(/-ERR 'Authorization Violation'/);
});

/** The Deployment of this file: busybox pods on edge-2. */
function deployment(replicas: number): object {
  const labels = { app: NAME, e2e: 'security' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: NAME, namespace: 'default', labels },
    spec: {
      replicas,
      selector: { matchLabels: { app: NAME } },
      template: {
        metadata: { labels },
        spec: {
          nodeSelector: { 'node-role.kubernetes.io/edge': '', 'kubernetes.io/hostname': REVOKED },
          tolerations: [{ key: 'edgefarm.io/edge', operator: 'Exists', effect: 'NoSchedule' }],
          terminationGracePeriodSeconds: 5,
          containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command: SLEEP_LOOP_TRAPPED }],
        },
      },
    },
  };
}

async function runningPods(n: number): Promise<PodObj[]> {
  return eventually(`${n} ${NAME} pods Running and Ready`, 120_000, async () => {
    const list = (await pods(SELECTOR)).filter(isRunningReady);
    return list.length === n ? list : undefined;
  });
}

/** The site's running container of a pod (its CRI id), and how many sandboxes the site has for it. */
async function siteContainer(uid: string): Promise<{ id: string; sandboxes: number }> {
  const { sandboxes, containers } = await criState(REVOKED, { 'io.kubernetes.pod.uid': uid });
  const running = containers.filter((c) => c.state === criApi.ContainerState.CONTAINER_RUNNING);
  return { id: running.map((c) => c.id).join(','), sandboxes: sandboxes.length };
}

test(`edgefarm node revoke ${REVOKED} cuts its leaf within 10 s and keeps it out, ${OTHER} unaffected; a new token brings it back; its pod runs on`, async () => {
  await applyObject(deployment(1));
  const [pod] = await runningPods(1);
  const before = await siteContainer(pod!.metadata.uid);
  expect(before).toMatchObject({ sandboxes: 1 });
  const oldKey = (await nodeJson(REVOKED)).wireId;
  const otherKey = (await nodeJson(OTHER)).wireId;

  // Revoke: the key joins Secret edgefarm-revocations; every provider's revoker pushes the EF_SITES account JWT.
  const t0 = performance.now();
  const revoke = await edgefarm(['node', 'revoke', REVOKED]);
  const tRecorded = performance.now();
  expect(revoke).toMatchObject({ code: 0 });
  await eventually(
    `the hub to close ${REVOKED}'s leaf`,
    30_000,
    async () => (!(await hubLeafs()).includes(REVOKED) ? true : undefined),
    20,
  );
  const tClosed = performance.now();
  log(
    `revocation: edgefarm node revoke took ${(tRecorded - t0).toFixed(0)} ms; leaf closed ${(tClosed - tRecorded).toFixed(0)} ms after it ` +
      `returned (${(tClosed - t0).toFixed(0)} ms after it started)`,
  );
  expect(tClosed - t0).toBeLessThan(10_000);
  expect(await recordedKey(REVOKED)).toBeUndefined();

  // Kept out: the site redials every second with its revoked credentials and is refused; edge-1's leaf stays.
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const leafs = await hubLeafs();
    expect(leafs).not.toContain(REVOKED);
    expect(leafs).toContain(OTHER);
    await sleep(500);
  }
  const tDisconnected = await eventually(
    `EdgeConnected=False on ${REVOKED}`,
    120_000,
    async () => ((await condition(REVOKED, 'EdgeConnected')) === 'False' ? performance.now() : undefined),
    500,
  );
  log(`${REVOKED}: EdgeConnected=False ${((tDisconnected - tRecorded) / 1000).toFixed(1)} s after the revocation`);
  expect(await condition(OTHER, 'EdgeConnected')).toBe('True');
  expect(await recordedKey(OTHER)).toBe(otherKey);
  expect(await siteContainer(pod!.metadata.uid)).toEqual(before);

  // Back: a new token, edgefarm join --force at the site (a new key), the site's server and agent restarted on it.
  const t1 = performance.now();
  const { token } = await tokenCreate(REVOKED);
  const join = await run('bash', [path.join(ROOT, 'hack/site.sh'), 'join', REVOKED, '--force'], `${token}\n`);
  expect(join).toMatchObject({ code: 0 });
  const tJoined = performance.now();
  await hack('site.sh', 'up', REVOKED);
  const newKey = (await nodeJson(REVOKED)).wireId;
  expect(newKey).not.toBe(oldKey);
  expect(await recordedKey(REVOKED)).toBe(newKey);
  await eventually(`EdgeConnected=True on ${REVOKED}`, 120_000, async () =>
    (await condition(REVOKED, 'EdgeConnected')) === 'True' ? true : undefined,
  );
  log(
    `${REVOKED} back: token create + join ${(tJoined - t1).toFixed(0)} ms, EdgeConnected=True ${((performance.now() - t1) / 1000).toFixed(1)} s after the token create`,
  );
  expect((await hubLeafs()).sort()).toEqual(expect.arrayContaining([OTHER, REVOKED]));

  // The pod ran on throughout: the same pod, the same container at the site, never restarted.
  const [after] = await runningPods(1);
  expect(after!.metadata.uid).toBe(pod!.metadata.uid);
  expect(after!.status.containerStatuses?.[0]?.restartCount).toBe(0);
  expect(await siteContainer(pod!.metadata.uid)).toEqual(before);
  // Desired state reaches the site under the new key.
  await kubectl('scale', `deployment/${NAME}`, '--replicas=2');
  await runningPods(2);
});

test('the real registrar refuses a token for another node, a node that has joined, and a token naming another CA', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-e2e-join-'));
  const url = await layout('echo "$EF_REGISTRAR_URL"');
  const { id, token } = await tokenCreate(OTHER);
  const join = (t: string, ...extra: string[]) =>
    edgefarm(['join', '--token-file', '-', '--hub', url, '--dir', path.join(dir, 'site'), ...extra], `${t}\n`);
  try {
    const wrongNode = await join(token, '--node', REVOKED);
    log(`join with ${OTHER}'s token as ${REVOKED}: exit ${wrongNode.code}, ${wrongNode.stderr.trim().split('\n').at(-1)}`);
    expect(wrongNode.code).toBe(7);
    expect(wrongNode.stderr).toContain('token-wrong-node');

    const taken = await join(token);
    log(`join of ${OTHER}, which has joined: exit ${taken.code}, ${taken.stderr.trim().split('\n').at(-1)}`);
    expect(taken.code).toBe(8);
    expect(taken.stderr).toContain('name-taken');

    const otherCa = token.replace(/\.[0-9a-f]{64}$/, `.${createHash('sha256').update('another CA').digest('hex')}`);
    const wrongCa = await join(otherCa);
    log(`join with a token naming another CA: exit ${wrongCa.code}, ${wrongCa.stderr.trim().split('\n').at(-1)}`);
    expect(wrongCa.code).toBe(5);

    // Nothing was written, and the refusals did not spend the token.
    await expect(stat(path.join(dir, 'site'))).rejects.toThrow();
    expect((await edgefarm(['token', 'list', '-o', 'json'])).stdout).toContain(`"${id}"`);
  } finally {
    await edgefarm(['token', 'delete', id]);
    await rm(dir, { recursive: true, force: true });
  }
});
