#!/usr/bin/env node
/**
 * hollow-site entry point: N hollow edge nodes (real agents over an in-memory runtime, see site.ts) against one site
 * leaf nats-server. The only place of the hollow site that reads the environment or exits. Settings: hollow/config.ts
 * (docs/reference/settings.md, "hollow site").
 *
 * Prints `hollow site started N nodes in T ms` on stdout once every agent runs. Exit codes as edge-agent's main.
 */
import { pino } from 'pino';
import { isConfigError } from '../config.js';
import { hollowConfigFromEnv, type HollowConfig } from './config.js';
import { HollowSite } from './site.js';

async function main(): Promise<void> {
  let config: HollowConfig;
  try {
    config = hollowConfigFromEnv(process.env);
  } catch (err) {
    if (!isConfigError(err)) throw err;
    process.stderr.write(`hollow-site: ${err.message}\n`);
    process.exit(2);
  }
  const list = config.agents;
  const log = pino({ level: list[0]!.logLevel, base: { site: list[0]!.site } });
  const site = new HollowSite({
    configs: list,
    log,
    startConcurrency: config.startConcurrency,
    onStarted: (_node, n) => n % 50 === 0 && log.warn({ started: n, of: list.length }, 'hollow agents started'),
  });
  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.warn({ signal }, 'stopping hollow site');
    site.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });
  const t0 = Date.now();
  try {
    await site.start();
  } catch (err) {
    log.fatal({ err }, 'hollow site could not start');
    process.exit(1);
  }
  process.stdout.write(`hollow site started ${site.size} nodes in ${Date.now() - t0} ms\n`);
}

void main();
