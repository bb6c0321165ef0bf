/**
 * Builds the provider's revoker from its configuration (main.ts calls it): the watch of the revocation Secret and of
 * EdgeNodes, and a system-account connection to the hub with the configured credentials.
 */
import { readFileSync } from 'node:fs';
import type * as k8s from '@kubernetes/client-node';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ProviderConfig } from '../config.js';
import { Revoker } from './revoker.js';
import { KubeRevocationSource } from './source.js';

/**
 * The revoker, or undefined when config.revoker is unset. `caFile` is the fleet CA for TLS to the hub (the same the
 * provider's own hub connections verify against); undefined for a hub without TLS.
 */
export function revokerOf(
  config: ProviderConfig,
  kc: k8s.KubeConfig,
  servers: string[],
  log: Logger,
  registry: Registry,
  caFile?: string,
): Revoker | undefined {
  const r = config.revoker;
  if (!r) return undefined;
  return new Revoker({
    source: new KubeRevocationSource(kc, config.namespace),
    connect: () =>
      connect({
        servers,
        name: 'edgefarm-provider-revoker',
        authenticator: credsAuthenticator(readFileSync(r.systemCredsFile)),
        maxReconnectAttempts: -1,
        reconnectTimeWait: 500,
        waitOnFirstConnect: true,
        ...(caFile ? { tls: { caFile } } : {}),
      }),
    operatorSigningSeed: readFileSync(r.operatorSigningSeedFile, 'utf8').trim(),
    accounts: r.accounts,
    nodeSignerPublicKey: r.nodeSignerPublicKey,
    log: log.child({ part: 'revoker' }),
    registry,
  });
}
