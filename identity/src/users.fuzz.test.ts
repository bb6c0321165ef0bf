// Fuzzing the credentials file (parseCreds, what the site's nats-server and the agent's renewer read; formatCreds,
// what join and renewal write). Invariants: only IdentityInputError, no hang (whitespace floods included: the
// parser is regex-based), formatCreds -> parseCreds round-trips.
import { createUser } from '@nats-io/nkeys';
import { fc, fuzzDecoder, fuzzProperty, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import { IdentityInputError } from './errors.js';
import { formatCreds, parseCreds } from './users.js';

const SEED = new TextDecoder().decode(createUser().getSeed());
const jwt = fc.tuple(...[0, 1, 2].map(() => fc.stringMatching(/^[A-Za-z0-9_-]{1,200}$/))).map((p) => p.join('.'));
// one formatted file, its JWT swapped: formatCreds is fuzzed below
const TEMPLATE = formatCreds('a.b.c', SEED);
const valid = jwt.map((j) => TEMPLATE.replace('a.b.c', j));
const enc = new TextEncoder();
const dec = new TextDecoder();
const flood = fc
  .tuple(
    fc.constantFrom('-----BEGIN NATS USER JWT-----', '-----BEGIN USER NKEY SEED-----', ''),
    fc.constantFrom(' ', '\n', '\t', ' \n', '\r\n'),
    fc.integer({ min: 1000, max: 100_000 }),
    fc.constantFrom('', 'x', 'a.b.c\n'),
  )
  .map(([head, ws, n, tail]) => head + ws.repeat(n) + tail);

describe('credentials file (fuzz)', () => {
  it('parseCreds: only IdentityInputError, no hang', () => {
    fuzzDecoder('identity.parseCreds', {
      inputs: fc.oneof(
        hostileString(),
        valid,
        mutatedBytes(valid.map((t) => enc.encode(t))).map((b) => dec.decode(b)),
        valid.map((t) => t.replace(/\n/g, '\r\n')),
        flood,
      ),
      decode: parseCreds,
      errors: [IdentityInputError],
      check: (_in, out) => {
        const c = out as { jwt: string; seed: string };
        expect(parseCreds(formatCreds(c.jwt, c.seed))).toEqual(c);
      },
    });
  });

  it('formatCreds then parseCreds returns the JWT and the seed', () => {
    fuzzProperty('identity.creds round trip', [jwt], (j) => {
      const c = parseCreds(formatCreds(j, SEED));
      return c.jwt === j && c.seed === SEED;
    });
  });

  it('formatCreds: only IdentityInputError for a JWT or seed that is not one', () => {
    fuzzDecoder('identity.formatCreds', {
      inputs: fc.tuple(
        fc.oneof(
          jwt,
          hostileString(),
          jwt.map((j) => `${j}\n-----BEGIN USER NKEY SEED-----`),
        ),
        fc.oneof(fc.constant(SEED), hostileString()),
      ),
      decode: ([j, s]) => formatCreds(j, s),
      errors: [IdentityInputError],
      check: ([j, s], out) => expect(parseCreds(out as string)).toEqual({ jwt: j, seed: s }),
    });
  });
});
