// Subjects and keys: build -> parse gives back the parts for any names (any Unicode, dots, wildcards, '~'), and a
// hostile subject or key is refused only with SubjectError / KeyError.
import { fc, fuzzDecoder, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { parseAckReply } from './deliveries.js';
import { KeyError, objectKey, parseObjectKey, parsePodKey, podKeyString } from './keys.js';
import {
  DESIRED_KINDS,
  RPC_OPS,
  SubjectError,
  decodeToken,
  desiredSubjects,
  encodeToken,
  eventSubjects,
  forwardEvent,
  forwardSubject,
  outboxSubjects,
  parseDesiredSubject,
  parseEventSubject,
  parseRpcSubject,
  parseStatusSubject,
  rpcSubjects,
  sourcedSequence,
  statusSubjects,
  type KeyedKind,
  type StatusKey,
} from './subjects.js';

const LONE_SURROGATE = /\p{Cs}/u;
/** Any non-empty well-formed string: what a token may carry. */
const part = fc.oneof(
  fc.string({ minLength: 1, maxLength: 24 }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }),
  hostileString().filter((s) => s.length > 0 && !LONE_SURROGATE.test(s)),
  fc.constantFrom('.', '..', '*', '>', '~', '~41', 'a.b', 'ef', ' ', 'U'.padEnd(56, 'A')),
);
const keyedKind = fc.constantFrom(...(DESIRED_KINDS.filter((k) => k !== 'node') as KeyedKind[]));
const statusKey: fc.Arbitrary<StatusKey> = fc.oneof(
  part.map((uid) => ({ kind: 'pod' as const, uid })),
  fc.constant({ kind: 'node' as const }),
  fc.constant({ kind: 'metrics' as const }),
);

const ownSubjectError = { errors: [SubjectError] };
/** Hostile subjects: noise, and real subjects with tokens swapped, cut, added or mangled. */
const subject = fc.oneof(
  hostileString(),
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          'ef',
          'desired',
          'outbox',
          'status',
          'events',
          'eventbox',
          'rpc',
          'pod',
          'node',
          'config',
          'metrics',
          'logs',
          'secret',
          '',
        ),
        hostileString(),
      ),
      { maxLength: 8 },
    )
    .map((t) => t.join('.')),
  fc
    .tuple(part, keyedKind, part, part, hostileString())
    .map(([n, k, ns, name, junk]) => `${desiredSubjects.of(n, k, { namespace: ns, name })}${junk}`),
  fc.tuple(part, fc.nat(40), hostileString()).map(([n, at, junk]) => {
    const s = statusSubjects.of(n, { kind: 'pod', uid: n });
    return s.slice(0, at % (s.length + 1)) + junk;
  }),
);

describe('tokens (fuzz)', () => {
  it('decodeToken(encodeToken(s)) is s, and the token is one safe NATS token', () => {
    fuzzProperty('token round trip', [part], (s) => {
      const t = encodeToken(s);
      return /^[A-Za-z0-9_~-]+$/.test(t) && decodeToken(t) === s;
    });
  });

  it('encodeToken refuses a string that is not well-formed Unicode (a lone surrogate) instead of colliding', () => {
    fuzzDecoder('encodeToken of any string', {
      inputs: fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 12 }).map((units) => String.fromCharCode(...units)),
      decode: encodeToken,
      errors: [SubjectError],
      check: (s, t) => decodeToken(t as string) === s,
    });
  });

  it('decodeToken of hostile tokens: only SubjectError, and what decodes is canonical', () => {
    fuzzDecoder('decodeToken hostile', {
      inputs: fc.oneof(hostileString(), fc.stringMatching(/^(?:[A-Za-z0-9_-]|~[0-9A-Fa-f]{0,3})+$/)),
      decode: decodeToken,
      ...ownSubjectError,
      check: (t, s) => encodeToken(s as string) === t,
    });
  });
});

