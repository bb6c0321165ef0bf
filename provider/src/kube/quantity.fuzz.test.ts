// Quantities come from pod specs, EdgeNode specs and (as a heartbeat's capacity and allocatable) from the sites:
// hostile strings are refused only with QuantityError and never take long, huge exponents never become Infinity, and
// what is formatted parses back.
import { fc, fuzzDecoder, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { MAX_QUANTITY, QuantityError, formatQuantity, parseQuantity, subtractReserved } from './quantity.js';

const SUFFIXES = ['', 'm', 'k', 'M', 'G', 'T', 'P', 'E', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
const digits = (max: number) => fc.stringMatching(new RegExp(`^[0-9]{1,${max}}$`));
/** Strings shaped like quantities, most of them valid, some with huge digit runs and exponents. */
const quantityLike = fc.oneof(
  fc
    .tuple(fc.constantFrom('', '+', '-'), digits(20), fc.option(digits(12)), fc.constantFrom(...SUFFIXES))
    .map(([sign, int, frac, suffix]) => `${sign}${int}${frac === null ? '' : `.${frac}`}${suffix}`),
  fc
    .tuple(digits(6), fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.oneof(digits(3), digits(12), fc.constant('999999999')))
    .map(([b, e, s, x]) => `${b}${e}${s}${x}`),
  hostileString('0123456789.eE+-kMGTPEimKi '),
  hostileString(),
);
const huge = fc
  .tuple(
    fc.integer({ min: 1000, max: 200_000 }),
    fc.constantFrom('1', '9', '0', '.'),
    fc.constantFrom('', 'x', 'e', 'Ei', 'e999999999', '.5Zi', ' '),
  )
  .map(([n, d, tail]) => `${d.repeat(n)}${tail}`);

describe('quantities (fuzz)', () => {
  it('hostile strings: only QuantityError; what parses is finite and below 2^63', () => {
    fuzzDecoder('parseQuantity hostile', {
      inputs: quantityLike,
      decode: parseQuantity,
      errors: [QuantityError],
      check: (_q, v) => Number.isFinite(v) && Math.abs(v as number) < MAX_QUANTITY,
    });
  });

  it('huge inputs (long digit runs, huge exponents) within the hang bound', () => {
    fuzzDecoder('parseQuantity huge', { inputs: huge, decode: parseQuantity, errors: [QuantityError], numRuns: 50 });
  });

  it('formatQuantity -> parseQuantity round trips (memory exactly, cpu to the millicore)', () => {
    fuzzProperty(
      'quantity round trip',
      [fc.double({ min: 0, max: 2 ** 62, noNaN: true }), fc.constantFrom('cpu', 'memory', 'pods')],
      (v, resource) => {
        const back = parseQuantity(formatQuantity(resource, v));
        return resource === 'cpu' ? Math.abs(back - Math.round(v * 1000) / 1000) <= Math.max(1e-3, v * 1e-12) : back === Math.floor(v);
      },
    );
  });

  it('parse -> format -> parse is stable for what parses (to the precision of a double)', () => {
    fuzzDecoder('quantity reparse', {
      inputs: fc.tuple(quantityLike, fc.constantFrom('cpu', 'memory')),
      decode: ([q, resource]) => {
        const once = parseQuantity(formatQuantity(resource, parseQuantity(q)));
        const twice = parseQuantity(formatQuantity(resource, once));
        return Math.abs(twice - once) <= Math.max(1e-3, Math.abs(once) * 1e-15);
      },
      errors: [QuantityError],
      check: (_in, same) => same === true,
    });
  });

  it('subtractReserved of hostile allocatable and reserved: only QuantityError, results parse', () => {
    const res = fc.dictionary(fc.constantFrom('cpu', 'memory', 'pods', 'ephemeral-storage'), quantityLike, { maxKeys: 4 });
    fuzzDecoder('subtractReserved hostile', {
      inputs: fc.tuple(res, res),
      decode: ([allocatable, reserved]) => subtractReserved(allocatable, reserved),
      errors: [QuantityError],
      check: ([allocatable, reserved], out) =>
        Object.entries(out as Record<string, string>).every(([k, v]) => !(k in reserved) || !(k in allocatable) || parseQuantity(v) >= 0),
    });
  });
});
