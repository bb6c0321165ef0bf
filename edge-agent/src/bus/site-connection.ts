/**
 * The agent's one NATS connection, to its site's nats-server. The hub is reached through it (the hub's JetStream
 * domain, over the site's leaf link); the edge dials nothing else. Connection state changes are logged; close()
 * drains the connection and returns once the connection is closed and its status loop has ended.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';

export interface SiteConnection {
  nc: NatsConnection;
  close(): Promise<void>;
}

/** `natsUrl`: one URL or several, comma-separated. Waits for the first connection; reconnects for ever after it. */
export async function connectSite(natsUrl: string, node: string, log: Logger): Promise<SiteConnection> {
  const nc = await connect({
    servers: natsUrl.split(',').map((s) => s.trim()),
    name: `edge-agent ${node}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    waitOnFirstConnect: true,
    // Otherwise the client makes two Errors per request (publish acks, pulls, JetStream API calls) to keep the
    // caller's stack in case it fails: in a CPU profile of 250 idle hollow agents, 9.4 % of the process's CPU went
    // to making Errors, 6.6 % with this (the rest is the library's own "cancelled" Error after every request).
    // Errors still say what failed; they lose the caller's frames.
    noAsyncTraces: true,
  });
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
