/**
 * The fault suite: real processes, real cuts (hack/fault.sh), and after each fault the site must agree with the API
 * exactly (faults.ts: converge), with nothing lost and nothing applied twice. Each case logs a row
 * `fault case | ...` and appends it to <state>/fault-results.jsonl.
 *
 * 1+2+5. edge-1 partitioned for 2 minutes while a Deployment is scaled, its image changed, a pod deleted, one
 *    force-deleted (its tombstone expires at the hub: the e2e instance keeps tombstones 30 s, so the agent must find
 *    the delete by relisting) and a new one created; a crash-looping pod restarts offline meanwhile.
 * 3. kill -9 of the agent while partitioned, started again still partitioned (it resumes from its snapshot).
 * 4. restarts of the provider, the hub, the site nats-server and containerd, each in the middle of a rollout.
 * 6. power loss of the site: SIGKILL of the site nats-server and the agent together; what the site's JetStream
 *    acknowledged is still there after the restart.
 */
import { jest } from '@jest/globals';
import {
  BUSYBOX,
  BUSYBOX_LATEST,
  E2E,
  EDGE_PLACEMENT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  deleteAndWait,
  edgeDeployment,
  eventually,
  isRunningReady,
  kubectl,
  log,
  pods,
  type PodObj,
} from './stack.js';
import {
  SELECTOR,
  SITE,
  agentLog,
  converge,
  fault,
  nodeState,
  record,
  runningContainer,
  siteAttempt,
  sitePods,
  siteRestartCount,
  siteStreams,
  watchNode,
} from './faults.js';

jest.setTimeout(20 * 60_000);

const WEB = 'fault-web';
const PARTITION_MS = E2E.partitionMs;
/** Every pod UID the suite has seen: what converge() checks at the site. */
const known = new Set<string>();

function pod(name: string, command: string[], labels: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { e2e: 'fault', ...labels } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 5,
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', command }],
    },
  };
}

async function webPods(): Promise<PodObj[]> {
  return (await pods(`app=${WEB}`)).filter((p) => !p.metadata.deletionTimestamp);
}

async function waitRunning(selector: string, n: number): Promise<PodObj[]> {
  return eventually(`${n} pods ${selector} Running and Ready`, 180_000, async () => {
    const ps = (await pods(selector)).filter(isRunningReady);
    for (const p of ps) known.add(p.metadata.uid);
    return ps.length === n ? ps : undefined;
  });
}

/** The running container id of every given pod at the site. */
async function containerIds(ps: PodObj[]): Promise<Map<string, string>> {
  const site = await sitePods();
  return new Map(ps.map((p) => [p.metadata.name, runningContainer(site.get(p.metadata.uid))?.id ?? 'none']));
}

/** Pods (by name) whose container at the site changed since `before` (restarted, replaced or gone). */
async function replacedSince(before: Map<string, string>): Promise<string[]> {
  const site = await sitePods();
  const apiNow = await pods(SELECTOR);
  const out: string[] = [];
  for (const [name, id] of before) {
    const p = apiNow.find((x) => x.metadata.name === name);
    const now = p ? runningContainer(site.get(p.metadata.uid))?.id : undefined;
    if (now !== id) out.push(name);
  }
  return out;
}

async function waitDisconnected(): Promise<number> {
  const t = Date.now();
  await eventually('EdgeConnected=False', 60_000, async () => ((await nodeState()).connected === 'False' ? true : undefined), 500);
  return Date.now() - t;
}

beforeAll(async () => {
  await applyObject(edgeDeployment(WEB, 'fault', 3, { image: BUSYBOX, grace: 5 }));
  await waitRunning(`app=${WEB}`, 3);
});

afterAll(async () => {
  await fault('heal', SITE).catch(() => undefined);
  await deleteAndWait(SELECTOR, [
    `deployment/${WEB}`,
    'pod/fault-crash',
    'pod/fault-crash6',
    'pod/fault-del',
    'pod/fault-victim',
    'pod/fault-new',
  ]);
});

