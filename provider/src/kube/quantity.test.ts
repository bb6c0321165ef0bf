import { fc, fuzzDecoder } from '@edgefarm/testing/fuzz';
import { parseQuantity, formatQuantity, subtractReserved, QuantityError } from './quantity.js';

describe('quantities', () => {
  it.each([
    ['2', 2],
    ['1500m', 1.5],
    ['1Ki', 1024],
    ['100Mi', 100 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
    ['0.5', 0.5],
    [3, 3],
  ])('parses %s', (q, v) => expect(parseQuantity(q)).toBeCloseTo(v));

  it.each(['', 'abc', '1Xi', '--1', '1 Gi', '1.2.3'])('refuses %j with a clear error', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
    expect(() => parseQuantity(q)).toThrow(/not a Kubernetes quantity/);
  });

  // A quantity is a site's input too (a heartbeat's allocatable): the regex was ambiguous (\d+\.?\d* splits digits two
  // ways), so a long run of digits that does not end well backtracked quadratically: 40 000 digits took 3.2 s.
  it('refuses a long run of digits with a bad ending within the hang bound (no quadratic backtracking)', () => {
    fuzzDecoder('quantity of 100 000 digits and a bad suffix', {
      inputs: fc.constantFrom(`${'1'.repeat(100_000)}x`, `${'1'.repeat(100_000)}.${'1'.repeat(100_000)}Zi`, `-${'9'.repeat(100_000)}e`),
      decode: parseQuantity,
      errors: [QuantityError],
      check: () => false, // each must be refused
      numRuns: 3,
    });
  });

  it.each(['1e999999999', '1E400', `${'9'.repeat(400)}`, '-1e309', '1e19', '16Ei'])('refuses %s: out of range, not Infinity', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
    expect(() => parseQuantity(q)).toThrow(/out of range/);
  });

  it('parses the largest quantities in range and tiny ones', () => {
    expect(parseQuantity('7Ei')).toBe(7 * 2 ** 60);
    expect(parseQuantity('1e-999999999')).toBe(0);
    expect(() => parseQuantity(Infinity)).toThrow(QuantityError);
  });

  it('formats what it parses back into a quantity that parses to the same value', () => {
    for (const v of [0, 1, 1.5, 1e15, 1e18, 2 ** 62]) {
      expect(parseQuantity(formatQuantity('memory', v))).toBe(Math.floor(v));
      expect(parseQuantity(formatQuantity('cpu', v))).toBeCloseTo(v, 6);
    }
    expect(formatQuantity('cpu', 1e18)).toBe('1000000000000000000000m'); // String() said "1e+21m"
  });

  it('formats cpu in millicores and never below zero', () => {
    expect(formatQuantity('cpu', 1.5)).toBe('1500m');
    expect(formatQuantity('memory', 1024.7)).toBe('1024');
    expect(formatQuantity('memory', -5)).toBe('0');
  });

  it('subtracts reserved resources the node has and ignores the others', () => {
    expect(subtractReserved({ cpu: '2', memory: '1Gi', pods: '110' }, { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': 1 })).toEqual({
      cpu: '1500m',
      memory: String(512 * 2 ** 20),
      pods: '110',
    });
    expect(subtractReserved({ cpu: '2' }, undefined)).toEqual({ cpu: '2' });
  });
});
