/**
 * Fixtures for the registrar's unit tests: keys made in memory, a Registrar over a
 * {@link FakeRegistrarKube}, a token Secret for a node. Type-checked and linted, not built into dist.
 */
import { createAccount, createUser } from '@nats-io/nkeys';
import { pino } from 'pino';
import { FLEET_NAMESPACE, formatJoinToken, joinTokenSecret, newJoinToken, type JoinToken } from './fleet.js';
import { mintNodeUser } from '@edgefarm/identity';
import { FakeRegistrarKube } from './kube-fake.js';
import { RegistrarMetrics } from './metrics.js';
import { Registrar, type RegistrarOptions } from './registrar.js';

const td = new TextDecoder();

export const CA_HASH = 'ab'.repeat(32);

export function userKeys(): { seed: string; publicKey: string } {
  const kp = createUser();
  return { seed: td.decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

// Keys cost a few ms each in node and ~50 ms under jest (tweetnacl in the test's vm context): the beds of a test file
// share them. Each bed is a registrar of its own, so a key one bed saw is new to the next.
const sharedUserKeys: { seed: string; publicKey: string }[] = [];
let sharedSigner: { seed: string; publicKey: string; sitesAccount: string } | undefined;

function signerKeys(): { seed: string; publicKey: string; sitesAccount: string } {
  if (!sharedSigner) {
    const signer = createAccount();
    sharedSigner = { seed: td.decode(signer.getSeed()), publicKey: signer.getPublicKey(), sitesAccount: createAccount().getPublicKey() };
  }
  return sharedSigner;
}

export interface Bed {
  kube: FakeRegistrarKube;
  registrar: Registrar;
  metrics: RegistrarMetrics;
  clock: { now: number };
  sitesAccount: string;
  signerPublicKey: string;
  /** Puts a token Secret for `node`, valid for `ttlMs`; returns the token string and its parts. */
  token(node: string, ttlMs?: number, labels?: Record<string, string>): { text: string; token: JoinToken };
  /** A user key this bed has not handed out before (the beds of a test file hand out the same ones, in order). */
  userKeys(): { seed: string; publicKey: string };
}

export function registrarBed(overrides: Partial<RegistrarOptions> = {}): Bed {
  const kube = new FakeRegistrarKube();
  const metrics = new RegistrarMetrics();
  const clock = { now: Date.parse('2026-01-10T12:00:00Z') };
  const signer = signerKeys();
  const sitesAccount = signer.sitesAccount;
  let handedOut = 0;
  const registrar = new Registrar({
    kube,
    mint: mintNodeUser,
    signerSeed: signer.seed,
    sitesAccount,
    caPem: '-----BEGIN CERTIFICATE-----\nfleet\n-----END CERTIFICATE-----\n',
    hubLeafUrls: ['tls://hub.example:7422'],
    registrarUrl: 'https://registrar.example:8443',
    credentialLifetimeSeconds: 7 * 24 * 3600,
    metrics,
    log: pino({ level: 'silent' }),
    now: () => clock.now,
    ...overrides,
  });
  return {
    kube,
    registrar,
    metrics,
    clock,
    sitesAccount,
    signerPublicKey: signer.publicKey,
    token(node, ttlMs = 3600_000, labels = {}) {
      const token = newJoinToken(CA_HASH);
      kube.putSecret(FLEET_NAMESPACE, joinTokenSecret(token, node, new Date(clock.now + ttlMs), FLEET_NAMESPACE, labels));
      return { text: formatJoinToken(token), token };
    },
    userKeys() {
      if (handedOut === sharedUserKeys.length) sharedUserKeys.push(userKeys());
      return sharedUserKeys[handedOut++]!;
    },
  };
}
