// Fuzzing every decoder of the registration protocol: the join and renew request bodies (as the validators see
// them, and whole, as raw bytes through the Registrar), the registrar's answers the site checks, error bodies, and the
// renewal's signature header. Invariants: only RegistrarError (`malformed` for a body that is not a request), no
// hang, valid requests round-trip, a body signed by its key verifies and nothing else does.
import { fc, fuzzAsyncProperty, fuzzDecoder, fuzzProperty, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import {
  ERROR_STATUS,
  RegistrarError,
  parseErrorBody,
  parseJoinRequest,
  parseJoinResponse,
  parseRenewRequest,
  parseRenewResponse,
} from './protocol.js';
import { registrarBed, userKeys } from './registrar.fixtures.js';
import { signBody, verifyBody } from './signing.js';

const KEY = userKeys();
const OTHER = userKeys();
const enc = new TextEncoder();
const dec = new TextDecoder();

const time = fc.oneof(
  fc
    .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.constantFrom('2026-01-10T12:00:00Z', '2026-01-10T12:00:00.123456789+01:00', '9999-99-99T99:99:99Z', '2026-02-30T00:00:00Z'),
  hostileString(),
);
const field = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<unknown> => fc.oneof(a, fc.jsonValue(), hostileString());
const token = fc.oneof(
  fc.constant(`ef1.abc123.${'a'.repeat(32)}.${'f'.repeat(64)}`),
  hostileString(),
  fc.string({ minLength: 120, maxLength: 140 }),
);
const node = fc.oneof(fc.constantFrom('gw-1', 'a.b', 'a'.repeat(253), 'a'.repeat(254), 'GW', '-a', 'a..b'), hostileString());
const key = fc.constantFrom(KEY.publicKey, OTHER.publicKey, KEY.publicKey.replace(/^U/, 'A'), KEY.seed, `${KEY.publicKey}A`);
const nonce = fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{16,64}$/), hostileString());

const joinRequest = fc.record(
  {
    token: field(token),
    publicKey: field(key),
    agentPublicKey: field(key),
    node: field(node),
    clientTime: field(time),
    extra: fc.jsonValue(),
  },
  { requiredKeys: [] },
);
const renewRequest = fc.record(
  { node: field(node), publicKey: field(key), time: field(time), nonce: field(nonce), extra: fc.jsonValue() },
  {
    requiredKeys: [],
  },
);
const creds = {
  node: field(node),
  wireId: field(key),
  jwt: field(fc.constantFrom('a.b.c', 'x'.repeat(9000))),
  issuedAt: field(time),
  expiresAt: field(time),
};
const joinResponse = fc.record(
  {
    ...creds,
    caPem: field(fc.constantFrom('pem', 'x'.repeat(17_000))),
    hubLeafUrls: fc.oneof(
      fc.array(fc.oneof(fc.constantFrom('tls://h:7422', 'tls://h:7422"\ninclude x'), hostileString()), { maxLength: 20 }),
      fc.jsonValue(),
    ),
    domain: field(fc.constant('site-gw-1')),
    registrarUrl: field(fc.constantFrom('https://r:8443', 'http://r', 'https://r x')),
  },
  { requiredKeys: [] },
);
const isMalformed = (err: unknown): boolean => err instanceof RegistrarError && err.code === 'malformed';

