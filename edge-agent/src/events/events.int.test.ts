/**
 * Kubernetes Events through the offline-first path, across a real leaf link: events recorded while the link is cut
 * wait in the site events stream and reach the hub's EF_EVENTS once it is back, each exactly once.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { HUB_DOMAIN, Streams, decodeEdgeEvent, eventSubjects, parseEventSubject, type edge } from '@edgefarm/proto';
import { JetStreamOutbox } from '../bus/outbox.js';
import { ensureSiteStreams } from '../bus/site-streams.js';
import { Forwarder, eventsRoute } from '../forwarder/forwarder.js';
import { TestSite, createHubStreams, waitFor } from '@edgefarm/testing';
import { systemClock } from '../util/time.js';
import { EventRecorder, containerFieldPath } from './recorder.js';

const T = 120_000;
let site: TestSite;
let siteNc: NatsConnection;
let hubJsm: JetStreamManager;
let forwarder: Forwarder;
let recorder: EventRecorder;

/** Every event the hub's EF_EVENTS holds for the node, in stream order. */
async function hubEvents(): Promise<edge.EdgeEvent[]> {
  const info = await hubJsm.streams.info(Streams.events);
  const out: edge.EdgeEvent[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await hubJsm.streams.getMessage(Streams.events, { seq }).catch(() => null);
    if (m && parseEventSubject(m.subject).node === site.node) out.push(decodeEdgeEvent(m.data, m.subject));
  }
  return out;
}

beforeAll(async () => {
  site = await TestSite.start({ containerd: false });
  hubJsm = await createHubStreams(site.hubNc);
  siteNc = await site.nats.connectSite();
  const siteJsm = await jetstreamManager(siteNc);
  await ensureSiteStreams(siteJsm, site.node, site.wireId, site.logger('streams'));
  const js = jetstream(siteNc);
  forwarder = new Forwarder(
    {
      node: site.node,
      wireId: site.wireId,
      jsm: siteJsm,
      js,
      hub: jetstream(siteNc, { domain: HUB_DOMAIN }),
      route: eventsRoute(site.node, site.wireId),
      log: site.logger('event-forwarder'),
    },
    { backoffBaseMs: 100, backoffMaxMs: 1000, publishTimeoutMs: 1000, pullExpiresMs: 1000 },
  );
  await forwarder.start();
  recorder = new EventRecorder(
    {
      node: site.node,
      wireId: site.wireId,
      sink: new JetStreamOutbox(js, site.node, 5000, Streams.siteEvents(site.node)),
      clock: systemClock,
      log: site.logger('events'),
    },
    { minPublishIntervalMs: 50 },
  );
}, T);

afterAll(async () => {
  await recorder?.stop();
  await forwarder?.stop();
  await siteNc?.close();
  await site?.stop();
}, T);

describe('events store-and-forward', () => {
  it(
    'forwards an event recorded while the leaf link is cut once it is back, exactly once',
    async () => {
      const pod = { uid: 'u-ev', namespace: 'default', name: 'web' };
      recorder.event({ ...pod, fieldPath: containerFieldPath('app') }, 'Normal', 'Pulled', 'Successfully pulled image "busybox"');
      await recorder.flush();
      await waitFor('first event at the hub', async () => (await hubEvents()).length === 1, 20_000, 100);

      site.nats.proxy.sever();
      try {
        const ref = { ...pod, fieldPath: containerFieldPath('app') };
        const msg = 'Back-off restarting failed container app in pod web_default(u-ev)';
        recorder.event(ref, 'Warning', 'BackOff', msg);
        await recorder.flush(); // the first one stored with count 1 (a timer would race a loaded machine)
        recorder.event(ref, 'Warning', 'BackOff', msg);
        recorder.event(ref, 'Warning', 'BackOff', msg);
        await recorder.flush();
        await new Promise((r) => setTimeout(r, 1500));
        expect(await hubEvents()).toHaveLength(1); // still offline: nothing new at the hub
        const siteInfo = await (await jetstreamManager(siteNc)).streams.info(Streams.siteEvents(site.node));
        expect(siteInfo.state.messages).toBeGreaterThanOrEqual(2);
      } finally {
        site.nats.proxy.heal();
      }
      expect(recorder.published).toBeGreaterThanOrEqual(3);
      await waitFor('offline events at the hub', async () => (await hubEvents()).length === recorder.published, 30_000, 200);
      await new Promise((r) => setTimeout(r, 1000)); // nothing more arrives (no duplicates)
      const events = await hubEvents();
      expect(events).toHaveLength(recorder.published);
      expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
      const backoff = events.filter((e) => e.reason === 'BackOff');
      expect(backoff[0]!.count).toBe(1);
      expect(backoff.at(-1)!.count).toBe(3); // aggregated: one key, growing count
      expect(new Set(backoff.map((e) => e.key)).size).toBe(1);
      expect(recorder.dropped).toBe(0);
      // the site stream is drained (work queue)
      const siteInfo = await (await jetstreamManager(siteNc)).streams.info(Streams.siteEvents(site.node));
      expect(siteInfo.state.messages).toBe(0);
      expect(eventSubjects.of(site.node, events[0]!.id)).toMatch(/^ef\.events\./);
    },
    T,
  );
});
