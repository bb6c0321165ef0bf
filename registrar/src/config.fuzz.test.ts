// Fuzzing the registrar's settings parsers (durations, listen address, URLs, rates): an environment value of any
// text ends as a ConfigError naming the variable (main.ts exits 2 with it), never another error, and never hangs.
import { ConfigError, ValueError } from '@edgefarm/settings';
import { fc, fuzzDecoder, hostileString } from '@edgefarm/testing/fuzz';
import { REGISTRAR_SETTINGS, parseConfig, parseDuration } from './config.js';

const REQUIRED = {
  EF_REGISTRAR_TLS_CERT: '/c',
  EF_REGISTRAR_TLS_KEY: '/k',
  EF_FLEET_CA_FILE: '/ca',
  EF_REGISTRAR_SIGNER_SEED_FILE: '/s',
  EF_SITES_ACCOUNT: `A${'B'.repeat(55)}`,
  EF_HUB_LEAF_URLS: 'tls://hub:7422',
  EF_REGISTRAR_URL: 'https://r:8443',
};
const envNames = Object.values(REGISTRAR_SETTINGS.specs).map((s) => s.env);
const durationText = fc.oneof(
  hostileString('0123456789smhd '),
  fc
    .tuple(fc.oneof(fc.nat(), fc.constantFrom(0, 1, 600, 2_592_000, 9_999_999, 1e21)), fc.constantFrom('s', 'm', 'h', 'd', '', 'ms'))
    .map(([n, u]) => `${n}${u}`),
);

describe('registrar settings (fuzz)', () => {
  it('parseDuration: only ValueError, no hang, a result within its bounds', () => {
    fuzzDecoder('registrar.parseDuration', {
      inputs: durationText,
      decode: (t) => parseDuration(t, 600, 30 * 24 * 3600),
      errors: [ValueError],
      check: (_in, out) => Number.isSafeInteger(out) && (out as number) >= 600 && (out as number) <= 30 * 24 * 3600,
    });
  });

  it('parseConfig: any value of any setting ends as ConfigError or a config', () => {
    fuzzDecoder('registrar.parseConfig', {
      inputs: fc.tuple(fc.constantFrom(...envNames), fc.oneof(hostileString(), durationText)),
      decode: ([name, value]) => parseConfig({ ...REQUIRED, [name]: value }),
      errors: [ConfigError],
    });
  });
});