describe('registration protocol (fuzz)', () => {
  it('parseJoinRequest: only `malformed`, no hang, round trip', () => {
    fuzzDecoder('registrar.parseJoinRequest', {
      inputs: fc.oneof(joinRequest, fc.jsonValue() as fc.Arbitrary<unknown>),
      decode: parseJoinRequest,
      isExpected: isMalformed,
      check: (_in, out) => expect(parseJoinRequest(JSON.parse(JSON.stringify(out)))).toEqual(out),
    });
  });

  it('parseRenewRequest: only `malformed`, no hang, round trip', () => {
    fuzzDecoder('registrar.parseRenewRequest', {
      inputs: fc.oneof(renewRequest, fc.jsonValue() as fc.Arbitrary<unknown>),
      decode: parseRenewRequest,
      isExpected: isMalformed,
      check: (_in, out) => expect(parseRenewRequest(JSON.parse(JSON.stringify(out)))).toEqual(out),
    });
  });

  it("parseJoinResponse and parseRenewResponse (the site's checks of the answers): only `malformed`, no hang", () => {
    fuzzDecoder('registrar.parseJoinResponse', {
      inputs: fc.oneof(joinResponse, fc.jsonValue() as fc.Arbitrary<unknown>),
      decode: parseJoinResponse,
      isExpected: isMalformed,
      check: (_in, out) => expect(parseJoinResponse(JSON.parse(JSON.stringify(out)))).toEqual(out),
    });
    fuzzDecoder('registrar.parseRenewResponse', {
      inputs: fc.oneof(fc.record(creds, { requiredKeys: [] }), fc.jsonValue() as fc.Arbitrary<unknown>),
      decode: parseRenewResponse,
      isExpected: isMalformed,
    });
  });

  it('parseErrorBody: never throws, and names only codes of the protocol', () => {
    const code = fc.oneof(
      fc.constantFrom(...Object.keys(ERROR_STATUS), '__proto__', 'toString', 'constructor', 'hasOwnProperty'),
      hostileString(),
    );
    const body = fc.oneof(
      fc.record({
        error: fc.oneof(fc.record({ code, message: fc.oneof(fc.string({ maxLength: 2000 }), fc.jsonValue()) }), fc.jsonValue()),
      }),
      fc.jsonValue(),
    );
    fuzzDecoder('registrar.parseErrorBody', {
      inputs: body,
      decode: parseErrorBody,
      check: (_in, out) => {
        const e = out as ReturnType<typeof parseErrorBody>;
        return e === undefined || (Object.hasOwn(ERROR_STATUS, e.code) && e.message.length <= 1000);
      },
    });
  });

  it('verifyBody: never throws; true only for the body its key signed', () => {
    // signing costs ~50 ms under jest: a pool signed once, then bodies, signatures and keys mutated from it
    const pool = ['{"node":"gw-1"}', ' {"node":"gw-2","nonce":"abcdefghijklmnop"} ', '{}', ''].map((t) => {
      const b = enc.encode(t);
      return { b, s: signBody(KEY.seed, b) };
    });
    const signed = fc.constantFrom(...pool);
    const body = fc.oneof(
      signed.map((p) => p.b),
      mutatedBytes(signed.map((p) => p.b)),
    );
    const sig = fc.oneof(
      signed.map((p) => p.s),
      fc.tuple(signed, fc.nat({ max: 85 }), fc.constantFrom(...'AQgw-_9')).map(([p, at, c]) => p.s.slice(0, at) + c + p.s.slice(at + 1)),
      signed.map((p) => p.s.slice(0, 85)),
      fc.stringMatching(/^[A-Za-z0-9_-]{80,100}$/),
      hostileString(),
      fc.constant(undefined),
    );
    fuzzProperty('registrar.verifyBody', [body, sig, key], (b, s, k) => {
      const ok = verifyBody(k, b, s);
      if (typeof ok !== 'boolean') return false;
      if (ok) return k === KEY.publicKey && pool.some((p) => p.s === s && Buffer.from(p.b).equals(Buffer.from(b)));
      return !(k === KEY.publicKey && pool.some((p) => p.s === s && Buffer.from(p.b).equals(Buffer.from(b))));
    });
  });

  it('whole bodies through the Registrar: a join or a renewal of hostile bytes is refused with a RegistrarError, nothing else', async () => {
    const bed = registrarBed();
    const jsonBytes = fc.oneof(joinRequest, renewRequest).map((o) => enc.encode(JSON.stringify(o)));
    const raw = mutatedBytes(jsonBytes);
    await fuzzAsyncProperty(
      'registrar.Registrar bodies',
      [raw, fc.option(fc.oneof(hostileString(), fc.stringMatching(/^[A-Za-z0-9_-]{86}$/)))],
      async (bytes, sig) => {
        let parsed: unknown;
        try {
          parsed = JSON.parse(dec.decode(bytes));
        } catch {
          parsed = dec.decode(bytes);
        }
        for (const p of [bed.registrar.join(parsed), bed.registrar.renew(bytes, sig ?? undefined)]) {
          const err = await p.then(
            () => undefined,
            (e: unknown) => e,
          );
          if (!(err instanceof RegistrarError) || err.code === 'internal') return false;
        }
        return true;
      },
    );
  });
});
