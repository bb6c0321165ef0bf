/**
 * The node's desired stream on a real hub + site pair: its source delivers below the node's deliver prefix (the only
 * deliveries a node's leaf permissions let through, decision 0008), and a stream made before that (empty prefix:
 * deliveries to $JS.S.*) is brought in line by ensureSiteStreams without losing or repeating anything. A new wire id
 * (the node joined again) sources the new wire id's subjects.
 */
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { Streams, desiredSubjects, sourceDeliverPrefix } from '@edgefarm/proto';
import { TestSite, podSpec, publishDesired, silentLogger, waitFor } from '@edgefarm/testing';
import { ensureSiteStreams, siteDesiredStreamConfig } from './site-streams.js';

const T = 120_000;
const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const KEY_2 = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';
const KEY_3 = 'UDB5BHRG6F5TG454D4FGAXYL4DG2RWBDXK6HWHZY7FT3DOCKVZX22ANE';
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

/** Counts what the hub delivers below a node's deliver prefix (a tap in the hub's account sees the source's deliveries). */
function tap(wireId: string): { sub: Subscription; subjects: string[] } {
  const subjects: string[] = [];
  const sub = site.hubNc.subscribe(`${sourceDeliverPrefix(wireId)}.>`, { callback: (_e, m) => void subjects.push(m.subject) });
  return { sub, subjects };
}

describe('the desired stream source', () => {
  it(
    "moves a stream made with the empty deliver prefix to the node's prefix: the next message arrives there, nothing twice",
    async () => {
      const node = 'old-stream';
      const old = siteDesiredStreamConfig(node, KEY);
      old.sources![0]!.external!.deliver = '';
      await siteJsm.streams.add({ ...old, subjects: [] });
      const a = podSpec({ name: 'a' });
      await publishDesired(site.hubNc, KEY, a);
      await waitFor('a sourced with the empty prefix', async () => (await siteSubjects(node)).length === 1, 20_000, 100);

      const t = tap(KEY);
      await ensureSiteStreams(siteJsm, node, KEY, silentLogger());
      const info = await siteJsm.streams.info(Streams.siteDesired(node));
      expect(info.config.sources?.[0]?.external?.deliver).toBe(sourceDeliverPrefix(KEY));
      const b = podSpec({ name: 'b' });
      await publishDesired(site.hubNc, KEY, b);
      await waitFor('b sourced', async () => (await siteSubjects(node)).length >= 2, 30_000, 100);
      expect(await siteSubjects(node)).toEqual([a, b].map((p) => desiredSubjects.pod(KEY, p)));
      await waitFor('a delivery below the prefix', async () => t.subjects.length > 0, 10_000, 100);
      t.sub.unsubscribe();
    },
    T,
  );

  it(
    'follows a new wire id: the new one is sourced from its start, the old one no more',
    async () => {
      const node = 'rejoined';
      await ensureSiteStreams(siteJsm, node, KEY_2, silentLogger());
      const a = podSpec({ name: 'a' });
      await publishDesired(site.hubNc, KEY_2, a);
      await waitFor('a under the first key', async () => (await siteSubjects(node)).length === 1, 20_000, 100);

      const b = podSpec({ name: 'b' });
      await publishDesired(site.hubNc, KEY_3, a); // what the provider republishes under the new key
      await publishDesired(site.hubNc, KEY_3, b);
      await ensureSiteStreams(siteJsm, node, KEY_3, silentLogger());
      await publishDesired(site.hubNc, KEY_2, podSpec({ name: 'late' })); // the old key's: not sourced any more
      await waitFor('the new key sourced', async () => (await siteSubjects(node)).length >= 3, 30_000, 100);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await siteSubjects(node)).toEqual([
        desiredSubjects.pod(KEY_2, a),
        desiredSubjects.pod(KEY_3, a),
        desiredSubjects.pod(KEY_3, b),
      ]);
    },
    T,
  );
});
