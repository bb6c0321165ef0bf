/**
 * The provider's hub connections (decision 0008). With credentials, two: one per hub account the provider has a user
 * in (`desired`: EF_DESIRED, `cloud`: EF_CLOUD), each authenticating with its creds file, read again at every connect
 * (a renewed file is used at the next reconnect). Without, one unauthenticated connection serves both roles, as on an
 * open hub. Every connection uses the provider's inbox prefix (PROVIDER_INBOX_PREFIX: the only inboxes its users may
 * subscribe to) and, with a CA file, TLS checked against the fleet CA.
 */
import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { PROVIDER_INBOX_PREFIX } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { HubConnections } from './hub.js';

export interface HubConnectConfig {
  /** One URL or several, comma-separated (every hub cluster member). */
  natsUrl: string;
  /** Creds files of the two hub users; unset: one unauthenticated connection. */
  natsCreds?: { desired: string; cloud: string };
  /** The fleet CA (PEM). */
  natsCaFile?: string;
}

/** What a connection is for: one of the two accounts, or both (no credentials). */
export type HubRole = 'desired' | 'cloud' | 'both';

/** Reads a file (the creds at every connect); injectable for tests. */
export type ReadFile = (path: string) => Uint8Array;

/** A creds file that cannot be read. */
export class HubCredsError extends Error {
  override name = 'HubCredsError';
}
export function isHubCredsError(err: unknown): err is HubCredsError {
  return err instanceof HubCredsError;
}

function readCreds(path: string, readFile: ReadFile): Uint8Array {
  try {
    return readFile(path);
  } catch (err) {
    throw new HubCredsError(`hub creds file ${path} cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** The options of one hub connection. Throws a {@link HubCredsError} when its creds file cannot be read now. */
export function hubConnectionOptions(config: HubConnectConfig, role: HubRole, readFile: ReadFile = readFileSync): ConnectionOptions {
  const servers = config.natsUrl
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const options: ConnectionOptions = {
    servers,
    name: role === 'both' ? 'edgefarm-provider' : `edgefarm-provider ${role}`,
    inboxPrefix: PROVIDER_INBOX_PREFIX,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // A hub not up yet (a pod started before the hub's, a hub restarting) is waited for, not a failed start.
    waitOnFirstConnect: true,
  };
  if (config.natsCaFile) options.tls = { caFile: config.natsCaFile };
  if (role !== 'both') {
    const path = config.natsCreds?.[role];
    if (!path) throw new HubCredsError(`no creds file for the provider's ${role} hub user`);
    let last = readCreds(path, readFile);
    options.authenticator = credsAuthenticator(() => {
      try {
        last = readCreds(path, readFile);
      } catch {
        // keep the last good creds; the server says whether they are still valid
      }
      return last;
    });
  }
  return options;
}

export interface HubConnectionSet extends HubConnections {
  /** Drains and closes every connection opened. */
  close(): Promise<void>;
}

/** Opens the hub connections the configuration asks for (see the module comment). */
export async function connectHub(
  config: HubConnectConfig,
  log: Logger,
  connectFn: (options: ConnectionOptions) => Promise<NatsConnection> = connect,
  readFile: ReadFile = readFileSync,
): Promise<HubConnectionSet> {
  const drain = async (nc: NatsConnection) => {
    if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
  };
  if (!config.natsCreds) {
    const nc = await connectFn(hubConnectionOptions(config, 'both', readFile));
    log.info({ tls: Boolean(config.natsCaFile) }, 'connected to the hub without credentials: one connection for both accounts');
    return { desired: nc, cloud: nc, close: () => drain(nc) };
  }
  const desired = await connectFn(hubConnectionOptions(config, 'desired', readFile));
  let cloud: NatsConnection;
  try {
    cloud = await connectFn(hubConnectionOptions(config, 'cloud', readFile));
  } catch (err) {
    await drain(desired);
    throw err;
  }
  log.info({ tls: Boolean(config.natsCaFile) }, 'connected to the hub as the EF_DESIRED and the EF_CLOUD user');
  return { desired, cloud, close: async () => void (await Promise.all([drain(desired), drain(cloud)])) };
}
