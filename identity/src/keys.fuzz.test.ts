// Fuzzing the value checks of identity/keys.ts: every value that goes into a JWT or a server configuration passes
// one of them. Invariants: only IdentityInputError, no hang, and what a check accepts is what it promises.
import { createAccount, createOperator, createUser } from '@nats-io/nkeys';
import { fc, fuzzDecoder, hostileString } from '@edgefarm/testing/fuzz';
import { IdentityInputError } from './errors.js';
import { confString, hostPort, nodeName, publicKey, seedKeyPair, serverUrl, type KeyKind } from './keys.js';

const td = new TextDecoder();
const pairs = [createUser(), createAccount(), createOperator()];
const keyish = fc.oneof(
  fc.constantFrom(...pairs.map((p) => p.getPublicKey()), ...pairs.map((p) => td.decode(p.getSeed()))),
  fc
    .constantFrom(...pairs.map((p) => p.getPublicKey()))
    .chain((k) =>
      fc
        .tuple(fc.nat({ max: 55 }), fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'))
        .map(([at, c]) => k.slice(0, at) + c + k.slice(at + 1)),
    ),
  fc.stringMatching(/^[OAUS][A-Z2-7]{55,57}$/),
  hostileString(),
  fc.jsonValue(),
);
const kind = fc.constantFrom<KeyKind>('operator', 'account', 'user');
const any = fc.oneof(hostileString(), fc.jsonValue() as fc.Arbitrary<unknown>, fc.string({ minLength: 4000, maxLength: 5000 }));

describe('identity value checks (fuzz)', () => {
  it('publicKey: only IdentityInputError, no hang; accepts only 56 characters of its kind', () => {
    fuzzDecoder('identity.publicKey', {
      inputs: fc.tuple(kind, keyish),
      decode: ([k, v]) => publicKey(k, v, 'f'),
      errors: [IdentityInputError],
      check: ([k], out) => typeof out === 'string' && out.length === 56 && out[0] === { operator: 'O', account: 'A', user: 'U' }[k],
    });
  });

  it('seedKeyPair: only IdentityInputError, no hang', () => {
    fuzzDecoder('identity.seedKeyPair', {
      inputs: fc.tuple(kind, keyish),
      decode: ([k, v]) => seedKeyPair(k, v, 'f').getPublicKey(),
      errors: [IdentityInputError],
    });
  });

  it('nodeName, confString, hostPort, serverUrl: only IdentityInputError, no hang', () => {
    fuzzDecoder('identity.nodeName', {
      inputs: any,
      decode: (v) => nodeName(v),
      errors: [IdentityInputError],
      check: (_i, o) => (o as string).length <= 253,
    });
    fuzzDecoder('identity.confString', {
      inputs: any,
      decode: (v) => confString(v, 'f'),
      errors: [IdentityInputError],
      check: (_i, o) => !/["\\$\n]/.test(o as string),
    });
    const addr = fc.oneof(
      any,
      fc
        .tuple(fc.constantFrom('h', '[::1]', 'a'.repeat(300), '1.2.3.4', '[' + ':'.repeat(60) + ']'), fc.integer({ min: -1, max: 70000 }))
        .map(([h, p]) => `${h}:${p}`),
    );
    fuzzDecoder('identity.hostPort', {
      inputs: addr,
      decode: (v) => hostPort(v, 'f'),
      errors: [IdentityInputError],
      check: (_i, o) => (o as { port: number }).port >= 1 && (o as { port: number }).port <= 65535,
    });
    fuzzDecoder('identity.serverUrl', {
      inputs: fc.oneof(
        addr,
        addr.map((a) => `tls://${String(a)}`),
        addr.map((a) => `nats-route://${String(a)}`),
      ),
      decode: (v) => serverUrl(v, ['tls', 'nats-route'], 'f'),
      errors: [IdentityInputError],
    });
  });
});
