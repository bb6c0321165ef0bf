/**
 * The harness's one reading of the environment: its settings (TEST_SETTINGS) and the cache paths, parsed when the
 * harness is imported, so a bad value fails a test run at its start with every problem named.
 */
import { TEST_SETTINGS, cachePaths } from './settings.js';

/** The harness settings of this process. */
export const TEST = TEST_SETTINGS.parse(process.env);

/** The cache paths of this process (hack/versions.sh's EF_CACHE rule). */
export const CACHE = cachePaths(process.env);