async function crasher(name = 'fault-crash'): Promise<PodObj> {
  const p = (await pods(SELECTOR)).find((x) => x.metadata.name === name);
  if (!p) throw new Error(`${name} is gone`);
  known.add(p.metadata.uid);
  return p;
}

/** A pod that crashes 4 s after every start (restartPolicy Always: CrashLoopBackOff 10 s, 20 s, 40 s, ...). */
async function startCrasher(name: string): Promise<PodObj> {
  await applyObject(pod(name, ['sh', '-c', 'sleep 4; exit 1'], { 'e2e-crash': 'true' }));
  return eventually(
    `${name} started`,
    120_000,
    async () => {
      const p = await crasher(name).catch(() => undefined);
      return p?.status.containerStatuses?.[0]?.containerID ? p : undefined;
    },
    500,
  );
}

test('cases 1, 2, 5: a 2-minute partition with scale, image change, delete, force delete, create and offline crashes', async () => {
  await applyObject(pod('fault-del', SLEEP_LOOP_TRAPPED, { role: 'single' }));
  await applyObject(pod('fault-victim', SLEEP_LOOP_TRAPPED, { role: 'single' }));
  const singles = await waitRunning('role=single', 2);
  const before = await webPods();
  const beforeIds = await containerIds([...before, ...singles]);
  await startCrasher('fault-crash');
  const crashBefore = siteAttempt((await sitePods()).get((await crasher()).metadata.uid));

  const watch = watchNode();
  await fault('partition', SITE);
  const cutAt = Date.now();
  const disconnectedMs = await waitDisconnected();
  log(`partition: EdgeConnected=False after ${disconnectedMs} ms`);

  // The changes, in order, while the site cannot hear them.
  await kubectl('scale', `deployment/${WEB}`, '--replicas=5');
  await kubectl('set', 'image', `deployment/${WEB}`, `app=${BUSYBOX_LATEST}`);
  await kubectl('delete', 'pod', 'fault-del', '--wait=false');
  await kubectl('delete', 'pod', 'fault-victim', '--grace-period=0', '--force', '--wait=false');
  await applyObject(pod('fault-new', SLEEP_LOOP_TRAPPED));

  // Offline: everything that ran keeps running, untouched.
  while (Date.now() - cutAt < PARTITION_MS) {
    const replaced = await replacedSince(beforeIds);
    const gone = replaced.filter((n) => n !== 'fault-victim'); // force-deleted: gone from the API, still running at the site
    expect({ replacedWhilePartitioned: gone }).toEqual({ replacedWhilePartitioned: [] });
    await new Promise((r) => setTimeout(r, 10_000));
  }
  const crashOffline = siteAttempt((await sitePods()).get((await crasher()).metadata.uid));
  const apiCrashAtHeal = (await crasher()).status.containerStatuses?.[0]?.restartCount ?? -1;

  await fault('heal', SITE);
  const nodeSeen = await watch.stop();
  const { ms, agreement } = await converge(known, 240_000, async () => {
    const extra: string[] = [];
    const ps = await webPods();
    if (ps.length !== 5) extra.push(`${ps.length} web pods`);
    if (ps.some((p) => p.spec.containers[0]!.image !== BUSYBOX_LATEST)) extra.push('old image left');
    const names = (await pods(SELECTOR)).map((p) => p.metadata.name);
    if (names.includes('fault-del')) extra.push('fault-del still in the API');
    if (!names.includes('fault-new')) extra.push('fault-new missing');
    return extra;
  });

  // Case 1: exactly the desired state, nothing evicted or recreated because of the partition.
  expect(nodeSeen.problems).toEqual([]);
  const lost: string[] = [];
  const final = agreement.api;
  const webNow = final.filter((p) => p.metadata.labels?.app === WEB);
  if (webNow.length !== 5 || webNow.some((p) => p.spec.containers[0]!.image !== BUSYBOX_LATEST)) lost.push('scale or image');
  if (final.some((p) => p.metadata.name === 'fault-del')) lost.push('delete');
  if (!final.some((p) => p.metadata.name === 'fault-new' && isRunningReady(p))) lost.push('create');
  const victimAtSite = [...agreement.site.values()].some((s) => s.sandboxes.some((x) => x.metadata?.name === 'fault-victim'));
  if (victimAtSite) lost.push('force delete');
  const relisted = await agentLog(/tombstones the hub compacted/);
  expect(relisted.some((l) => l.includes('default/fault-victim'))).toBe(true);
  expect(lost).toEqual([]);
  expect(agreement.duplicateSandboxes).toEqual([]);
  await record({
    case: '1 partition 2 min: scale 3→5, image change, delete, create',
    convergeMs: ms,
    lost: lost.length,
    duplicates: agreement.duplicateSandboxes.length,
    notes: `EdgeConnected=False after ${disconnectedMs} ms; Ready True in all ${nodeSeen.samples} samples, no taints; no pod replaced while cut off`,
  });
  await record({
    case: '5 tombstone compacted (force delete, TTL 30 s) → relist',
    convergeMs: ms,
    lost: victimAtSite ? 1 : 0,
    duplicates: 0,
    notes: `agent relist forgot default/fault-victim (${relisted.length} relist line(s) in the agent log)`,
  });

  // Case 2: the offline restarts reach the API with the right count and reason.
  const c = await crasher();
  const cs = c.status.containerStatuses?.[0];
  const siteNow = siteRestartCount(agreement.site.get(c.metadata.uid));
  expect(crashOffline).toBeGreaterThanOrEqual(crashBefore + 2);
  expect(cs?.restartCount).toBe(siteNow);
  expect((cs as { lastState?: { terminated?: { exitCode: number; reason: string } } }).lastState?.terminated).toMatchObject({
    exitCode: 1,
    reason: 'Error',
  });
  await record({
    case: '2 status made offline (crash loop) reaches the API',
    convergeMs: ms,
    lost: cs?.restartCount === siteNow ? 0 : 1,
    duplicates: 0,
    notes: `restarts at the site: ${crashBefore} before the cut, ${crashOffline} at heal (API showed ${apiCrashAtHeal}); API after heal ${cs?.restartCount}, lastState Error/1`,
  });
});

