/**
 * A real NATS hub + site pair for integration tests, in a temp dir, on free 127.0.0.1 ports: the hub (JetStream
 * domain "hub", leafnode listener) and a site server (JetStream domain "site-<site>") that is the hub's leaf. The
 * leaf link goes through a {@link TcpProxy}, so a test can cut and heal it; the hub can also be stopped and started
 * again (same ports, same store).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { HUB_DOMAIN, HUB_STREAM_CONFIGS, siteDomain } from '@edgefarm/proto';
import { GiveUp, freePort, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import { TcpProxy } from './proxy.js';
import { CACHE } from './env.js';

/** The nats-server hack/build-binaries.sh built. */
export const NATS_SERVER = path.join(CACHE.bin, 'nats-server');

export interface NatsPairOptions {
  /** Directory for configs, stores and logs (created). */
  dir: string;
  site?: string;
}

interface ServerSpec {
  name: string;
  configFile: string;
  logFile: string;
  clientPort: number;
  monitorPort: number;
}

async function startServer(spec: ServerSpec): Promise<ManagedProcess> {
  const p = spawnLogged(spec.name, NATS_SERVER, ['-c', spec.configFile], { logFile: spec.logFile });
  await waitFor(
    `${spec.name} healthz`,
    async () => {
      if (!p.alive()) throw new GiveUp(`${spec.name} exited: ${p.tail(10)}`);
      const res = await fetch(`http://127.0.0.1:${spec.monitorPort}/healthz?js-enabled-only=true`);
      return res.ok;
    },
    20_000,
  );
  return p;
}

export class NatsPair {
  hub: ManagedProcess | undefined;
  site: ManagedProcess | undefined;
  /** The leaf link: hub's leafnode port behind it, the site dials it. */
  proxy!: TcpProxy;
  private hubSpec!: ServerSpec;
  private siteSpec!: ServerSpec;
  leafPort = 0;

  private constructor(
    readonly dir: string,
    readonly siteName: string,
  ) {}

  static async start(options: NatsPairOptions): Promise<NatsPair> {
    const pair = new NatsPair(options.dir, options.site ?? 'test');
    try {
      await pair.init();
    } catch (err) {
      await pair.stop();
      throw err;
    }
    return pair;
  }

  get hubUrl(): string {
    return `nats://127.0.0.1:${this.hubSpec.clientPort}`;
  }
  get siteUrl(): string {
    return `nats://127.0.0.1:${this.siteSpec.clientPort}`;
  }

  private async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const [hubPort, hubMon, leafPort, sitePort, siteMon] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    this.leafPort = leafPort;
    this.proxy = new TcpProxy(leafPort);
    const proxyPort = await this.proxy.start();
    this.hubSpec = {
      name: 'nats-hub',
      configFile: path.join(this.dir, 'hub.conf'),
      logFile: path.join(this.dir, 'hub.log'),
      clientPort: hubPort,
      monitorPort: hubMon,
    };
    this.siteSpec = {
      name: 'nats-site',
      configFile: path.join(this.dir, 'site.conf'),
      logFile: path.join(this.dir, 'site.log'),
      clientPort: sitePort,
      monitorPort: siteMon,
    };
    await writeFile(
      this.hubSpec.configFile,
      [
        'server_name: hub',
        `listen: "127.0.0.1:${hubPort}"`,
        `http: "127.0.0.1:${hubMon}"`,
        'ping_interval: "2s"',
        'ping_max: 2',
        `jetstream { store_dir: "${path.join(this.dir, 'hub-js')}", domain: "${HUB_DOMAIN}" }`,
        // advertise the proxy: otherwise the hub tells leaves its own leafnode address and they redial it directly
        `leafnodes { listen: "127.0.0.1:${leafPort}", advertise: "127.0.0.1:${proxyPort}" }`,
        '',
      ].join('\n'),
    );
    await writeFile(
      this.siteSpec.configFile,
      [
        `server_name: site-${this.siteName}`,
        `listen: "127.0.0.1:${sitePort}"`,
        `http: "127.0.0.1:${siteMon}"`,
        'ping_interval: "2s"',
        'ping_max: 2',
        `jetstream { store_dir: "${path.join(this.dir, 'site-js')}", domain: "${siteDomain(this.siteName)}" }`,
        `leafnodes { reconnect: "1s", remotes: [ { url: "nats-leaf://127.0.0.1:${proxyPort}" } ] }`,
        '',
      ].join('\n'),
    );
    this.hub = await startServer(this.hubSpec);
    this.site = await startServer(this.siteSpec);
    await this.waitLinked();
  }

  /** Resolves once the hub sees the site's leaf connection. */
  async waitLinked(timeoutMs = 20_000): Promise<void> {
    await waitFor(
      'leaf link',
      async () => {
        const res = await fetch(`http://127.0.0.1:${this.hubSpec.monitorPort}/leafz`);
        const body = (await res.json()) as { leafnodes?: number };
        return (body.leafnodes ?? 0) > 0;
      },
      timeoutMs,
    );
  }

  async stopHub(): Promise<void> {
    await this.hub?.stop();
  }

  async startHub(): Promise<void> {
    this.hub = await startServer(this.hubSpec);
  }

  /** Stops the site server (SIGKILL when `kill`, as a crash would); startSite() brings it back on the same ports. */
  async stopSite(kill = false): Promise<void> {
    if (kill && this.site?.alive()) {
      process.kill(this.site.pid, 'SIGKILL');
      await this.site.exited;
    } else await this.site?.stop();
  }

  async startSite(): Promise<void> {
    this.site = await startServer(this.siteSpec);
  }

  async stop(): Promise<void> {
    await this.site?.stop().catch(() => undefined);
    await this.hub?.stop().catch(() => undefined);
    await this.proxy?.stop().catch(() => undefined);
  }

  connectHub(): Promise<NatsConnection> {
    return connect({ servers: this.hubUrl, name: 'test hub client' });
  }
  connectSite(): Promise<NatsConnection> {
    return connect({ servers: this.siteUrl, name: 'test site client' });
  }
}

/**
 * Creates the hub streams the provider owns (EF_DESIRED, EF_STATUS) as the provider would: last value per subject.
 * For tests that run the agent without a provider.
 */
export async function createHubStreams(hub: NatsConnection): Promise<JetStreamManager> {
  const jsm = await jetstreamManager(hub);
  for (const c of HUB_STREAM_CONFIGS) {
    const cfg = { ...c, subjects: [...c.subjects], num_replicas: 1 } as Partial<StreamConfig> & { name: string };
    try {
      await jsm.streams.add(cfg);
    } catch {
      await jsm.streams.update(cfg.name, cfg);
    }
  }
  return jsm;
}

/** A NatsPair in a temporary directory with a connection to its hub: the bed of a test file that needs only a hub. */
export class HubFixture {
  private constructor(
    readonly dir: string,
    readonly pair: NatsPair,
    readonly nc: NatsConnection,
  ) {}

  /** Starts it in a new directory under the system's temp dir named `prefix…`. */
  static async start(prefix: string): Promise<HubFixture> {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    const pair = await NatsPair.start({ dir });
    try {
      return new HubFixture(dir, pair, await pair.connectHub());
    } catch (err) {
      await pair.stop();
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Closes the connection, stops both servers and removes the directory. */
  async stop(): Promise<void> {
    await this.nc.close();
    await this.pair.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
