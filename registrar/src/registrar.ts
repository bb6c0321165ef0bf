/**
 * The registrar's decisions: who may have credentials, and minting them. Transport-free (server.ts puts it on HTTPS);
 * every refusal is a {@link RegistrarError} whose code the server answers and counts.
 *
 * Join (authenticated by the token alone), in this order:
 *   1. the token parses, the site's clock is within MAX_CLOCK_SKEW_MS;
 *   2. its Secret exists (else `token-reused` when this registrar consumed it recently, `token-unknown` otherwise),
 *      sha256 of the secret matches in constant time, it has not expired, and it is the node the site asked for;
 *   3. the node has no recorded identity (`name-taken`: a node that joined is revoked first, `edgefarm node revoke`);
 *   4. the EdgeNode is created when missing (with the token's labels), and the JWT is minted (both before the token is spent: they can fail
 *      without costing the user the token, and a created EdgeNode is what `edgefarm node add` makes anyway);
 *   5. the token Secret is deleted with a uid + resourceVersion precondition: the single point of commit, so two
 *      sites racing with one token get one success;
 *   6. status.identity is merge-patched at the EdgeNode's resourceVersion (re-read and re-checked on a conflict).
 * Only step 6 can fail after the token is spent (the API is down, or another token of the same node won the race):
 * the answer then says so and that a new token is needed. Nothing else is left behind: the minted JWT never leaves.
 *
 * Renewal (proven with the node's key): the signature over the raw body verifies with the body's public key, the
 * time is within the replay window, the key is the EdgeNode's recorded one and not in the revocation list, and the
 * nonce is unseen in the window (remembered only now, so only a node's own key can fill that memory); then a new
 * JWT and status.identity as in step 6.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { nodeWireId, siteDomain } from '@edgefarm/proto';
import {
  FLEET_NAMESPACE,
  REVOCATIONS_SECRET,
  identityOf,
  parseJoinToken,
  readRevocations,
  readTokenSecret,
  sha256Hex,
  tokenSecretName,
  type NodeIdentity,
  type TokenRecord,
} from './fleet.js';
import type { EdgeNodeLike, PatchOutcome, RegistrarKube } from './kube.js';
import type { RegistrarMetrics, Endpoint, Result } from './metrics.js';
import {
  MAX_CLOCK_SKEW_MS,
  RegistrarError,
  isRegistrarError,
  parseJoinRequest,
  parseRenewRequest,
  parseTime,
  type Credentials,
  type JoinResponse,
  type RenewResponse,
} from './protocol.js';
import { verifyBody } from './signing.js';
import { RecentSet } from './recent.js';

/** Mints a node's user JWT (@edgefarm/identity's mintNodeUser). */
export type MintNodeUser = (o: {
  signerSeed: string;
  accountPublicKey: string;
  nodePublicKey: string;
  name: string;
  expiresAt: Date;
  issuedAt?: Date;
  now?: Date;
}) => Promise<string>;

export interface RegistrarOptions {
  kube: RegistrarKube;
  mint: MintNodeUser;
  /** The EF_SITES scoped signing key's seed: the only key the registrar holds. */
  signerSeed: string;
  /** The EF_SITES account's public key (the JWTs' issuer_account). */
  sitesAccount: string;
  /** The fleet CA (PEM), handed to joining sites. */
  caPem: string;
  hubLeafUrls: string[];
  /** This registrar's public https URL (where sites renew). */
  registrarUrl: string;
  /** Lifetime of a node's credentials. */
  credentialLifetimeSeconds: number;
  namespace?: string;
  metrics: RegistrarMetrics;
  log: Logger;
  now?: () => number;
  /** Nonces remembered at most (a full cache refuses renewals with `busy` rather than forget one early). */
  maxNonces?: number;
}

/** How often a status patch is retried after the EdgeNode changed under it (the provider writes status too). */
const PATCH_ATTEMPTS = 5;

export class Registrar {
  private readonly namespace: string;
  private readonly now: () => number;
  private readonly consumed = new RecentSet(10_000);
  private readonly nonces: Map<string, number> = new Map();

  constructor(private readonly o: RegistrarOptions) {
    this.namespace = o.namespace ?? FLEET_NAMESPACE;
    this.now = o.now ?? Date.now;
  }

  /** Serves a join (`body`: parsed JSON). Throws RegistrarError; counts every outcome. */
  join(body: unknown): Promise<JoinResponse> {
    return this.counted('join', () => this.doJoin(body));
  }

  /** Serves a renewal: `raw` is the exact body the signature covers. Throws RegistrarError; counts every outcome. */
  renew(raw: Uint8Array, signature: string | undefined): Promise<RenewResponse> {
    return this.counted('renew', () => this.doRenew(raw, signature));
  }

