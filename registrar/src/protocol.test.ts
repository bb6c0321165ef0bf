import fc from 'fast-check';
import {
  formatJoinToken,
  isFleetFormatError,
  newJoinToken,
  parseJoinToken,
  readRevocations,
  readTokenSecret,
  joinTokenSecret,
  revocationEntry,
  FleetFormatError,
  type SecretLike,
} from './fleet.js';
import { RegistrarError, parseErrorBody, parseJoinRequest, parseJoinResponse, parseRenewRequest } from './protocol.js';
import { signBody, verifyBody } from './signing.js';
import { userKeys } from './registrar.fixtures.js';

const malformedOnly = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(RegistrarError);
    expect((err as RegistrarError).code).toBe('malformed');
  }
};

describe('request validation (hostile input)', () => {
  const key = userKeys().publicKey;
  const valid = { token: 'ef1.abc123.' + 'a'.repeat(32) + '.' + 'f'.repeat(64), publicKey: key, clientTime: '2026-01-10T12:00:00Z' };

  it('accepts a valid join request and keeps only known fields', () => {
    expect(parseJoinRequest(valid)).toEqual(valid);
    expect(parseJoinRequest({ ...valid, node: 'gw-1', agentPublicKey: userKeys().publicKey }).node).toBe('gw-1');
  });

  it('refuses anything else with malformed, never another error', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => malformedOnly(() => parseJoinRequest(v))));
    fc.assert(fc.property(fc.jsonValue(), (v) => malformedOnly(() => parseRenewRequest(v))));
    fc.assert(
      fc.property(fc.record({ token: fc.string(), publicKey: fc.string(), clientTime: fc.string(), node: fc.string() }), (v) =>
        malformedOnly(() => parseJoinRequest(v)),
      ),
    );
  });

  it('refuses the edges: unknown fields, oversized strings, the agent key equal to the node key, bad times and names', () => {
    const bad = [
      { ...valid, extra: 1 },
      { ...valid, token: 'x'.repeat(129) },
      { ...valid, agentPublicKey: key },
      { ...valid, clientTime: '2026-01-10 12:00' },
      { ...valid, node: 'Not_A_Name' },
      { ...valid, node: 'a'.repeat(254) },
      { ...valid, publicKey: key.replace(/^U/, 'A') },
      { ...valid, ['__proto__']: {} },
    ];
    for (const b of bad) expect(() => parseJoinRequest(JSON.parse(JSON.stringify(b)))).toThrow(RegistrarError);
    expect(() => parseRenewRequest({ node: 'gw-1', publicKey: key, time: '2026-01-10T12:00:00Z', nonce: 'short' })).toThrow('nonce');
  });

  it('refuses a registrar answer that is not one (the site trusts nothing it did not check)', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => malformedOnly(() => parseJoinResponse(v))));
    const ok = {
      node: 'gw-1',
      wireId: key,
      jwt: 'a.b.c',
      issuedAt: '2026-01-10T12:00:00Z',
      expiresAt: '2026-01-17T12:00:00Z',
      caPem: 'pem',
      hubLeafUrls: ['tls://h:7422'],
      domain: 'site-gw-1',
      registrarUrl: 'https://r:8443',
    };
    expect(parseJoinResponse(ok)).toEqual(ok);
    expect(() => parseJoinResponse({ ...ok, hubLeafUrls: ['tls://h:7422"\ninclude /etc/passwd'] })).toThrow('hubLeafUrls');
    expect(() => parseJoinResponse({ ...ok, registrarUrl: 'http://r' })).toThrow('registrarUrl');
  });
});