test('case 3: kill -9 of the agent while partitioned, started again still partitioned', async () => {
  const before = await waitRunning(`app=${WEB}`, 5);
  const ids = await containerIds(before);
  await fault('partition', SITE);
  try {
    await waitDisconnected();
    await fault('kill', 'agent', SITE);
    await new Promise((r) => setTimeout(r, 3000));
    await fault('restart', 'agent', SITE);
    await eventually(
      'the restarted agent resumed from its snapshot',
      60_000,
      async () => ((await agentLog(/restored from the snapshot/)).length > 0 ? true : undefined),
      1000,
    );
    await kubectl('scale', `deployment/${WEB}`, '--replicas=4');
    await new Promise((r) => setTimeout(r, 15_000));
    expect(await replacedSince(ids)).toEqual([]); // nothing restarted by the agent's restart
  } finally {
    await fault('heal', SITE);
  }
  const { ms, agreement } = await converge(known, 180_000, async () => ((await webPods()).length === 4 ? [] : ['not 4 web pods']));
  const survivors = agreement.api.filter((p) => ids.has(p.metadata.name));
  const replaced = (await replacedSince(new Map(survivors.map((p) => [p.metadata.name, ids.get(p.metadata.name)!])))).length;
  expect(replaced).toBe(0);
  await record({
    case: '3 kill -9 agent while partitioned, restart partitioned',
    convergeMs: ms,
    lost: 0,
    duplicates: agreement.duplicateSandboxes.length + replaced,
    notes: `agent resumed from its snapshot; ${survivors.length} pods kept their containers; scale 5→4 applied after heal`,
  });
});

