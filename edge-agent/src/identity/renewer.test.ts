import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import {
  RegistrarRefusedError,
  RegistrarUnreachableError,
  type NodeJson,
  type RenewRequest,
  type RenewResponse,
} from '@edgefarm/registrar/site';
import { CredentialRenewer, renewalDueMs, type RenewClient } from './renewer.js';

const DAY = 86400_000;
const T0 = Date.parse('2026-01-10T00:00:00Z');

class FakeClient implements RenewClient {
  readonly requests: RenewRequest[] = [];
  failures: Error[] = [];
  constructor(private readonly now: () => number) {}
  async renew(_seed: string, req: RenewRequest): Promise<RenewResponse> {
    this.requests.push(req);
    const f = this.failures.shift();
    if (f) throw f;
    return {
      node: req.node,
      wireId: req.publicKey,
      jwt: `header.jwt-${this.requests.length}.signature`, // JWT-shaped; the renewer does not check signatures
      issuedAt: new Date(this.now()).toISOString(),
      expiresAt: new Date(this.now() + 7 * DAY).toISOString(),
    };
  }
}

/** A sleep the test releases: records each wait, resolves on release() or abort. */
class Sleeps {
  readonly waits: number[] = [];
  private release?: () => void;
  sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise((resolve) => {
      this.waits.push(ms);
      this.release = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  async next(count: number): Promise<void> {
    for (let i = 0; i < 200 && this.waits.length < count; i++) await new Promise((r) => setTimeout(r, 5));
    expect(this.waits.length).toBeGreaterThanOrEqual(count);
  }
  wake(): void {
    this.release?.();
  }
}

async function joinDir(): Promise<{ dir: string; nodeJson: NodeJson; seed: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-renewer-'));
  const kp = createUser();
  const seed = new TextDecoder().decode(kp.getSeed());
  const nodeJson: NodeJson = {
    node: 'gw-1',
    wireId: kp.getPublicKey(),
    registrarUrl: 'https://registrar.example:8443',
    hubLeafUrls: ['tls://hub:7422'],
    domain: 'site-gw-1',
    issuedAt: new Date(T0).toISOString(),
    expiresAt: new Date(T0 + 10 * DAY).toISOString(),
  };
  await writeFile(path.join(dir, 'node.json'), JSON.stringify(nodeJson));
  await writeFile(path.join(dir, 'node.nk'), `${seed}\n`, { mode: 0o600 });
  await writeFile(path.join(dir, 'node.creds'), 'old', { mode: 0o600 });
  await writeFile(path.join(dir, 'ca.pem'), 'ca');
  return { dir, nodeJson, seed };
}

function renewer(dir: string, now: { t: number }, client: FakeClient, sleeps: Sleeps, random = () => 0) {
  const registry = new Registry();
  const r = new CredentialRenewer({
    dir,
    log: pino({ level: 'silent' }),
    registry,
    clock: { now: () => now.t },
    client: () => client,
    sleep: sleeps.sleep,
    random,
  });
  return { r, registry };
}

describe('CredentialRenewer', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('renews at 70-90 % of the lifetime', () => {
    expect(renewalDueMs(0, 1000, 0)).toBe(700);
    expect(renewalDueMs(0, 1000, 0.5)).toBe(800);
    expect(renewalDueMs(0, 1000, 0.9999)).toBeCloseTo(900, 0);
  });

  it('waits until due, renews, replaces node.creds and node.json atomically and reports the expiry', async () => {
    const { dir, nodeJson } = await joinDir();
    dirs.push(dir);
    const now = { t: T0 + DAY };
    const client = new FakeClient(() => now.t);
    const sleeps = new Sleeps();
    const { r, registry } = renewer(dir, now, client, sleeps, () => 0.5);
    await r.start();
    await sleeps.next(1);
    expect(sleeps.waits[0]).toBe(T0 + 8 * DAY - now.t);
    now.t = T0 + 8 * DAY;
    sleeps.wake();
    await sleeps.next(2);
    expect(client.requests[0]).toMatchObject({ node: 'gw-1', publicKey: nodeJson.wireId });
    expect(client.requests[0]!.nonce).toMatch(/^[A-Za-z0-9_-]{16,64}$/);
    const creds = await readFile(path.join(dir, 'node.creds'), 'utf8');
    expect(creds).toContain('jwt-1');
    expect((await stat(path.join(dir, 'node.creds'))).mode & 0o777).toBe(0o600);
    const next = JSON.parse(await readFile(path.join(dir, 'node.json'), 'utf8')) as NodeJson;
    expect(next).toEqual({ ...nodeJson, issuedAt: new Date(now.t).toISOString(), expiresAt: new Date(now.t + 7 * DAY).toISOString() });
    // the next renewal is planned from the new lifetime
    expect(sleeps.waits[1]).toBe((7 * DAY * 8) / 10);
    const text = await registry.metrics();
    expect(text).toContain(`edgefarm_agent_credentials_expiry_timestamp_seconds ${(now.t + 7 * DAY) / 1000}`);
    expect(text).toContain('edgefarm_agent_credential_renewals_total{result="ok"} 1');
    await r.stop();
  });

  it('retries with growing, jittered delays while the registrar is unreachable or refuses, and counts each', async () => {
    const { dir } = await joinDir();
    dirs.push(dir);
    const now = { t: T0 + 9.5 * DAY };
    const client = new FakeClient(() => now.t);
    client.failures = [
      new RegistrarUnreachableError('down'),
      new RegistrarUnreachableError('down'),
      new RegistrarRefusedError('busy', 503, 'busy'),
    ];
    const sleeps = new Sleeps();
    const { r, registry } = renewer(dir, now, client, sleeps, () => 0.5);
    await r.start();
    for (let i = 1; i <= 4; i++) {
      await sleeps.next(i);
      sleeps.wake();
    }
    await sleeps.next(5);
    // due already (0), then 5 s, 10 s, 20 s (jitter factor 1.0 at random 0.5), then the next lifetime's wait
    expect(sleeps.waits.slice(0, 4)).toEqual([0, 5000, 10_000, 20_000]);
    expect(client.requests).toHaveLength(4);
    const text = await registry.metrics();
    expect(text).toContain('edgefarm_agent_credential_renewals_total{result="unreachable"} 2');
    expect(text).toContain('edgefarm_agent_credential_renewals_total{result="refused"} 1');
    expect(text).toContain('edgefarm_agent_credential_renewals_total{result="ok"} 1');
    await r.stop();
  });

  it('refuses to start without a join directory, and stops while waiting', async () => {
    const now = { t: T0 };
    const sleeps = new Sleeps();
    const missing = renewer('/nonexistent/edgefarm', now, new FakeClient(() => now.t), sleeps);
    await expect(missing.r.start()).rejects.toThrow();
    const { dir } = await joinDir();
    dirs.push(dir);
    const { r } = renewer(dir, now, new FakeClient(() => now.t), sleeps);
    await r.start();
    await sleeps.next(1);
    await r.stop();
    await r.stop();
  });

  it('keeps the old files when the answer is for another key', async () => {
    const { dir } = await joinDir();
    dirs.push(dir);
    const now = { t: T0 + 9 * DAY };
    const client = new FakeClient(() => now.t);
    client.renew = async (_s, req) => ({
      node: req.node,
      wireId: createUser().getPublicKey(),
      jwt: 'x',
      issuedAt: '2026-01-19T00:00:00Z',
      expiresAt: '2026-01-26T00:00:00Z',
    });
    const { r } = renewer(dir, now, client, new Sleeps());
    expect(await r.renewOnce()).toBe('error');
    expect(await readFile(path.join(dir, 'node.creds'), 'utf8')).toBe('old');
  });
});
