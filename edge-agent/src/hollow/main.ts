#!/usr/bin/env node
/**
 * hollow-site entry point: N hollow edge nodes (real agents over an in-memory runtime, see site.ts) against one site
 * leaf nats-server. The only place of the hollow site that reads the environment or exits.
 *
 *   EF_HOLLOW_COUNT     number of nodes (required)
 *   EF_HOLLOW_FIRST     index of the first node (default 1); nodes are <prefix><index, 4 digits>: hollow-0001, ...
 *   EF_HOLLOW_PREFIX    node name prefix (default hollow-)
 *   EF_HOLLOW_DIR       directory for the nodes' volume dirs (required)
 *   EF_HOLLOW_START_CONCURRENCY   agents started in parallel (default 25)
 *   EF_SITE, EF_NATS_URL, EF_NODE_IP   as for edge-agent (one site, one leaf server, one address for all its nodes)
 *   EF_RESYNC_MS, EF_RELIST_MS, EF_HEARTBEAT_MS, EF_METRICS_PUBLISH_SECONDS, EF_CONCURRENCY, EF_LOG_LEVEL (default
 *   warn)   as for edge-agent, the same for every node
 *
 * Each node's /metrics server is off (EF_METRICS_ADDR=off); the metrics still reach the cloud through the outbox.
 * Prints `hollow site started N nodes in T ms` on stdout once every agent runs. Exit codes as edge-agent's main.
 */
import path from 'node:path';
import { pino } from 'pino';
import { configFromEnv, isConfigError, type AgentConfig } from '../config.js';
import { HollowSite } from './site.js';

function configs(env: NodeJS.ProcessEnv): AgentConfig[] {
  const count = Number(env.EF_HOLLOW_COUNT);
  const first = Number(env.EF_HOLLOW_FIRST ?? '1');
  const prefix = env.EF_HOLLOW_PREFIX ?? 'hollow-';
  const dir = env.EF_HOLLOW_DIR ?? '';
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`EF_HOLLOW_COUNT must be a positive integer, got "${env.EF_HOLLOW_COUNT ?? ''}"`);
  if (!Number.isInteger(first) || first < 0)
    throw new Error(`EF_HOLLOW_FIRST must be a non-negative integer, got "${env.EF_HOLLOW_FIRST}"`);
  if (!path.isAbsolute(dir)) throw new Error(`EF_HOLLOW_DIR must be an absolute path, got "${dir}"`);
  return Array.from({ length: count }, (_, i) => {
    const node = `${prefix}${String(first + i).padStart(4, '0')}`;
    return configFromEnv(
      {
        ...env,
        EF_NODE_NAME: node,
        EF_CRI_ENDPOINT: 'unix:///hollow/cri.sock',
        EF_METRICS_ADDR: 'off',
        EF_VOLUME_DIR: path.join(dir, node, 'pods'),
        EF_LOG_LEVEL: env.EF_LOG_LEVEL || 'warn',
      },
      'hollow',
    );
  });
}

async function main(): Promise<void> {
  let list: AgentConfig[];
  try {
    list = configs(process.env);
  } catch (err) {
    process.stderr.write(`hollow-site: ${isConfigError(err) ? err.message : (err as Error).message}\n`);
    process.exit(2);
  }
  const log = pino({ level: list[0]!.logLevel, base: { site: list[0]!.site } });
  const site = new HollowSite({
    configs: list,
    log,
    startConcurrency: Number(process.env.EF_HOLLOW_START_CONCURRENCY ?? '25'),
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