describe('join tokens and the fleet objects', () => {
  it('refuses a Secret that is not an object, or whose name is not a string, with FleetFormatError (fleet.fuzz.test.ts)', () => {
    expect(() => readTokenSecret(null as unknown as SecretLike)).toThrow(FleetFormatError);
    expect(() => readTokenSecret({ metadata: { name: 5 as unknown as string } })).toThrow(FleetFormatError);
  });

  it('round-trips tokens and refuses every other string without echoing it', () => {
    const t = newJoinToken('0'.repeat(64));
    expect(t.id).toMatch(/^[a-z0-9]{6}$/);
    expect(t.secret).toMatch(/^[a-z0-9]{32}$/);
    expect(parseJoinToken(formatJoinToken(t))).toEqual(t);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parseJoinToken(s);
        } catch (err) {
          expect(isFleetFormatError(err)).toBe(true);
          expect((err as Error).message).not.toContain(s.length > 3 ? s : '\u0000never');
        }
      }),
    );
  });

  it('reads back the token Secret it builds, and refuses one whose label and data disagree', () => {
    const t = newJoinToken('0'.repeat(64));
    const s = joinTokenSecret(t, 'gw-1', new Date('2026-01-10T13:00:00Z'));
    expect(s.data?.['secret-sha256']).toBeDefined();
    expect(JSON.stringify(s)).not.toContain(t.secret);
    const r = readTokenSecret({ ...s, metadata: { ...s.metadata, uid: 'u', resourceVersion: '1' } });
    expect(r).toMatchObject({ id: t.id, node: 'gw-1', uid: 'u', resourceVersion: '1' });
    expect(() => readTokenSecret({ ...s, metadata: { ...s.metadata, labels: { 'edgefarm.io/node': 'gw-2' } } })).toThrow('differs');
    expect(() => joinTokenSecret(t, 'Bad Name', new Date())).toThrow('node');
    expect(() => joinTokenSecret(t, 'gw-1', new Date(), undefined, { 'bad key!': 'x' })).toThrow('labels');
    const labelled = joinTokenSecret(t, 'gw-1', new Date('2026-01-10T13:00:00Z'), undefined, { zone: 'west' });
    expect(readTokenSecret(labelled).labels).toEqual({ zone: 'west' });
    expect(() => readTokenSecret({ ...labelled, data: { ...labelled.data, labels: Buffer.from('[1]').toString('base64') } })).toThrow(
      'labels',
    );
  });

  it('reads the revocation list, leaving out malformed entries', () => {
    const k = userKeys().publicKey;
    const data = {
      ...revocationEntry(k, new Date(1_700_000_000_000)),
      junk: 'MTIz',
      [userKeys().publicKey]: Buffer.from('soon').toString('base64'),
    };
    const r = readRevocations(data);
    expect(r.revocations).toEqual({ [k]: 1_700_000_000 });
    expect(r.malformed).toHaveLength(2);
  });
});

describe('renewal signatures', () => {
  it('verify only with the signing key over the same bytes', () => {
    const k = userKeys();
    const body = Buffer.from('{"a":1}');
    const sig = signBody(k.seed, body);
    expect(verifyBody(k.publicKey, body, sig)).toBe(true);
    expect(verifyBody(k.publicKey, Buffer.from('{"a":2}'), sig)).toBe(false);
    expect(verifyBody(userKeys().publicKey, body, sig)).toBe(false);
    fc.assert(fc.property(fc.string(), (s) => expect(verifyBody(k.publicKey, body, s)).toBe(false)));
  });
});

describe('canonical spellings (found by protocol.fuzz.test.ts)', () => {
  it('verifyBody refuses a public key with characters appended (the nkeys library drops them) and a non-canonical signature', () => {
    const k = userKeys();
    const body = new TextEncoder().encode('{"node":"gw-1"}');
    const sig = signBody(k.seed, body);
    expect(verifyBody(k.publicKey, body, sig)).toBe(true);
    expect(verifyBody(`${k.publicKey}A`, body, sig)).toBe(false);
    // the last of 86 characters carries 4 unused bits: another letter decodes to the same 64 bytes
    const last = sig[85]!;
    const alias = [...'AEIMQUYcgkosw048'].find(
      (c) => c !== last && Buffer.from(sig.slice(0, 85) + c, 'base64url').equals(Buffer.from(sig, 'base64url')),
    );
    if (alias) expect(verifyBody(k.publicKey, body, sig.slice(0, 85) + alias)).toBe(false);
    expect(verifyBody(k.publicKey, body, `${sig}A`)).toBe(false);
  });

  it('parseErrorBody names only codes of the protocol (not Object.prototype members)', () => {
    for (const code of ['hasOwnProperty', 'toString', 'constructor', '__proto__']) {
      expect(parseErrorBody({ error: { code, message: 'x' } })).toBeUndefined();
    }
    expect(parseErrorBody({ error: { code: 'revoked', message: 'x' } })).toEqual({ code: 'revoked', message: 'x' });
  });
});
