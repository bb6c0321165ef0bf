/**
 * CredentialRenewer: keeps the node's NATS credentials in the join directory (EF_IDENTITY_DIR) fresh. It renews at a
 * random point between 70 % and 90 % of the credentials' lifetime (jitter, so a fleet joined at once does not renew
 * at once), proving itself with the node's seed (node.nk) to the registrar named in node.json, verified against the
 * fleet CA (ca.pem) only. The new JWT replaces node.creds and node.json atomically (registrar's join-dir.ts); the site
 * nats-server reads node.creds at its next dial, and the hub closes the leaf at the old JWT's expiry (within ~1 s),
 * so the site is back on the new file within about a second, with no restart.
 *
 * An unreachable or refusing registrar is retried with exponential backoff (5 s doubling to 5 min, with jitter) until
 * it answers or the renewer stops; each attempt counts in `edgefarm_agent_credential_renewals_total{result}`, and
 * `edgefarm_agent_credentials_expiry_timestamp_seconds` says when the current credentials expire (alert on it).
 *
 * One owner: the renewer is the only writer of node.creds and node.json after the join.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import {
  JOIN_FILES,
  RegistrarClient,
  formatCreds,
  isRegistrarRefused,
  isRegistrarUnreachable,
  parseNodeJson,
  replaceFileAtomically,
  type NodeJson,
  type RenewRequest,
  type RenewResponse,
} from '@edgefarm/registrar/site';
import { backoffMs, errorMessage, sleep as realSleep, systemClock, type Clock } from '../util/time.js';

/** The registrar call the renewer makes (RegistrarClient.renew). */
export interface RenewClient {
  renew(seed: string, req: RenewRequest): Promise<RenewResponse>;
}

export interface RenewerOptions {
  /** The join directory. */
  dir: string;
  log: Logger;
  /** Where the two metrics are registered (the agent's registry). */
  registry: Registry;
  clock?: Clock;
  /** Default: a RegistrarClient for node.json's registrarUrl and ca.pem. */
  client?: (nodeJson: NodeJson, caPem: string) => RenewClient;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A number in [0, 1): where in 70-90 % of the lifetime to renew, and the retries' jitter. */
  random?: () => number;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export type RenewResult = 'ok' | 'refused' | 'unreachable' | 'error';

/** Where in the lifetime [issuedAt, expiresAt] the renewal is due: 70 % + 20 % × r. */
export function renewalDueMs(issuedAtMs: number, expiresAtMs: number, r: number): number {
  return Math.round(issuedAtMs + ((expiresAtMs - issuedAtMs) * (70 + 20 * Math.min(Math.max(r, 0), 1))) / 100);
}

export class CredentialRenewer {
  private readonly clock: Clock;
  private readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  private readonly random: () => number;
  private readonly expiry: Gauge;
  private readonly renewals: Counter<'result'>;
  private abort?: AbortController;
  private loop?: Promise<void>;

  constructor(private readonly o: RenewerOptions) {
    this.clock = o.clock ?? systemClock;
    this.sleep = o.sleep ?? realSleep;
    this.random = o.random ?? Math.random;
    const registers = [o.registry];
    this.expiry = new Gauge({
      name: 'edgefarm_agent_credentials_expiry_timestamp_seconds',
      help: "When the node's current NATS credentials expire (unix seconds)",
      registers,
    });
    this.renewals = new Counter({
      name: 'edgefarm_agent_credential_renewals_total',
      help: 'Renewals of the node credentials by result (ok, refused, unreachable, error)',
      labelNames: ['result'],
      registers,
    });
    for (const r of ['ok', 'refused', 'unreachable', 'error']) this.renewals.inc({ result: r }, 0);
  }

  /** Reads the join directory (throws when it is not one) and starts renewing in the background. */
  async start(): Promise<void> {
    const state = await this.read();
    this.expiry.set(Date.parse(state.nodeJson.expiresAt) / 1000);
    this.abort = new AbortController();
    this.o.log.info({ dir: this.o.dir, expiresAt: state.nodeJson.expiresAt }, 'renewing the node credentials');
    this.loop = this.run(this.abort.signal);
  }

