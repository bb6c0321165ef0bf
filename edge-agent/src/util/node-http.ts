/**
 * node:http for the agent, loaded with require().
 *
 * An ESM `import ... from 'node:http'` (default or named) builds the module's namespace from every export, and that
 * reads http's lazy `WebSocket`, `CloseEvent` and `MessageEvent` exports, which load undici: Node's fetch, WebSocket
 * and EventSource, none of which the agent uses. require() returns the exports object without reading them. Measured
 * with the agent's dependencies loaded, `--lite-mode --max-semi-space-size=2`: 2.4 MiB of VmRSS (1.3 MiB private).
 * `footprint.int.test.ts` checks that the agent never loads undici.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export const http = require('node:http') as typeof import('node:http');
