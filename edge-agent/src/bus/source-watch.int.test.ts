/**
 * The desired stream's source after a cut, on a real hub + site pair (nats-server, leaf link through a TCP proxy):
 * - restarting a stalled source (SourceWatch.check) resumes exactly after the last message the site has: what the hub
 *   got during the cut arrives once, nothing sourced before comes again;
 * - an agent cut off for 70 s (long enough that the site server's own retry is in a 30 s wait when the link returns)
 *   restarts the source once the hub acknowledges again, and gets the change made during the cut.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams, desiredSubjects } from '@edgefarm/proto';
import path from 'node:path';
import { Agent } from '../agent.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { TestSite, podSpec, publishDesired, silentLogger, waitFor } from '@edgefarm/testing';
import { ensureSiteStreams } from './site-streams.js';
import { SourceWatch, sourceHealth } from './source-watch.js';

const T = 180_000;
let site: TestSite;
let siteNc: NatsConnection;
let siteJsm: JetStreamManager;

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  siteNc = await site.nats.connectSite();
  siteJsm = await jetstreamManager(siteNc);
}, T);

afterAll(async () => {
  await siteNc?.close();
  await site?.stop();
}, T);

/** The subjects of the node's site stream, in stream order. */
async function siteSubjects(node: string): Promise<string[]> {
  const name = Streams.siteDesired(node);
  const { state } = await siteJsm.streams.info(name);
  const out: string[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await siteJsm.streams.getMessage(name, { seq }).catch(() => null);
    if (m) out.push(m.subject);
  }
  return out;
}

/** Until the hub's JetStream answers through the leaf link (what a forwarder acknowledgement proves in the agent). */
async function hubAnswers(): Promise<void> {
  const hubJsm = await jetstreamManager(siteNc, { domain: HUB_DOMAIN, checkAPI: false, timeout: 1_000 });
  await waitFor(
    'the hub answering through the leaf link',
    async () => (await hubJsm.getAccountInfo().catch(() => undefined)) !== undefined,
    30_000,
    200,
  );
}

describe('desired stream source after a cut', () => {
  it(
    'a restarted source resumes after the last message the site has: no loss, nothing twice',
    async () => {
      const node = 'watch-direct';
      await ensureSiteStreams(siteJsm, node, node, silentLogger());
      const [a, b, c] = [podSpec({ name: 'a' }), podSpec({ name: 'b' }), podSpec({ name: 'c' })];
      await publishDesired(site.hubNc, node, a);
      await waitFor('a at the site', async () => (await siteSubjects(node)).length === 1, 20_000, 100);

      site.nats.proxy.sever();
      try {
        await publishDesired(site.hubNc, node, b);
        // Past the hub consumer's 10 s inactivity limit, and the site server's own retry sent into the cut: a short
        // cut heals by itself (the hub's consumer is still there and its heartbeats resume).
        await waitFor(
          'the source quiet for over 20 s',
          async () => {
            const h = sourceHealth(await siteJsm.streams.info(Streams.siteDesired(node)));
            return h?.quietMs !== undefined && h.quietMs > 20_000;
          },
          40_000,
          250,
        );
      } finally {
        site.nats.proxy.heal();
      }
      await hubAnswers();
      const watch = new SourceWatch({ node, wireId: node, jsm: siteJsm, clock: { now: () => Date.now() }, log: silentLogger() });
      expect(await watch.check()).toBe(true);
      await publishDesired(site.hubNc, node, c);
      await waitFor('b and c at the site', async () => (await siteSubjects(node)).length >= 3, 30_000, 100);
      expect(await siteSubjects(node)).toEqual([a, b, c].map((p) => desiredSubjects.pod(node, p)));
      const info = await siteJsm.streams.info(Streams.siteDesired(node));
      expect(info.config.subjects ?? []).toEqual([]);
      expect(sourceHealth(info)).toMatchObject({ error: undefined });
      expect(await watch.check()).toBe(false); // healthy now
    },
    T,
  );

  it(
    'an agent cut off for 70 s restarts the stalled source once the hub answers, and gets the change made meanwhile',
    async () => {
      const runtime = new MemoryPodRuntime();
      const agent = new Agent(
        site.agentConfig({ stateDir: path.join(site.dir, 'state-watch'), metricsAddr: undefined, metricsPublishSeconds: 0 }),
        site.logger('agent'),
        { runtime, forwarder: { backoffBaseMs: 100, backoffMaxMs: 1000, publishTimeoutMs: 1000, pullExpiresMs: 1000 } },
      );
      await agent.start();
      try {
        const before = podSpec({ name: 'before' });
        await publishDesired(site.hubNc, site.node, before);
        await waitFor('the pod desired', async () => agent.parts.desired.get('default/before') !== undefined, 20_000, 100);

        site.nats.proxy.sever();
        const during = podSpec({ name: 'during' });
        let healedAt = 0;
        try {
          await publishDesired(site.hubNc, site.node, during);
          await new Promise((r) => setTimeout(r, 70_000));
        } finally {
          site.nats.proxy.heal();
          healedAt = Date.now();
        }
        await waitFor('the change made during the cut', async () => agent.parts.desired.get('default/during') !== undefined, 150_000, 100);
        process.stdout.write(
          `source watch: the change made during a 70 s cut arrived ${Date.now() - healedAt} ms after the heal (${agent.parts.sourceWatch.restarts} source restart)\n`,
        );
        expect(agent.parts.sourceWatch.restarts).toBeGreaterThanOrEqual(1);
      } finally {
        await agent.stop();
      }
    },
    T,
  );
});
