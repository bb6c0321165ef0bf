import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, type StreamConfig, type StreamInfo } from '@nats-io/jetstream';
import { HUB_DOMAIN, Streams, desiredSubjects, domainApiPrefix, eventSubjects, outboxSubjects, sourceDeliverPrefix } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { differs, ensureSiteStreams, siteDesiredStreamConfig } from './site-streams.js';

const NODE = 'edge-1';
const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const KEY_2 = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';

/** The site's streams as the server holds them; records adds and updates. */
class FakeJsm {
  readonly streams = new Map<string, StreamConfig>();
  readonly calls: string[] = [];
  readonly jsm = {
    streams: {
      info: async (name: string): Promise<StreamInfo> => {
        const config = this.streams.get(name);
        if (!config)
          throw new JetStreamApiError({ code: 404, err_code: JetStreamApiCodes.StreamNotFound, description: 'stream not found' });
        return { config: structuredClone(config) } as unknown as StreamInfo;
      },
      add: async (cfg: StreamConfig): Promise<StreamInfo> => {
        this.calls.push(`add ${cfg.name}`);
        this.streams.set(cfg.name, structuredClone(cfg));
        return { config: cfg } as unknown as StreamInfo;
      },
      update: async (name: string, cfg: StreamConfig): Promise<StreamInfo> => {
        this.calls.push(`update ${name}`);
        this.streams.set(name, structuredClone(cfg));
        return { config: cfg } as unknown as StreamInfo;
      },
    },
  } as unknown as JetStreamManager;
}

describe('site streams', () => {
  it("name streams by the node and subjects by its wire id; the source delivers below the node's deliver prefix", () => {
    const want = siteDesiredStreamConfig(NODE, KEY);
    expect(want.name).toBe(Streams.siteDesired(NODE));
    expect(want.sources).toEqual([
      {
        name: Streams.desired,
        filter_subject: desiredSubjects.node(KEY),
        external: { api: domainApiPrefix(HUB_DOMAIN), deliver: sourceDeliverPrefix(KEY) },
      },
    ]);
  });

  it('creates the three streams, then leaves them alone while nothing differs', async () => {
    const fake = new FakeJsm();
    await ensureSiteStreams(fake.jsm, NODE, KEY, silentLogger());
    expect(fake.calls).toEqual([`add ${Streams.siteDesired(NODE)}`, `add ${Streams.outbox(NODE)}`, `add ${Streams.siteEvents(NODE)}`]);
    expect(fake.streams.get(Streams.outbox(NODE))!.subjects).toEqual([outboxSubjects.node(KEY)]);
    expect(fake.streams.get(Streams.siteEvents(NODE))!.subjects).toEqual([eventSubjects.siteNode(KEY)]);
    fake.calls.length = 0;
    await ensureSiteStreams(fake.jsm, NODE, KEY, silentLogger());
    expect(fake.calls).toEqual([]);
  });

  it("brings a stream made before deliver prefixes in line: its source's deliver ('' went to $JS.S.*, which no node may read)", async () => {
    const fake = new FakeJsm();
    const old = siteDesiredStreamConfig(NODE, NODE);
    old.sources![0]!.external!.deliver = '';
    fake.streams.set(old.name, { ...old, subjects: [], max_msgs_per_subject: 1, retention: 'limits', storage: 'file' } as StreamConfig);
    expect(differs(siteDesiredStreamConfig(NODE, NODE), fake.streams.get(old.name)!)).toEqual(['sources']);
    const updates: StreamConfig[] = [];
    const update = fake.jsm.streams.update.bind(fake.jsm.streams);
    fake.jsm.streams.update = (name, cfg) => (updates.push(structuredClone(cfg as StreamConfig)), update(name, cfg));
    await ensureSiteStreams(fake.jsm, NODE, NODE, silentLogger());
    // Removed and added back: the server keeps a running source on its old consumer when only its deliver prefix changes.
    expect(updates.filter((u) => u.name === old.name).map((u) => u.sources?.length)).toEqual([0, 1]);
    const now = fake.streams.get(old.name)!;
    expect(now.sources![0]!.external).toEqual({ api: domainApiPrefix(HUB_DOMAIN), deliver: sourceDeliverPrefix(NODE) });
    expect(now.subjects).toEqual([]);
  });

  it('follows a new wire id (the node joined again): the filter, the deliver prefix and the subjects change, the names stay', async () => {
    const fake = new FakeJsm();
    await ensureSiteStreams(fake.jsm, NODE, KEY, silentLogger());
    fake.calls.length = 0;
    await ensureSiteStreams(fake.jsm, NODE, KEY_2, silentLogger());
    expect(fake.calls).toEqual([
      `update ${Streams.siteDesired(NODE)}`,
      `update ${Streams.siteDesired(NODE)}`,
      `update ${Streams.outbox(NODE)}`,
      `update ${Streams.siteEvents(NODE)}`,
    ]);
    expect(fake.streams.get(Streams.siteDesired(NODE))!.sources).toEqual(siteDesiredStreamConfig(NODE, KEY_2).sources);
    expect(fake.streams.get(Streams.outbox(NODE))!.subjects).toEqual([outboxSubjects.node(KEY_2)]);
  });
});
