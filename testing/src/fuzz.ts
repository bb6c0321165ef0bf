/**
 * Property-based fuzzing of decoders and parsers with fast-check: one convention for every `*.fuzz.test.ts`.
 *
 * - A fixed seed (EF_FUZZ_SEED, default {@link DEFAULT_SEED}), so a failure in CI reproduces on a laptop with the same
 *   command; fast-check prints the seed, the path and the shrunk counterexample.
 * - A number of inputs per property: EF_FUZZ_RUNS (default {@link DEFAULT_RUNS} in the unit suite; `make fuzz` runs
 *   many more).
 * - The invariants every decoder keeps, checked by {@link fuzzDecoder}: it throws nothing but the module's own error
 *   classes (a TypeError from deep inside is a crash), and no input takes longer than a hang bound (a catastrophic
 *   regex or a quadratic loop shows up as one input taking seconds; the bound is generous, it is no benchmark).
 * - Each property appends `{name, runs, failures}` as a JSON line to EF_FUZZ_REPORT when set; `make fuzz` sums them
 *   (hack/fuzz-report.sh).
 */
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';
import type { Env } from '@edgefarm/settings';
import { TEST_SETTINGS } from './settings.js';

export { fc };

export const DEFAULT_SEED = Number(TEST_SETTINGS.specs.fuzzSeed.default);
export const DEFAULT_RUNS = Number(TEST_SETTINGS.specs.fuzzRuns.default);

export interface FuzzSettings {
  seed: number;
  numRuns: number;
  /** One input taking longer than this is a hang (a CPU trap), not a slow machine. */
  hangMs: number;
  report?: string;
}

export function fuzzSettings(env: Env = process.env): FuzzSettings {
  const s = TEST_SETTINGS.parse(env);
  return { seed: s.fuzzSeed, numRuns: s.fuzzRuns, hangMs: s.fuzzHangMs, ...(s.fuzzReport ? { report: s.fuzzReport } : {}) };
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface DecoderFuzz<T> {
  /** The inputs: hostile ones, not only valid ones (mix valid encodings with mutations and random bytes). */
  inputs: fc.Arbitrary<T>;
  /** Decodes one input. May throw only instances of `errors` (or errors `isExpected` accepts). */
  decode: (input: T) => unknown;
  /** The module's own error classes: throwing one of these is the decoder refusing bad input, which is correct. */
  errors?: ErrorClass[];
  /** For errors that are not classes (an error with a code, a predicate from the module). */
  isExpected?: (err: unknown) => boolean;
  /** Further checks on a successful decode (a round trip, a bound on the output). Throw or return false to fail. */
  check?: (input: T, output: unknown) => boolean | void;
  /** Overrides of {@link fuzzSettings}. */
  numRuns?: number;
  hangMs?: number;
}

/** Counts of one property run, what {@link fuzzDecoder} reports. */
export interface FuzzReport {
  name: string;
  runs: number;
  failures: number;
  seed: number;
}

function report(r: FuzzReport): void {
  const file = fuzzSettings().report;
  if (file) appendFileSync(file, `${JSON.stringify(r)}\n`);
}

/**
 * Runs a decoder over generated inputs and asserts the decoder invariants (see the module comment). Call inside a
 * jest `it`; throws (failing the test) with fast-check's counterexample report.
 */
export function fuzzDecoder<T>(name: string, spec: DecoderFuzz<T>): FuzzReport {
  const settings = fuzzSettings();
  const numRuns = spec.numRuns ?? settings.numRuns;
  const hangMs = spec.hangMs ?? settings.hangMs;
  let runs = 0;
  const property = fc.property(spec.inputs, (input) => {
    runs++;
    const started = performance.now();
    let output: unknown;
    let threw: unknown;
    let ok = true;
    try {
      output = spec.decode(input);
    } catch (err) {
      threw = err;
      ok = false;
    }
    const took = performance.now() - started;
    if (took > hangMs) throw new Error(`${name}: one input took ${Math.round(took)} ms (hang bound ${hangMs} ms)`);
    if (!ok) {
      const expected = (spec.errors ?? []).some((c) => threw instanceof c) || (spec.isExpected?.(threw) ?? false);
      if (!expected) throw new Error(`${name}: threw an error that is not the module's own: ${describe(threw)}`);
      return true;
    }
    return spec.check?.(input, output) !== false;
  });
  const result = fc.check(property, { seed: settings.seed, numRuns });
  const r: FuzzReport = { name, runs, failures: result.failed ? 1 : 0, seed: settings.seed };
  report(r);
  if (result.failed) throw failure(name, result);
  return r;
}

/** Runs a plain property (any predicate) with the fixed seed and run count, reporting like {@link fuzzDecoder}. */
export function fuzzProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => boolean | void,
  opts: { numRuns?: number } = {},
): FuzzReport {
  const settings = fuzzSettings();
  let runs = 0;
  const property = fc.property(...arbitraries, (...args: Ts) => {
    runs++;
    return predicate(...args);
  });
  const result = fc.check(property as fc.IProperty<Ts>, { seed: settings.seed, numRuns: opts.numRuns ?? settings.numRuns });
  const r: FuzzReport = { name, runs, failures: result.failed ? 1 : 0, seed: settings.seed };
  report(r);
  if (result.failed) throw failure(name, result);
  return r;
}