  private async counted<T>(endpoint: Endpoint, f: () => Promise<T>): Promise<T> {
    const t0 = this.now();
    let result: Result = 'ok';
    try {
      return await f();
    } catch (err) {
      const e = isRegistrarError(err) ? err : new RegistrarError('internal', 'internal error', { cause: err });
      result = e.code;
      if (e.code === 'internal' || e.code === 'unavailable') this.o.log.error({ err, endpoint }, e.message);
      else this.o.log.info({ endpoint, code: e.code }, `refused: ${e.message}`);
      throw e;
    } finally {
      this.o.metrics.request(endpoint, result, (this.now() - t0) / 1000);
    }
  }

  private checkSkew(text: string, field: string): void {
    const skew = parseTime(text, field).getTime() - this.now();
    if (Math.abs(skew) > MAX_CLOCK_SKEW_MS) {
      throw new RegistrarError(
        'clock-skew',
        `the site's clock is ${Math.round(skew / 1000)} s off the registrar's (at most ${MAX_CLOCK_SKEW_MS / 1000} s): set the site's time (NTP) and retry`,
      );
    }
  }

  private async doJoin(body: unknown): Promise<JoinResponse> {
    const req = parseJoinRequest(body);
    let token;
    try {
      token = parseJoinToken(req.token);
    } catch {
      throw new RegistrarError('malformed', 'token: not a join token (ef1.<id>.<secret>.<cahash>)');
    }
    this.checkSkew(req.clientTime, 'clientTime');
    const record = await this.tokenRecord(token.id);
    const hash = Buffer.from(sha256Hex(token.secret), 'utf8');
    const stored = Buffer.from(record.secretSha256, 'utf8');
    if (hash.length !== stored.length || !timingSafeEqual(hash, stored)) {
      throw new RegistrarError('token-unknown', `token ${token.id}: the secret does not match; check the token was copied whole`);
    }
    if (this.now() >= record.expiration.getTime()) {
      throw new RegistrarError(
        'token-expired',
        `token ${token.id} expired at ${record.expiration.toISOString()}: create a new one (edgefarm token create ${record.node})`,
      );
    }
    if (req.node !== undefined && req.node !== record.node) {
      throw new RegistrarError('token-wrong-node', `token ${token.id} is for node ${record.node}, not ${req.node}`);
    }
    const node = record.node;
    await this.checkKeyUnused(node, req.publicKey);
    let edgeNode = await this.call(() => this.o.kube.getEdgeNode(node));
    this.checkFree(node, edgeNode);
    edgeNode ??= await this.call(() => this.o.kube.createEdgeNode(node, record.labels));
    this.checkFree(node, edgeNode);
    const creds = await this.mint(node, req.publicKey);

    const outcome = await this.call(() =>
      this.o.kube.deleteSecret(this.namespace, tokenSecretName(token.id), { uid: record.uid, resourceVersion: record.resourceVersion }),
    );
    if (outcome !== 'deleted') {
      throw new RegistrarError('token-reused', `token ${token.id} was used by another join at the same moment`);
    }
    this.consumed.add(token.id);
    await this.record(
      node,
      edgeNode,
      creds,
      (current) => {
        if (identityOf(current)) {
          throw new RegistrarError(
            'name-taken',
            `node ${node} joined with another token at the same moment; this token is spent: revoke the node and create a new token`,
          );
        }
      },
      `token ${token.id} is spent: create a new token (edgefarm token create ${node}) and join again`,
    );
    this.o.log.info(
      { node, publicKey: req.publicKey, agentPublicKey: req.agentPublicKey, token: token.id, expiresAt: creds.expiresAt },
      'node joined',
    );
    return {
      ...creds,
      caPem: this.o.caPem,
      hubLeafUrls: this.o.hubLeafUrls,
      domain: siteDomain(node),
      registrarUrl: this.o.registrarUrl,
    };
  }

