import type { JetStreamManager, StreamConfig, StreamInfo } from '@nats-io/jetstream';
import { Streams } from '@edgefarm/proto';
import { pino } from 'pino';
import { siteDesiredStreamConfig } from './site-streams.js';
import { SourceWatch, sourceHealth } from './source-watch.js';

const NODE = 'edge-1';
const WIRE_ID = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const log = pino({ level: 'silent' });

/** The site stream as the server reports it: `active` in ns since the source last heard from the hub (-1: never). */
class FakeSiteJsm {
  config = { ...siteDesiredStreamConfig(NODE, WIRE_ID), subjects: [] } as unknown as StreamConfig;
  source: { active: number; error?: { code: number; description: string } } | undefined = { active: 500e6 };
  updates: StreamConfig[] = [];
  infoError: Error | undefined;

  readonly jsm = {
    streams: {
      info: async (name: string): Promise<StreamInfo> => {
        if (this.infoError) throw this.infoError;
        expect(name).toBe(Streams.siteDesired(NODE));
        const sources = this.source && this.config.sources?.length ? [{ name: Streams.desired, lag: 0, ...this.source }] : [];
        return { config: structuredClone(this.config), sources } as unknown as StreamInfo;
      },
      update: async (name: string, cfg: StreamConfig): Promise<StreamInfo> => {
        expect(name).toBe(Streams.siteDesired(NODE));
        this.updates.push(structuredClone(cfg));
        this.config = structuredClone(cfg);
        return { config: cfg } as unknown as StreamInfo;
      },
    },
  } as unknown as JetStreamManager;
}

function watch(fake: FakeSiteJsm, clock: { t: number }) {
  return new SourceWatch(
    { node: NODE, wireId: WIRE_ID, jsm: fake.jsm, clock: { now: () => clock.t }, log },
    { firstCheckMs: 1, checkEveryMs: 5, giveUpMs: 60 },
  );
}

const until = async (what: () => boolean) => {
  for (let i = 0; i < 200 && !what(); i++) await new Promise((r) => setTimeout(r, 2));
  expect(what()).toBe(true);
};

describe('sourceHealth', () => {
  it('reads the desired source: quiet time in ms, never heard (-1) as undefined, the error text', () => {
    expect(sourceHealth({ sources: [{ name: Streams.desired, lag: 0, active: 2_500_000_000 }] } as unknown as StreamInfo)).toEqual({
      quietMs: 2500,
      error: undefined,
    });
    expect(
      sourceHealth({
        sources: [{ name: Streams.desired, lag: 0, active: -1, error: { code: 503, description: 'source consumer setup failed' } }],
      } as unknown as StreamInfo),
    ).toEqual({
      quietMs: undefined,
      error: 'source consumer setup failed',
    });
    expect(sourceHealth({ sources: [{ name: 'OTHER', lag: 0, active: 1 }] } as unknown as StreamInfo)).toBeUndefined();
    expect(sourceHealth({} as StreamInfo)).toBeUndefined();
  });
});

describe('SourceWatch', () => {
  it('leaves a healthy source alone', async () => {
    const fake = new FakeSiteJsm();
    expect(await watch(fake, { t: 0 }).check()).toBe(false);
    expect(fake.updates).toEqual([]);
  });

  it('restarts a stalled source: removed, then added back with the same identity, and no subjects of its own', async () => {
    const fake = new FakeSiteJsm();
    fake.source = { active: 45e9 };
    const w = watch(fake, { t: 0 });
    expect(await w.check()).toBe(true);
    expect(w.restarts).toBe(1);
    expect(fake.updates.map((u) => u.sources ?? [])).toEqual([[], siteDesiredStreamConfig(NODE, WIRE_ID).sources]);
    expect(fake.updates[1]!.subjects).toEqual([]);
    expect(fake.updates[1]!.max_msgs_per_subject).toBe(1); // the rest of the config unchanged
  });

  it('restarts a source that reports an error or never heard from the hub, and puts back a missing one', async () => {
    for (const source of [{ active: 100e6, error: { code: 500, description: 'timeout' } }, { active: -1 }, undefined]) {
      const fake = new FakeSiteJsm();
      fake.source = source;
      expect(await watch(fake, { t: 0 }).check()).toBe(true);
      expect(fake.config.sources).toEqual(siteDesiredStreamConfig(NODE, WIRE_ID).sources);
    }
  });

  it('watches only after a silence; then looks again until the source is healthy', async () => {
    const fake = new FakeSiteJsm();
    fake.source = { active: 30e9 };
    const clock = { t: 1_000_000 };
    const w = watch(fake, clock);
    w.contact(); // the first contact since start: nothing to compare with
    clock.t += 5_000;
    w.contact(); // a healthy link acks every few seconds
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.updates).toEqual([]);

    clock.t += 60_000;
    w.contact();
    await until(() => w.restarts === 1);
    await until(() => w.restarts === 2); // still stalled at the next look: restarted again
    fake.source = { active: 300e6 };
    await new Promise((r) => setTimeout(r, 30));
    expect(w.restarts).toBe(2);
    await w.stop();
  });

  it('gives up after giveUpMs, and a failing look ends the watch without throwing', async () => {
    const fake = new FakeSiteJsm();
    fake.source = { active: 30e9 };
    const clock = { t: 1_000_000 };
    const w = watch(fake, clock);
    w.contact();
    clock.t += 60_000;
    w.contact();
    await until(() => w.restarts >= 1);
    clock.t += 61; // past giveUpMs (60 ms here)
    await new Promise((r) => setTimeout(r, 30));
    const after = w.restarts;
    await new Promise((r) => setTimeout(r, 30));
    expect(w.restarts).toBe(after);

    fake.infoError = new Error('nats: timeout');
    clock.t += 60_000;
    w.contact();
    await w.stop();
    expect(w.restarts).toBe(after);
  });
});
