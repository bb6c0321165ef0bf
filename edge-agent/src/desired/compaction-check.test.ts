import type { JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { create, desiredSubjects, edge, encode, Headers, Streams } from '@edgefarm/proto';
import { ManualClock, podSpec, silentLogger } from '@edgefarm/testing';
import { CompactionCheck } from './compaction-check.js';
import type { HubSubjects } from './hub-listing.js';
import { DesiredStore } from './store.js';

const NODE = 'edge-1';
const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const HOUR = 3600_000;

/** The site stream as the check reads it: its last sequence, its NodeConfig; records purges. */
class FakeSite {
  lastSeq = 10;
  /** The NodeConfig message at the site (undefined: none). */
  config: { data: Uint8Array; tombstone?: boolean } | undefined;
  readonly purges: { filter?: string; seq?: number }[] = [];
  readonly jsm = {
    streams: {
      info: async (name: string) => {
        expect(name).toBe(Streams.siteDesired(NODE));
        return { state: { last_seq: this.lastSeq } };
      },
      purge: async (name: string, opts: { filter?: string; seq?: number }) => {
        expect(name).toBe(Streams.siteDesired(NODE));
        this.purges.push(opts);
        return { success: true, purged: 1 };
      },
      getMessage: async (name: string, q: { last_by_subj: string }): Promise<StoredMsg | null> => {
        expect(name).toBe(Streams.siteDesired(NODE));
        expect(q.last_by_subj).toBe(desiredSubjects.nodeConfig(KEY));
        if (!this.config) return null;
        const header = new Map<string, string>(this.config.tombstone ? [[Headers.operation, 'DEL']] : []);
        return {
          subject: q.last_by_subj,
          data: this.config.data,
          header: { get: (k: string) => header.get(k) ?? '' },
        } as unknown as StoredMsg;
      },
    },
  } as unknown as JetStreamManager;
}

const ttlConfig = (seconds: bigint) => encode(edge.NodeConfigSchema, create(edge.NodeConfigSchema, { tombstoneTtlSeconds: seconds }));

function setup(hubHas: string[]) {
  const site = new FakeSite();
  const store = new DesiredStore(KEY, silentLogger(), () => undefined);
  const lists: number[] = [];
  const hub: HubSubjects = {
    list: async () => {
      lists.push(1);
      return new Set(hubHas);
    },
  };
  const clock = new ManualClock(1_700_000_000_000);
  const forgotten: string[][] = [];
  const check = new CompactionCheck(
    { node: NODE, wireId: KEY, store, siteJsm: site.jsm, hub, clock, log: silentLogger(), onForgotten: (k) => forgotten.push(k) },
    clock.now(),
  );
  const put = (name: string, seq: number) =>
    store.apply({
      subject: desiredSubjects.pod(KEY, { namespace: 'default', name }),
      seq,
      data: encode(edge.EdgePodSpecSchema, podSpec({ name })),
    });
  return { site, store, check, clock, lists, forgotten, put };
}

/** A contact after `silentMs` of silence; resolves once the check it may start is over. */
async function contactAfter(b: ReturnType<typeof setup>, silentMs: number): Promise<void> {
  b.clock.advance(silentMs);
  b.check.contact();
  await b.check.stop(); // waits for the check in flight (and ends the check for good: one contact per test)
}

describe('CompactionCheck', () => {
  it("forgets what the hub's listing lacks (its tombstone compacted) and purges exactly that message at the site", async () => {
    const b = setup([desiredSubjects.pod(KEY, { namespace: 'default', name: 'kept' }), desiredSubjects.nodeConfig(KEY)]);
    b.put('kept', 3);
    b.put('gone', 4);
    b.put('new', 11); // arrived after the site's last sequence at the start: not judged
    b.store.markSynced();
    const r = await b.check.check();
    expect(r).toEqual({ hubSubjects: 2, forgotten: ['default/gone'] });
    expect(b.site.purges).toEqual([{ filter: desiredSubjects.pod(KEY, { namespace: 'default', name: 'gone' }), seq: 5 }]);
    expect(b.store.keys().sort()).toEqual(['default/kept', 'default/new']);
    expect(b.forgotten).toEqual([['default/gone']]);
  });

  it("reads the tombstone TTL from the node's NodeConfig at the site: a silence under half of it checks nothing", async () => {
    const b = setup([]);
    b.site.config = { data: ttlConfig(24n * 3600n) };
    b.store.markSynced();
    expect(await b.check.tombstoneTtlSeconds()).toBe(86_400);
    await contactAfter(b, 11 * HOUR);
    expect(b.lists).toEqual([]);
  });

  it('checks after a silence of more than half the TTL', async () => {
    const b = setup([]);
    b.site.config = { data: ttlConfig(24n * 3600n) };
    b.store.markSynced();
    await contactAfter(b, 13 * HOUR);
    expect(b.lists).toEqual([1]);
  });

  it('checks to be safe without a usable NodeConfig: none, a tombstone, undecodable', async () => {
    for (const config of [
      undefined,
      { data: new Uint8Array(), tombstone: true },
      { data: new Uint8Array([0xff, 0xff]) },
      { data: ttlConfig(0n) },
    ]) {
      const b = setup([]);
      b.site.config = config;
      b.store.markSynced();
      expect(await b.check.tombstoneTtlSeconds()).toBeUndefined();
      await contactAfter(b, 20_000);
      expect(b.lists).toEqual([1]);
    }
  });

  it('a failed listing forgets nothing and checks again at the next contact', async () => {
    const b = setup([]);
    b.put('kept', 3);
    b.store.markSynced();
    b.clock.advance(20_000);
    let fail = true;
    const list = async () => {
      if (fail) throw new Error('listing incomplete');
      return new Set([desiredSubjects.pod(KEY, { namespace: 'default', name: 'kept' })]);
    };
    (b.check as unknown as { deps: { hub: HubSubjects } }).deps.hub = { list };
    b.check.contact();
    await new Promise((r) => setTimeout(r, 10));
    expect(b.store.keys()).toEqual(['default/kept']);
    expect(b.check.lastHubContactMs).toBe(0); // unknown again: the next contact checks
    fail = false;
    b.check.contact();
    await b.check.stop();
    expect(b.check.checks).toBe(1);
  });
});