describe('subjects (fuzz)', () => {
  it('desired: build -> parse gives back node, kind and key', () => {
    fuzzProperty('desired round trip', [part, keyedKind, part, part], (node, kind, namespace, name) => {
      const p = parseDesiredSubject(desiredSubjects.of(node, kind, { namespace, name }));
      const c = parseDesiredSubject(desiredSubjects.nodeConfig(node));
      return (
        p.node === node &&
        p.kind === kind &&
        'key' in p &&
        p.key.namespace === namespace &&
        p.key.name === name &&
        c.node === node &&
        c.kind === 'node'
      );
    });
  });

  it('status, outbox, events, rpc: build -> parse gives back the parts; forwarding keeps them', () => {
    fuzzProperty('status/events/rpc round trip', [part, statusKey, part, fc.constantFrom(...RPC_OPS)], (node, key, id, op) => {
      const out = outboxSubjects.of(node, key);
      const o = parseStatusSubject(out);
      const h = parseStatusSubject(forwardSubject(out));
      const e = parseEventSubject(eventSubjects.site(node, id));
      const f = forwardEvent(eventSubjects.site(node, id));
      const r = parseRpcSubject(rpcSubjects.of(node, op));
      return (
        o.place === 'outbox' &&
        h.place === 'status' &&
        o.node === node &&
        h.node === node &&
        JSON.stringify(o.key) === JSON.stringify(key) &&
        JSON.stringify(h.key) === JSON.stringify(key) &&
        e.node === node &&
        e.id === id &&
        e.place === 'eventbox' &&
        f.subject === eventSubjects.of(node, id) &&
        r.node === node &&
        r.op === op
      );
    });
  });

  it.each([
    ['parseDesiredSubject', parseDesiredSubject],
    ['parseStatusSubject', parseStatusSubject],
    ['parseEventSubject', parseEventSubject],
    ['parseRpcSubject', parseRpcSubject],
    ['forwardSubject', forwardSubject],
    ['forwardEvent', forwardEvent],
  ] as const)('%s of hostile subjects: only SubjectError', (label, parse) => {
    fuzzDecoder(`${label} hostile`, { inputs: subject, decode: parse, ...ownSubjectError });
  });

  it('sourcedSequence of hostile headers: a positive safe integer or undefined, never a throw', () => {
    fuzzDecoder('sourcedSequence hostile', {
      inputs: fc.option(
        fc.oneof(
          hostileString(),
          fc.tuple(hostileString(), fc.bigInt({ min: -1n, max: 2n ** 64n })).map(([a, n]) => `${a} ${n} x`),
        ),
      ),
      decode: (h) => sourcedSequence(h ?? undefined),
      check: (_h, n) => n === undefined || (Number.isSafeInteger(n) && (n as number) > 0),
    });
  });
});

describe('ack replies (fuzz)', () => {
  it('parseAckReply of hostile replies: a pending count (a safe integer) or undefined, never a throw', () => {
    const ack = fc
      .tuple(
        fc.array(fc.oneof(hostileString(), fc.nat().map(String)), { minLength: 7, maxLength: 10 }),
        fc.bigInt({ min: -1n, max: 2n ** 64n }),
        fc.option(hostileString()),
      )
      .map(([t, n, at]) => `$JS.ACK.${[...t, String(n)].join('.')}${at === null ? '' : `@${at}`}`);
    fuzzDecoder('parseAckReply hostile', {
      inputs: fc.option(fc.oneof(ack, hostileString())),
      decode: (r) => parseAckReply(r ?? undefined),
      check: (_r, out) => out === undefined || Number.isSafeInteger((out as { pending: number }).pending),
    });
  });
});

describe('keys (fuzz)', () => {
  const keyPart = part.filter((s) => !s.includes('/'));
  it('pod and object keys: build -> parse gives back the parts', () => {
    fuzzProperty(
      'keys round trip',
      [fc.constantFrom('configmap' as const, 'secret' as const, 'token' as const), keyPart, keyPart],
      (kind, namespace, name) => {
        const p = parsePodKey(podKeyString({ namespace, name }));
        const o = parseObjectKey(objectKey(kind, { namespace, name }));
        return p.namespace === namespace && p.name === name && o.kind === kind && o.key.namespace === namespace && o.key.name === name;
      },
    );
  });

  it('hostile keys: only KeyError', () => {
    const key = fc.oneof(
      hostileString(),
      fc.array(fc.oneof(hostileString(), fc.constantFrom('secret', 'configmap', 'token', '')), { maxLength: 4 }).map((a) => a.join('/')),
    );
    fuzzDecoder('keys hostile', {
      inputs: key,
      decode: (k) =>
        [parsePodKey.bind(null, k), parseObjectKey.bind(null, k)].map((f) => {
          try {
            return f();
          } catch (err) {
            if (err instanceof KeyError) return err;
            throw err;
          }
        }),
    });
  });
});
