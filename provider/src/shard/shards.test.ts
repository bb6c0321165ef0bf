import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { ShardLeases, shardOf } from './shards.js';

const log = pino({ level: 'silent' });

describe('shardOf', () => {
  it('is stable and spreads names over the shards', () => {
    expect(shardOf('edge-1', 32)).toBe(shardOf('edge-1', 32));
    const used = new Set(Array.from({ length: 200 }, (_, i) => shardOf(`edge-${i}`, 32)));
    expect(used.size).toBeGreaterThan(28);
  });
});

describe('ShardLeases', () => {
  let clock = 1_000_000;
  let kube = new FakeKubeClient();
  beforeEach(() => {
    kube = new FakeKubeClient();
  });

  function replica(identity: string) {
    const held = new Set<number>();
    const events: string[] = [];
    const leases = new ShardLeases({
      kube,
      log,
      namespace: 'edgefarm-system',
      identity,
      shards: 8,
      leaseDurationSeconds: 15,
      renewMs: 5_000,
      now: () => clock,
      onAcquired: async (s) => {
        for (const i of s) held.add(i);
        events.push(`+${s.join(',')}`);
      },
      onLost: async (s) => {
        for (const i of s) held.delete(i);
        events.push(`-${s.join(',')}`);
      },
    });
    return { leases, held, events };
  }

  it('one replica takes every shard; a second gets half; a killed one is taken over after the lease duration', async () => {
    const a = replica('a');
    await a.leases.tick();
    expect(a.held.size).toBe(8);

    const b = replica('b');
    await b.leases.tick(); // b announces itself; every shard is held and fresh
    expect(b.held.size).toBe(0);
    clock += 5_000;
    await a.leases.tick(); // a sees two replicas: releases the shards above its share
    expect(a.held.size).toBe(4);
    await b.leases.tick();
    expect(b.held.size).toBe(4);
    expect([...a.held].some((i) => b.held.has(i))).toBe(false);

    // kill -9 b: it renews nothing any more. a takes b's shards once they have not changed for the lease duration.
    clock += 5_000;
    await a.leases.tick();
    expect(a.held.size).toBe(4);
    for (let i = 0; i < 3; i++) {
      clock += 5_000;
      await a.leases.tick(); // up to 15 s since a saw b's last renewal: not more than the duration yet
    }
    expect(a.held.size).toBe(4);
    clock += 5_000;
    await a.leases.tick();
    expect(a.held.size).toBe(8);
    expect(a.events).toEqual(['+0,1,2,3,4,5,6,7', '-4,5,6,7', expect.stringMatching(/^\+/)]);
    expect(kube.leases.get('edgefarm-system/edgefarm-shard-0')!.spec!.holderIdentity).toBe('a');
  });

  it('a stopping replica releases its shards at once, and a shard taken behind its back is lost at the next renewal', async () => {
    const a = replica('a');
    await a.leases.tick();
    const c = replica('c');
    await c.leases.tick();
    clock += 5_000;
    await a.leases.tick();
    await c.leases.tick();
    const cHad = [...c.held];
    expect(cHad.length).toBeGreaterThan(0);
    await c.leases.stop();
    expect(c.held.size).toBe(0);
    expect(kube.leases.has('edgefarm-system/edgefarm-provider-c')).toBe(false);
    clock += 5_000;
    await a.leases.tick();
    expect(a.held.size).toBe(8);

    // Someone else writes shard 3's lease: a notices the changed holder and stops serving it.
    const l = kube.leases.get('edgefarm-system/edgefarm-shard-3')!;
    kube.leases.set('edgefarm-system/edgefarm-shard-3', {
      ...l,
      spec: { ...l.spec, holderIdentity: 'intruder' },
      metadata: { ...l.metadata, resourceVersion: 'x' },
    });
    clock += 5_000;
    await a.leases.tick();
    expect(a.held.has(3)).toBe(false);
    expect(a.events.at(-1)).toBe('-3');
  });

  it('stops serving shards it could not renew within their duration (API unreachable)', async () => {
    const k2 = new FakeKubeClient();
    const held = new Set<number>();
    const x = new ShardLeases({
      kube: k2,
      log,
      namespace: 'ns',
      identity: 'x',
      shards: 2,
      leaseDurationSeconds: 15,
      renewMs: 5_000,
      now: () => clock,
      onAcquired: async (s) => {
        for (const i of s) held.add(i);
      },
      onLost: async (s) => {
        for (const i of s) held.delete(i);
      },
    });
    await x.tick();
    expect(held.size).toBe(2);
    const down = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    for (let i = 0; i < 2; i++) {
      clock += 5_000;
      k2.failNext('listLeases', down);
      await x.tick();
      expect(held.size).toBe(2); // still within the lease: keeps serving
    }
    clock += 6_000;
    k2.failNext('listLeases', down);
    await x.tick();
    expect(held.size).toBe(0);
  });
});
