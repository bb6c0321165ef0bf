// The harness itself (a unit test, not a *.fuzz.test.ts: its failing properties are meant to fail): it must fail on a
// foreign error, on a hang and on a failed check, and count the inputs it ran.
import { fc, fuzzDecoder, fuzzProperty, fuzzSettings } from './fuzz.js';

class OwnError extends Error {}

describe('fuzzDecoder', () => {
  it('passes a decoder that throws only its own errors, and counts every input', () => {
    const r = fuzzDecoder('own errors', {
      inputs: fc.string(),
      decode: (s) => {
        if (s.length % 2) throw new OwnError('odd');
        return s;
      },
      errors: [OwnError],
      numRuns: 50,
    });
    expect(r).toMatchObject({ runs: 50, failures: 0 });
  });

  it('fails on an error that is not the module own (a crash)', () => {
    expect(() =>
      fuzzDecoder('crash', {
        inputs: fc.string({ minLength: 1 }),
        decode: (s) => (s as unknown as { x: { y: number } }).x.y,
        errors: [OwnError],
        numRuns: 20,
      }),
    ).toThrow(/not the module's own: TypeError/);
  });

  it('fails on one input that takes longer than the hang bound', () => {
    expect(() =>
      fuzzDecoder('hang', {
        inputs: fc.constant('x'),
        decode: () => {
          const until = performance.now() + 30;
          while (performance.now() < until);
        },
        numRuns: 1,
        hangMs: 5,
      }),
    ).toThrow(/took \d+ ms \(hang bound 5 ms\)/);
  });

  it('fails when the check says no (a broken round trip)', () => {
    expect(() => fuzzDecoder('check', { inputs: fc.nat(), decode: (n) => n + 1, check: (n, out) => out === n, numRuns: 5 })).toThrow(
      /Counterexample/,
    );
  });
});

describe('fuzzProperty and the settings', () => {
  it('runs a predicate with the fixed seed', () => {
    expect(fuzzProperty('sum commutes', [fc.integer(), fc.integer()], (a, b) => a + b === b + a, { numRuns: 30 })).toMatchObject({
      runs: 30,
      failures: 0,
    });
  });

  it('reads EF_FUZZ_SEED, EF_FUZZ_RUNS and EF_FUZZ_HANG_MS, and refuses nonsense', () => {
    expect(fuzzSettings({ EF_FUZZ_SEED: '7', EF_FUZZ_RUNS: '9', EF_FUZZ_HANG_MS: '11' })).toEqual({ seed: 7, numRuns: 9, hangMs: 11 });
    expect(() => fuzzSettings({ EF_FUZZ_RUNS: '-1' })).toThrow(/EF_FUZZ_RUNS/);
  });
});
