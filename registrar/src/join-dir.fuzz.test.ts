// Fuzzing node.json, the file the agent's renewer reads at every start (parseNodeJson): hostile text, mutated valid
// files and arbitrary JSON. Invariants: only JoinDirError, no hang, a valid file round-trips, what it accepts is bounded.
import { fc, fuzzDecoder, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import { JoinDirError, parseNodeJson, type NodeJson } from './join-dir.js';

const VALID: NodeJson = {
  node: 'gw-1',
  wireId: 'UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4',
  registrarUrl: 'https://registrar.example:8443',
  hubLeafUrls: ['tls://hub-0.example:7422'],
  domain: 'site-gw-1',
  issuedAt: '2026-01-01T00:00:00Z',
  expiresAt: '2026-01-08T00:00:00Z',
};
const valid = fc
  .record({
    node: fc.constantFrom('gw-1', 'a', 'site.b-2'),
    hubLeafUrls: fc.array(fc.constantFrom('tls://hub-0:7422', 'tls://[::1]:7422'), { minLength: 1, maxLength: 4 }),
    domain: fc.constantFrom('site-gw-1', 'x'),
  })
  .map((o) => ({ ...VALID, ...o }));
const text = fc.oneof(
  hostileString(),
  valid.map((o) => JSON.stringify(o)),
  mutatedBytes(valid.map((o) => new TextEncoder().encode(JSON.stringify(o)))).map((b) => new TextDecoder().decode(b)),
  fc.json(),
  valid.chain((o) => fc.tuple(fc.constantFrom(...Object.keys(o)), fc.jsonValue()).map(([k, v]) => JSON.stringify({ ...o, [k]: v }))),
);

describe('node.json (fuzz)', () => {
  it('parseNodeJson: only JoinDirError, no hang, valid files round-trip, bounded output', () => {
    fuzzDecoder('registrar.parseNodeJson', {
      inputs: text,
      decode: parseNodeJson,
      errors: [JoinDirError],
      check: (input, out) => {
        const o = out as NodeJson;
        if (o.hubLeafUrls.length < 1 || o.hubLeafUrls.length > 16 || o.domain.length > 300) return false;
        expect(parseNodeJson(JSON.stringify(o))).toEqual(o);
        return input.length > 0;
      },
    });
  });
});
