// $(VAR) expansion against a reference: Go's expansion.Expand transcribed line by line (quadratic, fine on small
// inputs), over strings made of the characters that matter ($, parentheses, names known and unknown).
import { fc, fuzzDecoder, fuzzProperty, fuzzSettings, hostileString } from '@edgefarm/testing/fuzz';
import { expand } from './env.js';

/** k8s.io/kubernetes third_party/forked/golang/expansion Expand, as written in Go (on UTF-16 units). */
function referenceExpand(input: string, mapping: (name: string) => string): string {
  let buf = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] === '$' && cursor + 1 < input.length) {
      buf += input.slice(checkpoint, cursor);
      const [read, isVar, advance] = tryReadVariableName(input.slice(cursor + 1));
      buf += isVar ? mapping(read) : read;
      cursor += advance;
      checkpoint = cursor + 1;
    }
  }
  return buf + input.slice(checkpoint);
}

function tryReadVariableName(input: string): [string, boolean, number] {
  switch (input[0]) {
    case '$':
      return [input.slice(0, 1), false, 1];
    case '(':
      for (let i = 1; i < input.length; i++) if (input[i] === ')') return [input.slice(1, i), true, i + 1];
      return ['$(', false, 1];
    default:
      return [`$${input[0]}`, false, 1];
  }
}

const VARS: Record<string, string> = { A: 'a', B: '$(A)', EMPTY: '', 'X.Y': 'xy', '(': 'paren' };
const lookup = (name: string): string | undefined => (Object.hasOwn(VARS, name) ? VARS[name] : undefined);
// Kubernetes' mapping function: unknown names come back as written (MappingFuncFor's `$(name)`).
const mapping = (name: string): string => lookup(name) ?? `$(${name})`;

const pieces = fc.constantFrom(
  '$',
  '$$',
  '$(',
  ')',
  '(',
  'A',
  'B',
  'EMPTY',
  'X.Y',
  'x',
  ' ',
  '$(A)',
  '$(B)',
  '$()',
  '\u00e9',
  '\ud83d\ude00',
);
const small = fc.oneof(
  fc.array(pieces, { maxLength: 24 }).map((a) => a.join('')),
  hostileString(),
);

describe('expand (fuzz)', () => {
  it('equals the reference (Go expansion.Expand) on small inputs', () => {
    fuzzProperty('expand equals Go Expand', [small], (input) => expand(input, lookup) === referenceExpand(input, mapping));
  });

  it('is linear on big inputs: a few steps per character, within the hang bound', () => {
    const big = fc
      .tuple(fc.array(pieces, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1000, max: 60_000 }))
      .map(([unit, times]) => unit.join('').repeat(times));
    fuzzDecoder('expand of big inputs', {
      inputs: big,
      decode: (input) => {
        const meter = { steps: 0 };
        expand(input, lookup, meter);
        return meter.steps;
      },
      check: (input, steps) => (steps as number) <= 3 * input.length + 3,
      numRuns: Math.min(200, fuzzSettings().numRuns),
    });
  });
});
