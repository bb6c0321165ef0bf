/**
 * The nats-server processes of a {@link SecureFabric}: hub members and site servers, configured by
 * @edgefarm/identity's renderers exactly as the product is, on free 127.0.0.1 ports, stopped by their own PID.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderHubConfig, renderSiteConfig, type Fleet, type SiteConfigOptions } from '@edgefarm/identity';
import { NATS_SERVER } from './nats.js';
import { GiveUp, freePort, spawnLogged, waitFor, type ManagedProcess } from './processes.js';
import type { FleetTls } from './fleet-tls.js';

/** One hub server. */
export interface HubMember {
  index: number;
  name: string;
  dir: string;
  clientPort: number;
  leafPort: number;
  monitorPort: number;
  clusterPort: number;
  configFile: string;
  logFile: string;
  process: ManagedProcess | undefined;
  /** `tls://127.0.0.1:<client port>` */
  clientUrl: string;
  /** `tls://127.0.0.1:<leaf port>` */
  leafUrl: string;
}

/** One site server (the node's own nats-server). */
export interface SiteServer {
  node: string;
  dir: string;
  clientPort: number;
  monitorPort: number;
  configFile: string;
  logFile: string;
  process: ManagedProcess;
  /** `nats://127.0.0.1:<client port>` */
  url: string;
}

/** Starts nats-server on a config file and waits for its /healthz (JetStream enabled). */
export async function startNats(name: string, configFile: string, logFile: string, monitorPort: number): Promise<ManagedProcess> {
  const p = spawnLogged(name, NATS_SERVER, ['-c', configFile], { logFile });
  try {
    await waitFor(
      `${name} healthz`,
      async () => {
        if (!p.alive()) throw new GiveUp(`${name} exited: ${p.tail(15)}`);
        const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz?js-enabled-only=true`);
        return res.ok;
      },
      20_000,
    );
  } catch (err) {
    await p.stop().catch(() => undefined);
    throw err;
  }
  return p;
}

/** Ports and paths of `count` hub members under `dir` (nothing started). */
export async function planHub(dir: string, count: number): Promise<HubMember[]> {
  const members: HubMember[] = [];
  for (let i = 0; i < count; i++) {
    const name = count === 1 ? 'hub' : `hub-${i + 1}`;
    const [clientPort, leafPort, monitorPort, clusterPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const mdir = path.join(dir, name);
    members.push({
      index: i,
      name,
      dir: mdir,
      clientPort,
      leafPort,
      monitorPort,
      clusterPort,
      configFile: path.join(mdir, 'nats.conf'),
      logFile: path.join(mdir, 'nats.log'),
      process: undefined,
      clientUrl: `tls://127.0.0.1:${clientPort}`,
      leafUrl: `tls://127.0.0.1:${leafPort}`,
    });
  }
  return members;
}

/** Writes a member's configuration (renderHubConfig from the fleet's init-time JWTs) and starts it. */
export async function startHubMember(m: HubMember, all: HubMember[], fleet: Fleet, tls: FleetTls, operatorJwtFile: string): Promise<void> {
  await mkdir(m.dir, { recursive: true });
  const preload = Object.fromEntries(Object.entries(fleet.keys.accounts).map(([role, key]) => [key, fleet.jwts.accounts[role as 'sites']]));
  const conf = renderHubConfig({
    serverName: m.name,
    listen: `127.0.0.1:${m.clientPort}`,
    monitor: `127.0.0.1:${m.monitorPort}`,
    leaf: { listen: `127.0.0.1:${m.leafPort}` },
    ...(all.length > 1
      ? {
          cluster: {
            listen: `127.0.0.1:${m.clusterPort}`,
            routes: all.filter((o) => o !== m).map((o) => `nats-route://127.0.0.1:${o.clusterPort}`),
          },
        }
      : {}),
    tls: { certFile: tls.certFile, keyFile: tls.keyFile, caFile: tls.caFile },
    storeDir: path.join(m.dir, 'js'),
    operatorJwtFile,
    systemAccount: fleet.keys.accounts.system,
    resolverDir: path.join(m.dir, 'jwt'),
    preload,
  });
  await writeFile(m.configFile, conf);
  m.process = await startNats(`nats-${m.name}`, m.configFile, m.logFile, m.monitorPort);
}

/** Resolves once every member sees a JetStream meta leader (a cluster can create streams). */
export async function waitMetaLeader(members: HubMember[]): Promise<void> {
  if (members.length < 2) return;
  for (const m of members) {
    await waitFor(
      `${m.name} meta leader`,
      async () => {
        const res = await fetch(`http://127.0.0.1:${m.monitorPort}/jsz`);
        const body = (await res.json()) as { meta_cluster?: { leader?: string } };
        return !!body.meta_cluster?.leader;
      },
      30_000,
      100,
    );
  }
}

export interface SitePlan {
  node: string;
  wireId: string;
  credsFile: string;
  agentPublicKey: string;
  /** The CA the site verifies the hub with; undefined: no tls block (the hub's tls_required still applies). */
  caFile?: string;
  hubLeafUrls: string[];
}

/** Writes a site's configuration (renderSiteConfig) under `dir` and starts it. */
export async function startSiteServer(dir: string, plan: SitePlan): Promise<SiteServer> {
  await mkdir(dir, { recursive: true });
  const [clientPort, monitorPort] = [await freePort(), await freePort()];
  const o: SiteConfigOptions = {
    node: plan.node,
    wireId: plan.wireId,
    listen: `127.0.0.1:${clientPort}`,
    monitor: `127.0.0.1:${monitorPort}`,
    storeDir: path.join(dir, 'js'),
    hubLeafUrls: plan.hubLeafUrls,
    credsFile: plan.credsFile,
    ...(plan.caFile ? { caFile: plan.caFile } : {}),
    agentPublicKey: plan.agentPublicKey,
  };
  const configFile = path.join(dir, 'nats.conf');
  const logFile = path.join(dir, 'nats.log');
  await writeFile(configFile, renderSiteConfig(o));
  const process = await startNats(`nats-site-${plan.node}`, configFile, logFile, monitorPort);
  return { node: plan.node, dir, clientPort, monitorPort, configFile, logFile, process, url: `nats://127.0.0.1:${clientPort}` };
}

/** A leaf connection as the hub's /leafz lists it. */
export interface LeafInfo {
  /** The remote's server name: a site server's is its node's name. */
  name: string;
  account: string;
  ip?: string;
  port?: number;
}

/** The leaf connections of a hub member. */
export async function hubLeafs(m: HubMember): Promise<LeafInfo[]> {
  const res = await fetch(`http://127.0.0.1:${m.monitorPort}/leafz`);
  const body = (await res.json()) as { leafs?: LeafInfo[] };
  return body.leafs ?? [];
}
