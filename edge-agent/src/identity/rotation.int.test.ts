/**
 * Credential rotation under load, nothing lost: a site that joined through a real registrar (over TLS, as its
 * ServiceAccount against a real kube-apiserver) with credentials of a few seconds, linked to the secured fabric's hub
 * (SecureFabric: configured as the product), renewed by the real CredentialRenewer. The agent's real Forwarder drains
 * the site outbox to the hub's EF_STATUS through the leaf, on the agent's own connection (its site-local nkey, inbox
 * prefix siteInboxPrefix(wireId): connectSite), while status reports are written to the outbox at a steady rate across
 * at least three rotations, each of which closes the leaf at the old credentials' expiry.
 *
 * Every report is its own pod (its own subject): the outbox and EF_STATUS keep the last value per subject, so reports
 * of one pod may rightly replace each other; one subject each makes every report countable. Report n carries
 * generation n. Checked: EF_STATUS stored every generation exactly once (its stream sequence counts every store,
 * so a duplicate that slipped past the Nats-Msg-Id de-duplication would show), under the Nats-Msg-Id the forwarder
 * gives it. Printed: the rotations, reports written and stored, duplicates the hub absorbed, the longest leaf gap and
 * the longest delay from an outbox write to its storage on the hub.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import {
  HUB_DOMAIN,
  HUB_STREAM_CONFIGS,
  Streams,
  create,
  decodePodStatusReport,
  edge,
  encode,
  forwardMsgId,
  outboxSubjects,
  statusSubjects,
} from '@edgefarm/proto';
import { SecureFabric, TEST } from '@edgefarm/testing';
import { JetStreamOutbox } from '../bus/outbox.js';
import { connectSite, type SiteConnection } from '../bus/site-connection.js';
import { ensureSiteStreams } from '../bus/site-streams.js';
import { Forwarder } from '../forwarder/forwarder.js';
import { RegistrarBed } from './registrar-bed.fixtures.js';
import { CredentialRenewer } from './renewer.js';

const NODE = 'gw-rot';
/** Credentials live 5 s: renewed at 3.5-4.5 s, the leaf closed at 5 s; a rotation every ~4 s. */
const LIFETIME_S = 5;
const ROTATIONS = 3;
/** One report every 50 ms (20 a second). */
const WRITE_EVERY_MS = 50;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let fabric: SecureFabric;
let bed: RegistrarBed;
let log: Logger;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-rotation-'));
  log = pino({ level: TEST.logLevel ?? 'debug' }, pino.destination({ dest: path.join(dir, 'agent.log'), sync: true }));
  fabric = await SecureFabric.start({ nodes: [] });
  bed = await RegistrarBed.start(dir, fabric, LIFETIME_S);
  // the hub streams as the provider creates them, each with its own user
  for (const c of HUB_STREAM_CONFIGS) {
    const nc = await fabric.connectProvider(c.name === Streams.desired ? 'desired' : 'cloud');
    await (await jetstreamManager(nc)).streams.add({ ...c, subjects: [...c.subjects], num_replicas: 1 });
    await nc.close();
  }
}, 180_000);

afterAll(async () => {
  await bed?.stop();
  await fabric?.stop();
  if (!TEST.keep) await rm(dir, { recursive: true, force: true });
});

/** Watches the node's leaf on the hub every 25 ms: the connections it had (by remote port) and how long it was gone. */
class LeafWatch {
  readonly ports: number[] = [];
  longestGapMs = 0;
  up = false;
  private downSince: number | undefined;
  private stopped = false;
  private readonly loop: Promise<void>;

  constructor(private readonly name: string) {
    this.loop = this.run();
  }

  /** Rotations seen: every connection after the first is a redial with renewed credentials. */
  get rotations(): number {
    return Math.max(0, this.ports.length - 1);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const leaf = (await fabric.leafs()).find((l) => l.name === this.name);
      const now = performance.now();
      this.up = leaf !== undefined;
      if (leaf) {
        const port = leaf.port ?? 0;
        if (this.ports.at(-1) !== port) this.ports.push(port);
        if (this.downSince !== undefined) this.longestGapMs = Math.max(this.longestGapMs, now - this.downSince);
        this.downSince = undefined;
      } else this.downSince ??= now;
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
  }
}

/** A pod status report of its own pod (uid r-<generation>). */
function report(generation: number): { uid: string; data: Uint8Array } {
  const uid = `r-${generation}`;
  const data = encode(
    edge.PodStatusReportSchema,
    create(edge.PodStatusReportSchema, {
      uid,
      namespace: 'default',
      name: uid,
      generation: BigInt(generation),
      phase: edge.PodPhase.RUNNING,
      observedAtMs: BigInt(Date.now()),
    }),
  );
  return { uid, data };
}

interface Stored {
  seq: number;
  msgId: string | undefined;
  atMs: number;
}

