// Fuzzing the fleet's layout readers: the join token (`ef1.<id>.<secret>.<cahash>`, what a joining site sends and the
// CLI reads), a join-token Secret's data, the revocation list, labels. Invariants: only FleetFormatError, no hang,
// tokens round-trip, a Secret that joinTokenSecret wrote reads back.
import { fc, fuzzDecoder, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import {
  FleetFormatError,
  checkLabels,
  formatJoinToken,
  joinTokenSecret,
  newJoinToken,
  parseJoinToken,
  readRevocations,
  readTokenSecret,
  type SecretLike,
} from './fleet.js';

const caHash = fc.stringMatching(/^[0-9a-f]{64}$/);
const token = caHash.map((h) => formatJoinToken(newJoinToken(h)));
const tokenText = fc.oneof(
  hostileString('ef1.abcdefz0123456789'),
  token,
  fc
    .tuple(token, fc.nat(), fc.string({ maxLength: 3 }))
    .map(([t, at, s]) => t.slice(0, at % (t.length + 1)) + s + t.slice(at % (t.length + 1))),
  fc.tuple(token, fc.nat()).map(([t, cut]) => t.slice(0, cut % t.length)),
  token.map((t) => t.toUpperCase()),
  token.map((t) => `${t}\n`),
  fc.string({ minLength: 100, maxLength: 10_000 }),
);
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const dataValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  hostileString().map(b64),
  fc.jsonValue().map((v) => b64(JSON.stringify(v))),
  fc.constantFrom(b64('gw-1'), b64('2030-01-01T00:00:00Z'), b64('a'.repeat(64)), b64('{"a":"b"}'), b64('[1]'), b64('null')),
);
const secret: fc.Arbitrary<SecretLike> = fc.oneof(
  fc.record(
    {
      metadata: fc.record(
        { name: fc.oneof(fc.constantFrom('edgefarm-join-abc123'), hostileString()), labels: fc.dictionary(fc.string(), fc.string()) },
        { requiredKeys: [] },
      ),
      type: fc.constantFrom('edgefarm.io/join-token', 'Opaque'),
      data: fc.dictionary(fc.constantFrom('node', 'secret-sha256', 'expiration', 'labels', 'x'), dataValue),
    },
    { requiredKeys: [] },
  ),
  fc
    .tuple(token, fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.stringMatching(/^[a-z0-9]{0,8}$/), { maxKeys: 4 }))
    .map(([t, labels]) => joinTokenSecret(parseJoinToken(t), 'gw-1', new Date('2030-01-01T00:00:00Z'), 'ns', labels)),
  fc.jsonValue().map((v) => v as SecretLike),
);

describe('fleet layout (fuzz)', () => {
  it('parseJoinToken: only FleetFormatError, no hang, round trip', () => {
    fuzzDecoder('registrar.parseJoinToken', {
      inputs: tokenText,
      decode: parseJoinToken,
      errors: [FleetFormatError],
      check: (input, out) => formatJoinToken(out as ReturnType<typeof parseJoinToken>) === input,
    });
  });

  it('readTokenSecret: only FleetFormatError, no hang; what joinTokenSecret wrote reads back', () => {
    fuzzDecoder('registrar.readTokenSecret', {
      inputs: secret,
      decode: (s) =>
        readTokenSecret(s && typeof s === 'object' ? { ...s, metadata: { ...s.metadata, uid: 'u', resourceVersion: '1' } } : s),
      errors: [FleetFormatError],
      check: (_in, out) => {
        const r = out as ReturnType<typeof readTokenSecret>;
        return /^[0-9a-f]{64}$/.test(r.secretSha256) && !Number.isNaN(r.expiration.getTime()) && Object.keys(r.labels).length <= 32;
      },
    });
  });

  it('readRevocations never throws and keeps only user keys with whole seconds', () => {
    fuzzProperty(
      'registrar.readRevocations',
      [fc.dictionary(fc.oneof(hostileString(), fc.constant('UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4')), dataValue)],
      (data) => {
        const { revocations, malformed } = readRevocations(data);
        return (
          Object.keys(revocations).length + malformed.length === Object.keys(data).length &&
          Object.values(revocations).every((s) => Number.isSafeInteger(s))
        );
      },
    );
  });

  it('checkLabels: only FleetFormatError, no hang', () => {
    fuzzDecoder('registrar.checkLabels', {
      inputs: fc.dictionary(hostileString(), fc.oneof(hostileString(), fc.jsonValue() as fc.Arbitrary<unknown>)) as fc.Arbitrary<
        Record<string, string>
      >,
      decode: checkLabels,
      errors: [FleetFormatError],
    });
  });
});
