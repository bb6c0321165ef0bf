import { fc, fuzzDecoder, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { ByteSizeError, formatByteSize, parseByteSize } from './size.js';

const suffix = fc.constantFrom('', 'k', 'K', 'M', 'G', 'T', 'Ki', 'Mi', 'Gi', 'Ti', 'm', 'E', 'Ei', 'i', ' ', '.5');

describe('parseByteSize (fuzzed)', () => {
  it('throws only ByteSizeError, never hangs; what it accepts is a safe non-negative integer', () => {
    fuzzDecoder('edge-agent byte size', {
      inputs: fc.oneof(
        hostileString('0123456789KMGTkiE.-+e '),
        fc.tuple(fc.oneof(fc.nat().map(String), fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String)), suffix).map(([n, s]) => n + s),
        fc.string({ maxLength: 64 }),
      ),
      decode: parseByteSize,
      errors: [ByteSizeError],
      check: (_input, out) => Number.isSafeInteger(out) && (out as number) >= 0,
    });
  });

  it('round-trips through formatByteSize', () => {
    fuzzProperty(
      'edge-agent byte size round trip',
      [fc.nat({ max: 2 ** 40 }), fc.constantFrom(1, 2 ** 10, 2 ** 20, 2 ** 30)],
      (n, unit) => {
        const bytes = n * unit;
        if (!Number.isSafeInteger(bytes)) return true;
        return parseByteSize(formatByteSize(bytes)) === bytes;
      },
    );
  });
});
