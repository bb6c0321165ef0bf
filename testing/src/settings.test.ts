import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { E2E_SETTINGS, TEST_SETTINGS, cachePaths } from './settings.js';

const VERSIONS = path.resolve(import.meta.dirname, '../../hack/versions.sh');

/** EF_CACHE as hack/versions.sh computes it for this environment. */
function shellCache(env: Record<string, string>): string {
  return execFileSync('bash', ['-c', `. "${VERSIONS}"; printf %s "$EF_CACHE"`], { env, encoding: 'utf8' });
}

describe('cachePaths', () => {
  it.each<Record<string, string>>([
    { HOME: '/home/a' },
    { HOME: '/home/a', XDG_CACHE_HOME: '/xdg' },
    { HOME: '/home/a', XDG_CACHE_HOME: '' },
    { HOME: '/home/a', XDG_CACHE_HOME: '/xdg', EF_CACHE: '/srv/ef-cache' },
    { HOME: '/home/a', EF_CACHE: '' },
  ])('follows the rule of hack/versions.sh for %j', (env) => {
    const paths = cachePaths(env);
    expect(paths.root).toBe(shellCache({ PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }));
    expect(paths.bin).toBe(path.join(paths.root, 'bin'));
    expect(paths.images).toBe(path.join(paths.root, 'images'));
  });
});

describe('the harness settings', () => {
  it('have defaults for everything a test reads', () => {
    expect(TEST_SETTINGS.parse({})).toEqual({
      keep: false,
      logLevel: undefined,
      transferMb: 100,
      upCommand: 'wc -c',
      agentProfileDir: undefined,
      window: 1024 * 1024,
      fuzzSeed: 20261207,
      fuzzRuns: 300,
      fuzzHangMs: 2000,
      fuzzReport: undefined,
    });
    expect(E2E_SETTINGS.parse({})).toEqual({ instance: 'e2e', keep: false, partitionMs: 120_000 });
  });

  it('refuse the renamed partition setting', () => {
    expect(() => E2E_SETTINGS.parse({ EF_FAULT_PARTITION_MS: '1000' })).toThrow(
      /EF_FAULT_PARTITION_MS is no longer read: set EF_E2E_PARTITION_MS/,
    );
  });
});