  private async doRenew(raw: Uint8Array, signature: string | undefined): Promise<RenewResponse> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch {
      throw new RegistrarError('malformed', 'the body is not JSON');
    }
    const req = parseRenewRequest(parsed);
    if (!verifyBody(req.publicKey, raw, signature)) {
      throw new RegistrarError('bad-signature', 'the signature does not verify with publicKey over the body');
    }
    this.checkSkew(req.time, 'time');
    const edgeNode = await this.call(() => this.o.kube.getEdgeNode(req.node));
    if (!edgeNode) throw new RegistrarError('unknown-node', `there is no EdgeNode ${req.node}`);
    const checkKey = (current: EdgeNodeLike | undefined): void => {
      if (identityOf(current)?.publicKey !== req.publicKey) {
        throw new RegistrarError('key-mismatch', `${req.publicKey} is not the identity of node ${req.node}: join again with a new token`);
      }
    };
    checkKey(edgeNode);
    const revocations = await this.call(() => this.o.kube.getSecret(this.namespace, REVOCATIONS_SECRET));
    if (readRevocations(revocations?.data).revocations[req.publicKey] !== undefined) {
      throw new RegistrarError('revoked', `the identity ${req.publicKey} of node ${req.node} is revoked: join again with a new token`);
    }
    // only a node's own key gets this far, so nobody else can fill the nonce memory
    this.rememberNonce(req.nonce);
    const creds = await this.mint(req.node, req.publicKey);
    await this.record(req.node, edgeNode, creds, checkKey, 'retry the renewal');
    this.o.log.info({ node: req.node, publicKey: req.publicKey, expiresAt: creds.expiresAt }, 'credentials renewed');
    return creds;
  }

  private async tokenRecord(id: string): Promise<TokenRecord> {
    const secret = await this.call(() => this.o.kube.getSecret(this.namespace, tokenSecretName(id)));
    if (!secret) {
      if (this.consumed.has(id)) throw new RegistrarError('token-reused', `token ${id} was used already: a token joins one node once`);
      throw new RegistrarError('token-unknown', `token ${id} does not exist: it was used, deleted, or never created`);
    }
    try {
      return readTokenSecret(secret);
    } catch (err) {
      this.o.log.warn({ err, token: id }, 'join token Secret is malformed');
      throw new RegistrarError('token-unknown', `token ${id}: its Secret is malformed; create a new token`);
    }
  }

  /** A key is one node's: never one in the revocation list, never one another EdgeNode records (wire ids are unique). */
  private async checkKeyUnused(node: string, publicKey: string): Promise<void> {
    const revocations = await this.call(() => this.o.kube.getSecret(this.namespace, REVOCATIONS_SECRET));
    if (readRevocations(revocations?.data).revocations[publicKey] !== undefined) {
      throw new RegistrarError('revoked', `the key ${publicKey} is revoked: join with a new key`);
    }
    const holder = await this.call(() => this.o.kube.nodeWithKey(publicKey));
    if (holder !== undefined && holder !== node)
      throw new RegistrarError('name-taken', `the key ${publicKey} is node ${holder}'s: join with a new key`);
  }

  private checkFree(node: string, edgeNode: EdgeNodeLike | undefined): void {
    if (identityOf(edgeNode)) {
      throw new RegistrarError('name-taken', `node ${node} has joined already: revoke it first (edgefarm node revoke ${node})`);
    }
    if (edgeNode?.metadata?.deletionTimestamp) throw new RegistrarError('name-taken', `node ${node} is being deleted`);
  }

  private async mint(node: string, publicKey: string): Promise<Credentials> {
    const issued = new Date(Math.floor(this.now() / 1000) * 1000);
    const expires = new Date(issued.getTime() + this.o.credentialLifetimeSeconds * 1000);
    const jwt = await this.o
      .mint({
        signerSeed: this.o.signerSeed,
        accountPublicKey: this.o.sitesAccount,
        nodePublicKey: publicKey,
        name: node,
        expiresAt: expires,
        issuedAt: issued,
        now: new Date(this.now()),
      })
      .catch((err: unknown) => {
        throw new RegistrarError('internal', 'could not mint the credentials', { cause: err });
      });
    return { node, wireId: nodeWireId({ name: node, publicKey }), jwt, issuedAt: issued.toISOString(), expiresAt: expires.toISOString() };
  }

  /** Writes status.identity at the EdgeNode's resourceVersion; `check` re-validates a re-read node after a conflict. */
  private async record(
    node: string,
    read: EdgeNodeLike,
    creds: Credentials,
    check: (current: EdgeNodeLike | undefined) => void,
    whatNow: string,
  ): Promise<void> {
    const identity: NodeIdentity = { publicKey: creds.wireId, issuedAt: creds.issuedAt, expiresAt: creds.expiresAt };
    let current: EdgeNodeLike | undefined = read;
    for (let attempt = 0; attempt < PATCH_ATTEMPTS; attempt++) {
      if (!current) throw new RegistrarError('unknown-node', `EdgeNode ${node} was deleted meanwhile; ${whatNow}`);
      const rv: string = current.metadata?.resourceVersion ?? '';
      const outcome: PatchOutcome = await this.call(() => this.o.kube.patchIdentity(node, identity, rv), whatNow);
      if (outcome === 'patched') return;
      current = outcome === 'gone' ? undefined : await this.call(() => this.o.kube.getEdgeNode(node), whatNow);
      if (current) check(current);
    }
    throw new RegistrarError('unavailable', `EdgeNode ${node} kept changing; ${whatNow}`);
  }

  private rememberNonce(nonce: string): void {
    const now = this.now();
    for (const [n, until] of this.nonces) {
      if (until > now) break;
      this.nonces.delete(n);
    }
    if (this.nonces.has(nonce)) throw new RegistrarError('replay', 'this nonce was used already: a renewal is sent once');
    if (this.nonces.size >= (this.o.maxNonces ?? 100_000)) throw new RegistrarError('busy', 'too many renewals at once; retry in a minute');
    this.nonces.set(nonce, now + 2 * MAX_CLOCK_SKEW_MS);
  }

  /** A Kubernetes call; its failure is `unavailable` (with what the user should do when the token is spent). */
  private async call<T>(f: () => Promise<T>, whatNow?: string): Promise<T> {
    try {
      return await f();
    } catch (err) {
      if (isRegistrarError(err)) throw err;
      throw new RegistrarError('unavailable', `the Kubernetes API did not answer${whatNow ? `; ${whatNow}` : ', retry'}`, { cause: err });
    }
  }
}
