#!/usr/bin/env node
/**
 * edge-agent entry point: the only place that reads the environment, installs signal handlers or exits. Its settings
 * are declared in config.ts (AGENT_SETTINGS); every one, with its default, is in docs/reference/settings.md.
 *
 * Exit codes: 0 after a clean stop on SIGTERM/SIGINT, 1 on a failed start or a fatal error, 2 on bad configuration.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { Agent } from './agent.js';
import { configFromEnv, isConfigError } from './config.js';

function agentVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

async function main(): Promise<void> {
  let config;
  try {
    config = configFromEnv(process.env, agentVersion());
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(`edge-agent: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { node: config.nodeName, site: config.site } });
  const agent = new Agent(config, log);

  let stopping: Promise<void> | undefined;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'stopping');
    stopping = agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.fatal({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection');
    process.exit(1);
  });

  try {
    await agent.start();
  } catch (err) {
    log.fatal({ err }, 'edge-agent could not start');
    process.exit(1);
  }
}

void main();