/** Bytes that are mostly a valid encoding with a few bytes flipped, cut or appended: finds more than pure noise. */
export function mutatedBytes(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    valid,
    fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })).map(([bytes, flips]) => {
      const out = Uint8Array.from(bytes);
      for (const [at, v] of flips) if (out.length > 0) out[at % out.length] = v;
      return out;
    }),
    fc.tuple(valid, fc.nat()).map(([bytes, cut]) => bytes.subarray(0, bytes.length === 0 ? 0 : cut % bytes.length)),
    fc.tuple(valid, fc.uint8Array({ maxLength: 64 })).map(([a, b]) => Uint8Array.from([...a, ...b])),
  );
}

/** Strings built from the characters that break parsers: separators, dots, percent escapes, quotes, control bytes. */
export function hostileString(alphabet = './%2e%2f\\?#&=;:@*$(){}[]"\'\n\r\t\0 aZ09-_~'): fc.Arbitrary<string> {
  const pieces = [...new Set([...alphabet, '%2e', '%2f', '%2E', '%2F', '..', '%00', '$(', '**', '\u00ff', '\ud83d\ude00'])];
  return fc.oneof(
    fc.string({ maxLength: 64 }),
    fc.array(fc.constantFrom(...pieces), { maxLength: 48 }).map((a) => a.join('')),
    fc.string({ unit: 'binary', maxLength: 64 }),
  );
}

function failure<T>(name: string, result: fc.RunDetails<T>): Error {
  const e: unknown = result.errorInstance;
  const cause = e instanceof Error ? e.message : typeof e === 'string' ? e : 'the predicate returned false';
  return new Error(`${name}: ${cause}\n${fc.defaultReportMessage(result) ?? ''}`);
}

function describe(err: unknown): string {
  if (err instanceof Error)
    return `${err.constructor.name}: ${err.message}${err.stack ? `\n${err.stack.split('\n').slice(1, 4).join('\n')}` : ''}`;
  return String(err);
}

/**
 * {@link fuzzProperty} for an async predicate (a decoder behind a stream or zlib, a resolver that touches the file
 * system): the same seed, run count and report.
 * Each input still gets the hang bound.
 */
export async function fuzzAsyncProperty<Ts extends [unknown, ...unknown[]]>(
  name: string,
  arbitraries: { [K in keyof Ts]: fc.Arbitrary<Ts[K]> },
  predicate: (...args: Ts) => Promise<boolean | void>,
  opts: { numRuns?: number; hangMs?: number } = {},
): Promise<FuzzReport> {
  const settings = fuzzSettings();
  const hangMs = opts.hangMs ?? settings.hangMs;
  let runs = 0;
  const property = fc.asyncProperty(...arbitraries, async (...args: Ts) => {
    runs++;
    const started = performance.now();
    const ok = await predicate(...args);
    const took = performance.now() - started;
    if (took > hangMs) throw new Error(`${name}: one input took ${Math.round(took)} ms (hang bound ${hangMs} ms)`);
    return ok;
  });
  const result = await fc.check(property as fc.IAsyncProperty<Ts>, { seed: settings.seed, numRuns: opts.numRuns ?? settings.numRuns });
  const r: FuzzReport = { name, runs, failures: result.failed ? 1 : 0, seed: settings.seed };
  report(r);
  if (result.failed) throw failure(name, result);
  return r;
}