it(`loses no status report across ${ROTATIONS} credential rotations under a steady load`, async () => {
  const site = await bed.join(NODE, path.join(dir, 'site', 'edgefarm'));
  const node = await fabric.adopt(NODE, { seed: site.seed, credsFile: site.credsFile });
  const agentSeedFile = await RegistrarBed.writeAgentSeed(site, node.agent.seed);
  await fabric.startSite(NODE, { caFile: site.caFile });
  await fabric.waitLeaf(NODE, true, 20_000);
  const wireId = node.wireId;

  // the provider's view: every store into EF_STATUS under the node's subjects, in order, with its storage time
  const cloud: NatsConnection = await fabric.connectProvider('cloud');
  const stored = new Map<number, Stored[]>();
  const follower = await jetstream(cloud).consumers.get(Streams.status, { filter_subjects: [statusSubjects.node(wireId)] });
  const messages: ConsumerMessages = await follower.consume();
  const following = (async () => {
    for await (const m of messages) {
      const g = Number(decodePodStatusReport(m.data, m.subject).generation);
      const at = { seq: m.seq, msgId: m.headers?.get('Nats-Msg-Id'), atMs: m.info.timestampNanos / 1e6 };
      stored.set(g, [...(stored.get(g) ?? []), at]);
    }
  })();

  // the agent: its site connection, its site streams, its forwarder, its renewer
  const agent: SiteConnection = await connectSite({ natsUrl: node.site!.url, node: NODE, wireId, seedFile: agentSeedFile }, log);
  const jsm = await jetstreamManager(agent.nc);
  await ensureSiteStreams(jsm, NODE, wireId, log);
  const js = jetstream(agent.nc);
  const forwarder = new Forwarder({ node: NODE, wireId, jsm, js, hub: jetstream(agent.nc, { domain: HUB_DOMAIN }), log });
  await forwarder.start();
  const registry = new Registry();
  const renewer = new CredentialRenewer({ dir: site.dir, log, registry });
  await renewer.start();
  const watch = new LeafWatch(NODE);

  const outbox = new JetStreamOutbox(js, NODE);
  const writtenAt = new Map<number, number>();
  let written = 0;
  let writing = true;
  const writer = (async () => {
    const t0 = Date.now();
    while (writing) {
      const g = ++written;
      const { uid, data } = report(g);
      writtenAt.set(g, Date.now());
      await outbox.publish(outboxSubjects.of(wireId, { kind: 'pod', uid }), data);
      const next = t0 + written * WRITE_EVERY_MS;
      if (next > Date.now()) await sleep(next - Date.now());
    }
  })();

  let outboxLeft: number;
  try {
    // write until the leaf has come back after the third rotation
    const deadline = Date.now() + 120_000;
    while (watch.rotations < ROTATIONS || !watch.up) {
      if (Date.now() > deadline) throw new Error(`${watch.rotations} rotations in 120 s`);
      await sleep(100);
    }
    writing = false;
    await writer;
    const drained = Date.now() + 60_000;
    while (stored.size < written && Date.now() < drained) await sleep(100);
    outboxLeft = (await jsm.streams.info(Streams.outbox(NODE))).state.messages;
  } finally {
    writing = false;
    await writer.catch(() => undefined);
    await watch.stop();
    await renewer.stop();
    await forwarder.stop();
    await agent.close();
    await messages.close();
    await following;
  }

  const status = await (await jetstreamManager(cloud)).streams.info(Streams.status);
  const all = [...stored.values()];
  const delays = [...stored].map(([g, s]) => Math.round(s[0]!.atMs - writtenAt.get(g)!)).sort((a, b) => a - b);
  const renewals = /edgefarm_agent_credential_renewals_total\{result="ok"\} (\d+)/.exec(await registry.metrics())?.[1];
  process.stdout.write(
    [
      `rotation under load (credentials of ${LIFETIME_S} s, a report every ${WRITE_EVERY_MS} ms):`,
      `  rotations seen:        ${watch.rotations} (leaf redials; renewals ok: ${renewals})`,
      `  reports written:       ${written}`,
      `  reports stored:        ${stored.size} (stores in EF_STATUS: ${status.state.last_seq})`,
      `  duplicates absorbed:   ${forwarder.stats.duplicates} (hub acks with duplicate; forwarder retries: ${forwarder.stats.failures})`,
      `  longest leaf gap:      ${Math.round(watch.longestGapMs)} ms`,
      `  outbox write -> hub:   longest ${delays.at(-1)} ms, median ${delays[Math.floor(delays.length / 2)]} ms`,
      '',
    ].join('\n'),
  );

  expect(watch.rotations).toBeGreaterThanOrEqual(ROTATIONS);
  expect(forwarder.stats.dropped).toBe(0);
  // every generation stored, none twice, each under the forwarder's Nats-Msg-Id, nothing else stored
  const missing = Array.from({ length: written }, (_, i) => i + 1).filter((g) => !stored.has(g));
  expect(missing).toEqual([]);
  expect(all.filter((s) => s.length > 1)).toEqual([]);
  for (const [g, [s]] of stored) {
    expect(s!.msgId).toBe(forwardMsgId(outboxSubjects.of(wireId, { kind: 'pod', uid: `r-${g}` }), BigInt(g)));
  }
  expect(stored.size).toBe(written);
  expect(status.state.messages).toBe(written);
  expect(status.state.last_seq).toBe(written);
  expect(outboxLeft).toBe(0);
}, 240_000);
