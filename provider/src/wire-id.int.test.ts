/**
 * A node that joined, end to end on a real hub + site pair with a real agent and containerd: its subjects carry its
 * NATS user public key, not its name (decision 0008; the fabric here is unauthenticated, the permissions themselves
 * are proved with the secured fabric). The provider's parts speak of the node by name and NodeIdentities maps it:
 *
 * - desired state published by name reaches the agent under the key; its NodeConfig too;
 * - status, heartbeats and Events come back under the key and are handed on by name; a report under the node's name
 *   (which no longer names it) is dropped as unknown;
 * - logs and exec run over the key's rpc and session subjects;
 * - the agent's compaction check lists the key's subjects on the hub (a push consumer into the node's deliver space)
 *   and forgets a pod whose subject the hub no longer has.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { create, desiredSubjects, edge, encode, Streams, statusSubjects } from '@edgefarm/proto';
import { BUSYBOX, podSpec, silentLogger, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';
import { HubBus, oneConnection, type DropReason } from './bus/hub.js';
import { NodeIdentities } from './membership/identities.js';
import { NatsEdgeStreams } from './kubelet/nats-streams.js';

const T = 120_000;
const NODE = 'edge-joined';
const KEY = 'UDB5BHRG6F5TG454D4FGAXYL4DG2RWBDXK6HWHZY7FT3DOCKVZX22ANE';
let bed: AgentBed;
let bus: HubBus;
let streams: NatsEdgeStreams;
const reports: string[] = [];
const beats: string[] = [];
const agentVersions = new Set<string>();
const events: string[] = [];
const dropped: DropReason[] = [];

const app = podSpec({
  name: 'app',
  containers: [{ name: 'shell', image: BUSYBOX, command: ['sh', '-c', 'echo started; exec sleep 3600'] }],
});

beforeAll(async () => {
  bed = await AgentBed.start({ restartBackoffBaseMs: 500, restartBackoffMaxMs: 1000 }, { node: NODE, wireId: KEY });
  const ids = new NodeIdentities(silentLogger());
  ids.observe({ metadata: { name: NODE }, status: { connected: true, identity: { publicKey: KEY } } });
  const hub = oneConnection(bed.site.hubNc);
  bus = new HubBus({ hub, log: silentLogger(), wireIds: ids }, { tombstoneTtlSeconds: 3600 });
  await bus.ensureStreams();
  await bus.followStatus({
    pod: (node, r) => reports.push(`${node}/${r.name}`),
    heartbeat: (node, hb) => {
      beats.push(`${node}:${hb.nodeName}`);
      agentVersions.add(hb.agentVersion);
    },
    dropped: (reason) => dropped.push(reason),
  });
  await bus.followEvents(
    { event: async (node, e) => void events.push(`${node}:${e.reason}`), dropped: (reason) => dropped.push(reason) },
    0,
  );
  streams = new NatsEdgeStreams({ nc: hub.cloud, log: silentLogger(), offlineSince: () => undefined, wireIds: ids });
}, T);

afterAll(async () => {
  streams?.close();
  await bus?.stop();
  await bed?.stop();
}, T);

it(
  "desired state and the NodeConfig published by the node's name reach the agent under its key; status comes back by name",
  async () => {
    await bus.publishNodeConfig(NODE, create(edge.NodeConfigSchema, { tombstoneTtlSeconds: 3600n }));
    await bus.publishPod(NODE, app);
    const running = await bed.watcher.waitFor(app.uid, (r) => r.containerStatuses[0]?.state?.state.case === 'running', 60_000);
    expect(running.report.name).toBe('app');
    await waitFor(
      'the report and a heartbeat handed on by name',
      async () => reports.includes(`${NODE}/app`) && beats.length > 0,
      20_000,
      100,
    );
    expect(new Set(beats)).toEqual(new Set([`${NODE}:${NODE}`])); // the heartbeat names the node, its subject the key
    await waitFor('an Event handed on by name', async () => events.length > 0, 20_000, 100);
    expect(events.every((e) => e.startsWith(`${NODE}:`))).toBe(true);
    await waitFor(
      'the NodeConfig at the site',
      async () => (await bed.agent.parts.compactionCheck.tombstoneTtlSeconds()) === 3600,
      20_000,
      100,
    );

    const siteNc = await bed.site.nats.connectSite();
    try {
      const info = await (await jetstreamManager(siteNc)).streams.info(Streams.siteDesired(NODE), { subjects_filter: '>' });
      expect(Object.keys(info.state.subjects ?? {}).sort()).toEqual(
        [desiredSubjects.nodeConfig(KEY), desiredSubjects.pod(KEY, app)].sort(),
      );
    } finally {
      await siteNc.close();
    }
  },
  T,
);

it(
  "a report under the node's name, which no longer names it, is dropped as unknown",
  async () => {
    expect(dropped).toEqual([]);
    const forged = create(edge.NodeHeartbeatSchema, { nodeName: NODE, agentVersion: 'forged' });
    await jetstream(bed.site.hubNc).publish(statusSubjects.of(NODE, { kind: 'node' }), encode(edge.NodeHeartbeatSchema, forged));
    await waitFor('the forged heartbeat dropped', async () => dropped.includes('unknown-node'), 10_000, 50);
    expect(agentVersions.has('forged')).toBe(false);
  },
  T,
);

it(
  "logs and exec run over the key's rpc and session subjects",
  async () => {
    const ref = { node: NODE, namespace: 'default', pod: 'app', container: 'shell' };
    const logs: Uint8Array[] = [];
    for await (const c of await streams.logs(ref, { follow: false, previous: false, timestamps: false }, new AbortController().signal))
      logs.push(c);
    expect(Buffer.concat(logs).toString('utf8')).toBe('started\n');
    const s = await streams.exec(ref, ['sh', '-c', 'echo exec-ok'], { stdin: false, stdout: true, stderr: false, tty: false });
    const out: Uint8Array[] = [];
    for await (const c of s.stdout!) out.push(c);
    expect(Buffer.concat(out).toString('utf8')).toBe('exec-ok\n');
    expect(await s.done).toEqual({ exitCode: 0 });
    expect((await streams.statsSummary(NODE, new AbortController().signal)).node.nodeName).toBe(NODE);
  },
  T,
);

it(
  "the compaction check lists the key's subjects on the hub and forgets what the hub no longer has",
  async () => {
    const victim = podSpec({ name: 'victim', containers: [{ name: 'c', image: BUSYBOX, command: ['sleep', '3600'] }] });
    await bus.publishPod(NODE, victim);
    await waitFor('the victim desired', async () => bed.agent.parts.desired.get('default/victim') !== undefined, 20_000, 100);
    // As if its tombstone had come and gone while the site was away: the hub holds nothing of it any more.
    await (await jetstreamManager(bed.site.hubNc)).streams.purge(Streams.desired, { filter: desiredSubjects.pod(KEY, victim) });
    const result = await bed.agent.parts.compactionCheck.check();
    expect(result).toEqual({ hubSubjects: 2, forgotten: ['default/victim'] }); // the app and the NodeConfig stay
    expect(bed.agent.parts.desired.get('default/app')).toBeDefined();
  },
  T,
);
