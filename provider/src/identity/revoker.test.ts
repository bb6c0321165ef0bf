import { createAccount, createOperator, createUser } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import { decode } from '@nats-io/jwt';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { revocationEntry } from '@edgefarm/registrar';
import { revokerConfig } from './config.js';
import { Revoker } from './revoker.js';
import { FakeRevocationSource } from './source-fake.js';

const td = new TextDecoder();
const accounts = {
  system: createAccount().getPublicKey(),
  desired: createAccount().getPublicKey(),
  cloud: createAccount().getPublicKey(),
  sites: createAccount().getPublicKey(),
};
const operatorSigner = createOperator();
const nodeSigner = createAccount().getPublicKey();

function bed(push: (jwt: string) => Promise<void>) {
  const source = new FakeRevocationSource();
  const registry = new Registry();
  const closed: string[] = [];
  const nc = { close: async () => void closed.push('nc') } as unknown as NatsConnection;
  const revoker = new Revoker({
    source,
    connect: async () => nc,
    operatorSigningSeed: td.decode(operatorSigner.getSeed()),
    accounts,
    nodeSignerPublicKey: nodeSigner,
    log: pino({ level: 'silent' }),
    registry,
    now: () => 1_700_000_000_000,
    retryBaseMs: 10,
    retryMaxMs: 20,
    push: (_nc, jwt) => push(jwt),
  });
  return { source, registry, revoker, closed };
}

const revocationsOf = (jwt: string) => decode<{ revocations?: Record<string, number> }>(jwt).nats.revocations ?? {};

describe('Revoker', () => {
  it('pushes the list at start and on every change, once per distinct list', async () => {
    const pushed: string[] = [];
    const { source, revoker, registry, closed } = bed(async (jwt) => void pushed.push(jwt));
    const a = createUser().getPublicKey();
    source.data = revocationEntry(a, new Date(1_600_000_000_000));
    await revoker.start();
    await revoker.settled();
    expect(pushed).toHaveLength(1);
    expect(revocationsOf(pushed[0]!)).toEqual({ [a]: 1_600_000_000 });
    source.setData({ ...source.data });
    await revoker.settled();
    expect(pushed).toHaveLength(1);
    const b = createUser().getPublicKey();
    source.setData({ ...source.data, ...revocationEntry(b, new Date(1_650_000_000_000)), junk: 'eA==' });
    await revoker.settled();
    expect(pushed).toHaveLength(2);
    expect(revocationsOf(pushed[1]!)).toEqual({ [a]: 1_600_000_000, [b]: 1_650_000_000 });
    expect(await registry.metrics()).toContain('edgefarm_provider_revoked_keys 2');
    await revoker.stop();
    expect(source.stopped).toBe(true);
    expect(closed).toEqual(['nc']);
  });

  it('the pushed account JWT carries the layout and the scoped node signer with its template', async () => {
    const pushed: string[] = [];
    const { revoker } = bed(async (jwt) => void pushed.push(jwt));
    await revoker.start();
    await revoker.settled();
    const claims = decode<{
      signing_keys: { key: string; role: string; template: { allowed_connection_types: string[] } }[];
      imports: { account: string }[];
    }>(pushed[0]!);
    expect(claims.sub).toBe(accounts.sites);
    expect(claims.nats.signing_keys?.[0]).toMatchObject({
      key: nodeSigner,
      role: 'edge-node',
      template: { allowed_connection_types: ['LEAFNODE'] },
    });
    expect(new Set((claims.nats.imports ?? []).map((i) => i.account))).toEqual(new Set([accounts.desired, accounts.cloud]));
    await revoker.stop();
  });

  it('retries a failed push with backoff, and counts it', async () => {
    let fail = 2;
    const pushed: string[] = [];
    const { source, revoker, registry } = bed(async (jwt) => {
      if (fail-- > 0) throw new Error('no responders');
      pushed.push(jwt);
    });
    source.data = revocationEntry(createUser().getPublicKey(), new Date(0));
    await revoker.start();
    for (let i = 0; i < 100 && pushed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(pushed).toHaveLength(1);
    const text = await registry.metrics();
    expect(text).toContain('edgefarm_provider_revocation_pushes_total{result="error"} 2');
    expect(text).toContain('edgefarm_provider_revocation_pushes_total{result="ok"} 1');
    await revoker.stop();
  });

  it('adds the key of a deleted EdgeNode to the list (then pushes it), and not twice', async () => {
    const pushed: string[] = [];
    const { source, revoker } = bed(async (jwt) => void pushed.push(jwt));
    await revoker.start();
    const k = createUser().getPublicKey();
    source.failAdd = new Error('conflict');
    source.handlers!.nodeDeleted('gw-1', k);
    for (let i = 0; i < 200 && source.added.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(source.added).toEqual([{ publicKey: k, at: new Date(1_700_000_000_000) }]);
    await revoker.settled();
    expect(revocationsOf(pushed.at(-1)!)).toEqual({ [k]: 1_700_000_000 });
    source.handlers!.nodeDeleted('gw-1', k);
    expect(source.added).toHaveLength(1);
    await revoker.stop();
  });
});

describe('revoker settings', () => {
  it('are all four or none', () => {
    const problems: string[] = [];
    expect(revokerConfig({}, (p) => problems.push(p))).toBeUndefined();
    expect(problems).toEqual([]);
    expect(revokerConfig({ revokerOperatorSeedFile: '/s' }, (p) => problems.push(p))).toBeUndefined();
    expect(problems[0]).toContain('go together');
    expect(
      revokerConfig({ revokerOperatorSeedFile: '/s', revokerSystemCreds: '/c', revokerAccounts: accounts, revokerNodeSigner: nodeSigner }),
    ).toEqual({
      operatorSigningSeedFile: '/s',
      systemCredsFile: '/c',
      accounts,
      nodeSignerPublicKey: nodeSigner,
    });
  });
});