  /** Stops waiting and retrying; resolves once the loop has ended (a renewal in flight finishes its write first). */
  async stop(): Promise<void> {
    this.abort?.abort();
    await this.loop;
    this.abort = undefined;
    this.loop = undefined;
  }

  private async run(signal: AbortSignal): Promise<void> {
    let attempt = 0;
    while (!signal.aborted) {
      if (attempt === 0) {
        let waitMs: number;
        try {
          const { nodeJson } = await this.read();
          waitMs = Math.max(
            0,
            renewalDueMs(Date.parse(nodeJson.issuedAt), Date.parse(nodeJson.expiresAt), this.random()) - this.clock.now(),
          );
        } catch (err) {
          this.o.log.error({ err: errorMessage(err) }, 'cannot read the join directory');
          this.renewals.inc({ result: 'error' });
          await this.sleep(this.retryDelay(attempt++), signal);
          continue;
        }
        await this.sleep(waitMs, signal);
        if (signal.aborted) return;
      }
      const result = await this.renewOnce();
      if (result === 'ok') {
        attempt = 0;
        continue;
      }
      await this.sleep(this.retryDelay(attempt++), signal);
    }
  }

  private retryDelay(attempt: number): number {
    const base = backoffMs(attempt, this.o.retryBaseMs ?? 5000, this.o.retryMaxMs ?? 300_000);
    return Math.round(base * (0.8 + 0.4 * this.random()));
  }

  /** One renewal: asks the registrar, then replaces node.creds and node.json. Never throws. */
  async renewOnce(): Promise<RenewResult> {
    let result: RenewResult;
    try {
      const { nodeJson, seed, caPem } = await this.read();
      const client = this.o.client ? this.o.client(nodeJson, caPem) : new RegistrarClient({ url: nodeJson.registrarUrl, caPem });
      const res = await client.renew(seed, {
        node: nodeJson.node,
        publicKey: nodeJson.wireId,
        time: new Date(this.clock.now()).toISOString(),
        nonce: randomBytes(18).toString('base64url'),
      });
      if (res.wireId !== nodeJson.wireId || res.node !== nodeJson.node) throw new Error('the registrar answered for another node or key');
      await replaceFileAtomically(this.file(JOIN_FILES.creds), formatCreds(res.jwt, seed), 0o600);
      const next: NodeJson = { ...nodeJson, issuedAt: res.issuedAt, expiresAt: res.expiresAt };
      await replaceFileAtomically(this.file(JOIN_FILES.nodeJson), JSON.stringify(next, null, 2) + '\n', 0o644);
      this.expiry.set(Date.parse(res.expiresAt) / 1000);
      this.o.log.info({ expiresAt: res.expiresAt }, 'node credentials renewed');
      result = 'ok';
    } catch (err) {
      result = isRegistrarUnreachable(err) ? 'unreachable' : isRegistrarRefused(err) ? 'refused' : 'error';
      const code = isRegistrarRefused(err) ? err.code : undefined;
      this.o.log.warn({ err: errorMessage(err), code, result }, 'credential renewal failed; retrying');
    }
    this.renewals.inc({ result });
    return result;
  }

  private file(name: string): string {
    return path.join(this.o.dir, name);
  }

  private async read(): Promise<{ nodeJson: NodeJson; seed: string; caPem: string }> {
    const [json, seed, caPem] = await Promise.all([
      readFile(this.file(JOIN_FILES.nodeJson), 'utf8'),
      readFile(this.file(JOIN_FILES.nodeSeed), 'utf8'),
      readFile(this.file(JOIN_FILES.ca), 'utf8'),
    ]);
    return { nodeJson: parseNodeJson(json), seed: seed.trim(), caPem };
  }
}
