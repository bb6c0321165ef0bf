#!/usr/bin/env node
/**
 * A mapper's entry point: the only place that reads the environment or exits. Its settings are declared in
 * config.ts (MAPPER_SETTINGS); every one, with its default, is in docs/reference/settings.md.
 *
 * Exit codes: 0 after a clean stop on SIGTERM/SIGINT, 1 on a failed start, 2 on bad configuration.
 */
import { credsAuthenticator, connect } from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { isConfigError, parseConfig } from './config.js';
import { modbusDriver } from './modbus.js';
import { MapperRuntime } from './runtime.js';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(`edgefarm-mapper: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { component: 'mapper', protocol: config.protocol } });
  const nc = await connect({
    servers: config.natsUrl,
    name: `edgefarm-mapper-${config.protocol}`,
    maxReconnectAttempts: -1,
    ...(config.natsCredsFile ? { authenticator: credsAuthenticator(readFileSync(config.natsCredsFile)) } : {}),
  });
  const runtime = new MapperRuntime({ nc, wireId: config.nodeKey, protocol: config.protocol, driver: modbusDriver, log });
  runtime.start();
  log.info({ nats: config.natsUrl }, 'mapper started');
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void runtime
      .stop()
      .then(() => nc.drain())
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`edgefarm-mapper: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
