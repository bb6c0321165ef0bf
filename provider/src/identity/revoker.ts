/**
 * Revoker: keeps the hub's EF_SITES account JWT in line with the revocation list, so a revoked node's leaf link
 * closes (within milliseconds of the push, decision 0008) and its redials are refused.
 *
 * - The list is the Secret `edgefarm-revocations` (one writer per entry: whoever revokes adds the key, `edgefarm node
 *   revoke`, or this revoker when an EdgeNode with an identity is deleted). The revoker owns nothing else.
 * - On every change of the Secret (and once at start) it re-issues the EF_SITES account JWT with those revocations,
 *   signed by the operator signing key, and pushes it with $SYS.REQ.CLAIMS.UPDATE over its own system-account
 *   connection. A failed push is retried with backoff until one succeeds; a list already pushed is not pushed again.
 *   Pushes are one at a time; changes during a push are coalesced into the next.
 * - Every replica of the provider runs one; their pushes carry the same list, so which lands last does not matter.
 *
 * Metrics: `edgefarm_provider_revocation_pushes_total{result}` and `edgefarm_provider_revoked_keys`.
 */
import { fromSeed } from '@nats-io/nkeys';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { readRevocations, type Revocations } from '@edgefarm/registrar';
import { pushAccountClaims, reissueSitesAccount } from '@edgefarm/identity';
import type { RevocationSource } from './source.js';

export interface FleetAccounts {
  system: string;
  desired: string;
  cloud: string;
  sites: string;
}

export interface RevokerOptions {
  source: RevocationSource;
  /** Opens the system-account connection to the hub (closed by stop()). */
  connect: () => Promise<NatsConnection>;
  operatorSigningSeed: string;
  accounts: FleetAccounts;
  /** The EF_SITES scoped signing key of node users (its template goes into the account JWT). */
  nodeSignerPublicKey: string;
  log: Logger;
  registry: Registry;
  now?: () => number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  reissue?: typeof reissueSitesAccount;
  push?: typeof pushAccountClaims;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

const same = (a: Revocations | undefined, b: Revocations): boolean =>
  a !== undefined && Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);

export class Revoker {
  private nc?: NatsConnection;
  private wanted?: Revocations;
  private pushed?: Revocations;
  private running?: Promise<void>;
  private retryTimer?: NodeJS.Timeout;
  private attempt = 0;
  private stopped = false;
  private abort = new AbortController();
  private readonly pushes: Counter<'result'>;
  private readonly revokedKeys: Gauge;

  /** The operator signing key's public key: a JWT signed otherwise is never pushed. */
  private readonly signerPublicKey: string;

  constructor(private readonly o: RevokerOptions) {
    const kp = fromSeed(new TextEncoder().encode(o.operatorSigningSeed));
    this.signerPublicKey = kp.getPublicKey();
    kp.clear();
    const registers = [o.registry];
    this.pushes = new Counter({
      name: 'edgefarm_provider_revocation_pushes_total',
      help: 'Pushes of the EF_SITES account JWT with the revocation list to the hub, by result',
      labelNames: ['result'],
      registers,
    });
    this.revokedKeys = new Gauge({ name: 'edgefarm_provider_revoked_keys', help: 'Node keys in the revocation list', registers });
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.abort = new AbortController();
    this.nc = await this.o.connect();
    await this.o.source.start({
      revocations: (data) => {
        const { revocations, malformed } = readRevocations(data);
        if (malformed.length > 0)
          this.o.log.warn({ malformed }, 'revocation list entries that are not <user key>: <unix seconds> are ignored');
        this.wanted = revocations;
        this.revokedKeys.set(Object.keys(revocations).length);
        this.kick();
      },
      nodeDeleted: (node, publicKey) => void this.revokeDeleted(node, publicKey),
      error: (err) => this.o.log.warn({ err }, 'revocation watch failed; restarting it'),
    });
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    clearTimeout(this.retryTimer);
    await this.o.source.stop();
    await this.running;
    await this.nc?.close().catch(() => undefined);
    this.nc = undefined;
  }

  /** Resolves once the current list has been pushed (or the attempt in flight ended); for tests. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  private async revokeDeleted(node: string, publicKey: string): Promise<void> {
    if (this.wanted?.[publicKey] !== undefined) return;
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.o.source.addRevocation(publicKey, new Date(this.o.now?.() ?? Date.now()));
        this.o.log.info({ node, publicKey }, 'EdgeNode deleted: its key is revoked');
        return;
      } catch (err) {
        this.o.log.warn({ err, node }, 'could not add the deleted node key to the revocation list; retrying');
        await abortableSleep(Math.min(30_000, 500 * 2 ** attempt), this.abort.signal);
      }
    }
  }

  /** Pushes the wanted list unless a push is running (its end looks again); a failure retries after a backoff. */
  private kick(): void {
    if (this.running || this.stopped) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.running = this.sync().finally(() => {
      this.running = undefined;
      if (this.stopped || !this.wanted || same(this.pushed, this.wanted)) return;
      if (this.attempt === 0) return this.kick();
      const delay = Math.min(this.o.retryMaxMs ?? 60_000, (this.o.retryBaseMs ?? 1000) * 2 ** Math.min(this.attempt - 1, 20));
      this.o.log.warn({ retryInMs: delay }, 'retrying the push of the revocation list');
      this.retryTimer = setTimeout(() => this.kick(), delay);
    });
  }

  private async sync(): Promise<void> {
    const wanted = this.wanted;
    const nc = this.nc;
    if (!wanted || !nc || same(this.pushed, wanted)) return;
    try {
      const jwt = await (this.o.reissue ?? reissueSitesAccount)({
        operatorSigningSeed: this.o.operatorSigningSeed,
        accounts: this.o.accounts,
        nodeSignerPublicKey: this.o.nodeSignerPublicKey,
        revocations: wanted,
      });
      await (this.o.push ?? pushAccountClaims)(nc, jwt, { issuers: [this.signerPublicKey] });
      this.pushed = wanted;
      this.attempt = 0;
      this.pushes.inc({ result: 'ok' });
      this.o.log.info({ revoked: Object.keys(wanted).length }, 'pushed the EF_SITES account with the revocation list');
    } catch (err) {
      this.attempt++;
      this.pushes.inc({ result: 'error' });
      this.o.log.warn({ err }, 'could not push the revocation list to the hub');
    }
  }
}
