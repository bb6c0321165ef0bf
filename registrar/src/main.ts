#!/usr/bin/env node
/**
 * Registrar entry point: the only place that reads the environment or exits. Its settings are declared in config.ts
 * (REGISTRAR_SETTINGS); every one, with its default, is in docs/reference/settings.md.
 *
 * Exit codes: 0 after a clean stop on SIGTERM/SIGINT, 1 on a failed start, 2 on bad configuration.
 */
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { parseConfig, isConfigError } from './config.js';
import { mintNodeUser } from '@edgefarm/identity';
import { RealRegistrarKube } from './kube.js';
import { RegistrarMetrics } from './metrics.js';
import { Registrar } from './registrar.js';
import { RegistrarServer } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(`edgefarm-registrar: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { component: 'registrar' } });
  const kc = new k8s.KubeConfig();
  kc.loadFromDefault();
  const caPem = readFileSync(config.caFile, 'utf8');
  const metrics = new RegistrarMetrics({ defaultMetrics: true });
  const registrar = new Registrar({
    kube: new RealRegistrarKube(kc),
    mint: mintNodeUser,
    signerSeed: readFileSync(config.signerSeedFile, 'utf8').trim(),
    sitesAccount: config.sitesAccount,
    caPem,
    hubLeafUrls: config.hubLeafUrls,
    registrarUrl: config.registrarUrl,
    credentialLifetimeSeconds: config.credentialLifetimeSeconds,
    namespace: config.namespace,
    metrics,
    log,
  });
  const server = new RegistrarServer({
    registrar,
    metrics,
    log,
    tls: { cert: readFileSync(config.tlsCertFile, 'utf8'), key: readFileSync(config.tlsKeyFile, 'utf8'), caPem },
    host: config.listen.host,
    port: config.listen.port,
    limits: { clientPerMinute: config.clientRatePerMinute, overallPerSecond: config.ratePerSecond, maxInFlight: config.maxInFlight },
    timeouts: { requestMs: config.requestTimeoutSeconds * 1000, idleMs: config.requestTimeoutSeconds * 1000 },
  });
  const port = await server.start();
  log.info({ port, url: config.registrarUrl, lifetimeSeconds: config.credentialLifetimeSeconds }, 'registrar started');
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    void server.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`edgefarm-registrar failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