test('case 4: restarts of provider, hub, site nats-server and containerd in the middle of rollouts', async () => {
  let image = BUSYBOX;
  for (const target of [['provider'], ['hub'], ['site-nats', SITE], ['containerd', SITE]]) {
    await waitRunning(`app=${WEB}`, 4);
    await kubectl('set', 'image', `deployment/${WEB}`, `app=${image}`);
    // Mid-rollout: the new ReplicaSet has pods, the old one still has some.
    await eventually(
      'rollout under way',
      60_000,
      async () => {
        const ps = await pods(`app=${WEB}`);
        return ps.some((p) => p.spec.containers[0]!.image === image) && ps.some((p) => p.spec.containers[0]!.image !== image)
          ? true
          : undefined;
      },
      200,
    );
    const t = Date.now();
    await fault('restart', ...target);
    const restartMs = Date.now() - t;
    const want = image;
    const { ms, agreement } = await converge(known, 240_000, async () => {
      const ps = await webPods();
      return ps.length === 4 && ps.every((p) => p.spec.containers[0]!.image === want) ? [] : ['rollout not complete'];
    });
    expect(agreement.duplicateSandboxes).toEqual([]);
    await record({
      case: `4 ${target[0]} restarted mid-rollout`,
      convergeMs: ms,
      lost: 0,
      duplicates: agreement.duplicateSandboxes.length,
      notes: `restart took ${restartMs} ms; rollout to ${want.split(':')[1]} complete, 4 pods`,
    });
    image = image === BUSYBOX ? BUSYBOX_LATEST : BUSYBOX;
  }
});

test('case 6: power loss of the site: SIGKILL of the site nats-server and the agent together', async () => {
  const before = await waitRunning(`app=${WEB}`, 4);
  await startCrasher('fault-crash6');
  const ids = await containerIds(before);
  await fault('partition', SITE);
  let streamsBefore: Awaited<ReturnType<typeof siteStreams>>;
  try {
    await waitDisconnected();
    // Something acknowledged while cut off: a restart of a fresh crasher, reported into the outbox.
    const c = await crasher('fault-crash6');
    const attempt = siteAttempt((await sitePods()).get(c.metadata.uid));
    await eventually(
      'an offline restart',
      120_000,
      async () => (siteAttempt((await sitePods()).get(c.metadata.uid)) > attempt ? true : undefined),
      1000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    streamsBefore = await siteStreams();
    await Promise.all([fault('kill', 'site-nats', SITE), fault('kill', 'agent', SITE)]);
    await fault('restart', 'site-nats', SITE);
    const streamsAfter = await siteStreams();
    // Everything stored before the kill is still there. Cut off from the hub, nothing removes a message, but the agent
    // may store one more (an Event of the crash-looping pod) between the snapshot and its SIGKILL: at least, not equal.
    for (const [name, s] of Object.entries(streamsBefore)) {
      const after = streamsAfter[name] ?? { messages: 0, lastSeq: 0 };
      expect({ name, lastSeqKept: after.lastSeq >= s.lastSeq, messagesKept: after.messages >= s.messages, before: s, after }).toMatchObject(
        {
          name,
          lastSeqKept: true,
          messagesKept: true,
        },
      );
    }
    await fault('restart', 'agent', SITE);
  } finally {
    await fault('heal', SITE);
  }
  const { ms, agreement } = await converge(known, 180_000);
  const replaced = await replacedSince(ids);
  expect(replaced).toEqual([]);
  const outbox = Object.entries(streamsBefore!).filter(([n]) => n.startsWith('EFO_'));
  await record({
    case: '6 SIGKILL site nats-server + agent together (power-loss style)',
    convergeMs: ms,
    lost: 0,
    duplicates: agreement.duplicateSandboxes.length + replaced.length,
    notes: `site streams identical after the restart (${Object.keys(streamsBefore!).length} streams; outbox ${outbox.map(([, s]) => s.messages).join(',')} msgs pending); sync_interval always`,
  });
});
