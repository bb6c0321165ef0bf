/**
 * The agent's one NATS connection, to its site's nats-server. The hub is reached through it (the hub's JetStream
 * domain, over the site's leaf link); the edge dials nothing else. Connection state changes are logged; close()
 * drains the connection and returns once the connection is closed and its status loop has ended.
 *
 * On a secured site (decision 0008) the site server knows the agent by an nkey: the seed is read from `seedFile` at
 * every connect, so a replaced file is used at the next reconnect (a file that cannot be read then keeps the last good
 * seed). Every reply the agent gets comes below its node's inbox prefix (proto siteInboxPrefix), the only inboxes
 * the node's leaf permissions let the hub deliver to: with the default `_INBOX` a hub publish is stored but its ack
 * never arrives.
 */
import { readFileSync } from 'node:fs';
import { connect, nkeyAuthenticator, nkeys, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { siteInboxPrefix } from '@edgefarm/proto';
import type { Logger } from 'pino';

export interface SiteConnection {
  nc: NatsConnection;
  close(): Promise<void>;
}

export interface SiteConnectionOptions {
  /** One URL or several, comma-separated. */
  natsUrl: string;
  /** The node's name (the connection's name, for the server's monitoring). */
  node: string;
  /** The node's wire id: the inbox prefix is built from it. */
  wireId: string;
  /** The agent's nkey seed file; unset: no authentication. */
  seedFile?: string;
}

/** A seed file that cannot be read or holds no user nkey seed. */
export class SeedFileError extends Error {
  override name = 'SeedFileError';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`nkey seed file ${path}: ${message}`, options);
  }
}
export function isSeedFileError(err: unknown): err is SeedFileError {
  return err instanceof SeedFileError;
}

/** Largest seed file read (a seed is 58 characters; the file may carry a newline or two). */
const MAX_SEED_FILE_BYTES = 4096;

/** Reads a user nkey seed (`SU...`) from a file; returns it with its public key. Throws a {@link SeedFileError}. */
export function readSeedFile(path: string): { seed: Uint8Array; publicKey: string } {
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > MAX_SEED_FILE_BYTES) throw new SeedFileError(path, `${bytes.length} bytes; a seed file holds one seed`);
    text = bytes.toString('utf8').trim();
  } catch (err) {
    if (isSeedFileError(err)) throw err;
    throw new SeedFileError(path, `cannot be read: ${(err as Error).message}`, { cause: err });
  }
  const seed = new TextEncoder().encode(text);
  let publicKey: string;
  try {
    publicKey = nkeys.fromSeed(seed).getPublicKey();
  } catch (err) {
    throw new SeedFileError(path, 'does not hold an nkey seed', { cause: err });
  }
  if (!publicKey.startsWith('U')) throw new SeedFileError(path, 'holds a seed that is not a user nkey');
  return { seed, publicKey };
}

/**
 * The connection options (tests check them): the node's inbox prefix, and with a seed file an nkey authenticator that
 * reads it at every connect. Throws a {@link SeedFileError} when the seed file is unusable now.
 */
export function siteConnectionOptions(o: SiteConnectionOptions, log: Logger): ConnectionOptions {
  const options: ConnectionOptions = {
    servers: o.natsUrl.split(',').map((s) => s.trim()),
    name: `edge-agent ${o.node}`,
    inboxPrefix: siteInboxPrefix(o.wireId),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    waitOnFirstConnect: true,
    // Otherwise the client makes two Errors per request (publish acks, pulls, JetStream API calls) to keep the
    // caller's stack in case it fails: in a CPU profile of 250 idle hollow agents, 9.4 % of the process's CPU went
    // to making Errors, 6.6 % with this (the rest is the library's own "cancelled" Error after every request).
    // Errors still say what failed; they lose the caller's frames.
    noAsyncTraces: true,
  };
  const seedFile = o.seedFile;
  if (seedFile !== undefined) {
    let last = readSeedFile(seedFile);
    log.info({ publicKey: last.publicKey }, 'authenticating to the site nats-server with an nkey');
    options.authenticator = nkeyAuthenticator(() => {
      try {
        last = readSeedFile(seedFile);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'the nkey seed file is unusable now; connecting with the last good seed');
      }
      return last.seed;
    });
  }
  return options;
}

/** Waits for the first connection; reconnects for ever after it. */
export async function connectSite(o: SiteConnectionOptions, log: Logger): Promise<SiteConnection> {
  const nc = await connect(siteConnectionOptions(o, log));
  const statusLoop = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'error')
        log.info({ status: s.type, data: String((s as { server?: string }).server ?? '') }, 'site NATS connection');
    }
  })().catch(() => undefined);
  return {
    nc,
    close: async () => {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
      await statusLoop;
    },
  };
}
