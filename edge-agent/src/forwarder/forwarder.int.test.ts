/**
 * Store-and-forward across a real leaf link: reports written to the site outbox while the link is cut (or the hub
 * is down) arrive at the hub's EF_STATUS after it is back; none is lost, none arrives older than what the hub holds.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams, create, decodePodStatusReport, edge, encode, outboxSubjects, statusSubjects } from '@edgefarm/proto';
import { JetStreamOutbox } from '../bus/outbox.js';
import { ensureSiteStreams } from '../bus/site-streams.js';
import { TestSite, createHubStreams, waitFor } from '@edgefarm/testing';
import { Forwarder } from './forwarder.js';

const T = 120_000;
let site: TestSite;
let siteNc: NatsConnection;
let siteJsm: JetStreamManager;
let hubJsm: JetStreamManager;
let outbox: JetStreamOutbox;
let forwarder: Forwarder | undefined;

const PODS = 50;
const uid = (i: number) => `uid-${i}`;
let generation = 1n;

function report(i: number, gen: bigint): Uint8Array {
  return encode(
    edge.PodStatusReportSchema,
    create(edge.PodStatusReportSchema, {
      uid: uid(i),
      namespace: 'default',
      name: `p${i}`,
      generation: gen,
      phase: edge.PodPhase.RUNNING,
      observedAtMs: BigInt(Date.now()),
    }),
  );
}

/** Writes one report per pod to the outbox; returns the generation written for each. */
async function writeRound(): Promise<Map<string, bigint>> {
  const written = new Map<string, bigint>();
  for (let i = 0; i < PODS; i++) {
    const g = generation++;
    await outbox.publish(outboxSubjects.of(site.node, { kind: 'pod', uid: uid(i) }), report(i, g));
    written.set(uid(i), g);
  }
  return written;
}

/** The last report per pod the hub holds. */
async function hubLastValues(): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for (let i = 0; i < PODS; i++) {
    try {
      const m = await hubJsm.streams.getMessage(Streams.status, {
        last_by_subj: statusSubjects.of(site.node, { kind: 'pod', uid: uid(i) }),
      });
      if (m) out.set(uid(i), decodePodStatusReport(m.data).generation);
    } catch {
      // not there yet
    }
  }
  return out;
}

async function expectHubHas(want: Map<string, bigint>, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'hub to hold every last report',
    async () => {
      const have = await hubLastValues();
      return [...want].every(([u, g]) => have.get(u) === g);
    },
    timeoutMs,
    200,
  );
}

function startForwarder(): Promise<void> {
  forwarder = new Forwarder(
    {
      node: site.node,
      wireId: site.wireId,
      jsm: siteJsm,
      js: jetstream(siteNc),
      hub: jetstream(siteNc, { domain: HUB_DOMAIN }),
      log: site.logger('forwarder'),
    },
    { backoffBaseMs: 100, backoffMaxMs: 1000, publishTimeoutMs: 1000, pullExpiresMs: 1000 },
  );
  return forwarder.start();
}

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  hubJsm = await createHubStreams(site.hubNc);
  siteNc = await site.nats.connectSite();
  siteJsm = await jetstreamManager(siteNc);
  await ensureSiteStreams(siteJsm, site.node, site.wireId, site.logger('streams'));
  outbox = new JetStreamOutbox(jetstream(siteNc), site.node);
  await startForwarder();
}, T);

afterAll(async () => {
  await forwarder?.stop();
  await siteNc?.close();
  await site?.stop();
}, T);

describe('forwarder', () => {
  it(
    'forwards outbox reports to the hub and drains the outbox',
    async () => {
      const want = await writeRound();
      await expectHubHas(want);
      await waitFor('empty outbox', async () => (await siteJsm.streams.info(Streams.outbox(site.node))).state.messages === 0);
    },
    T,
  );

  it(
    'holds reports while the leaf link is cut and delivers the latest of each after it heals',
    async () => {
      site.nats.proxy.sever();
      await new Promise((r) => setTimeout(r, 300));
      await writeRound();
      const want = await writeRound(); // two rounds: the outbox keeps only the last per pod
      await new Promise((r) => setTimeout(r, 1500));
      const held = (await siteJsm.streams.info(Streams.outbox(site.node))).state.messages;
      expect(held).toBe(PODS);
      site.nats.proxy.heal();
      const t0 = Date.now();
      await expectHubHas(want);
      process.stdout.write(`forwarder: ${PODS} held reports delivered ${Date.now() - t0} ms after the link healed\n`);
      expect(forwarder!.stats.failures).toBeGreaterThan(0);
    },
    T,
  );

  it(
    'survives a hub restart: reports written while the hub is down arrive after it is back',
    async () => {
      await site.nats.stopHub();
      const want = await writeRound();
      await new Promise((r) => setTimeout(r, 1000));
      await site.nats.startHub();
      await site.nats.waitLinked();
      await expectHubHas(want);
    },
    T,
  );

  it(
    'a restarted forwarder with unacked messages recreates its consumer and loses nothing',
    async () => {
      await forwarder!.stop();
      // the stopped forwarder's last pull request lives on in the server until it expires (1 s here)
      await new Promise((r) => setTimeout(r, 1500));
      // take messages without acking them, as a forwarder that died mid-batch would
      const consumer = await jetstream(siteNc).consumers.get(Streams.outbox(site.node), 'forwarder');
      const want = await writeRound();
      const batch = await consumer.fetch({ max_messages: 10, expires: 1000 });
      let taken = 0;
      for await (const _m of batch) taken++;
      expect(taken).toBe(10);
      expect((await siteJsm.consumers.info(Streams.outbox(site.node), 'forwarder')).num_ack_pending).toBe(10);
      await startForwarder();
      await expectHubHas(want, 10_000); // well before the 30 s ack_wait
    },
    T,
  );
});
