/**
 * The configuration of a hub nats-server (decision 0008): operator mode with a full resolver (every account JWT
 * preloaded; pushed updates stored in the resolver's directory and synced between members through the system
 * account), JetStream in domain `hub`, TLS from the fleet CA on the client, leaf and cluster ports, the monitoring
 * listener on loopback only, server-wide pings every 2 s (a silent leaf is closed in ~5 s), and for a 3- or 5-member
 * hub the cluster block routing to the other members.
 *
 * Render it from the JWTs made at init (store.ts), never from freshly encoded ones: the resolver keeps a pushed JWT
 * (a revocation) over an OLDER preload, but a newer preload without the revocation would replace it.
 */
import { decode, type Account } from '@nats-io/jwt';
import { HUB_DOMAIN } from '@edgefarm/proto';
import { IdentityInputError } from './errors.js';
import { confString, hostPort, isLoopback, publicKey, serverUrl } from './keys.js';

export interface HubTlsFiles {
  /** The hub's serving certificate (chained to the fleet CA; for a cluster also a client certificate). */
  certFile: string;
  keyFile: string;
  /** The fleet CA (verifies the other members of a cluster). */
  caFile: string;
}

export interface HubConfigOptions {
  /**
   * Unique per member (JetStream cluster peers are named by it); or an environment reference such as `$POD_NAME`,
   * which nats-server expands at start: one configuration for every member of a StatefulSet.
   */
  serverName: string;
  /** Client listener `host:port` (the provider, the registrar's claims pusher). */
  listen: string;
  /** Monitoring listener `host:port`: must be loopback, unless monitorInPod. */
  monitor: string;
  /**
   * The server runs in a pod (manifests/base/hub.yaml): the monitoring listener may be on the pod's address, where
   * the kubelet probes /healthz (the pod's network is not the host's; restrict it with a NetworkPolicy).
   */
  monitorInPod?: boolean;
  /** Leafnode listener `host:port` (sites dial it; the hub tells them no other address: `no_advertise`). */
  leaf: { listen: string };
  /**
   * For a 3- or 5-member hub: this member's cluster listener and `nats-route://host:port` of the other members, or of
   * every member (a server ignores its own route: one configuration for a StatefulSet).
   */
  cluster?: { name?: string; listen: string; routes: string[] };
  tls: HubTlsFiles;
  /** JetStream store directory. */
  storeDir: string;
  /** The operator JWT file. */
  operatorJwtFile: string;
  /** The system account's public key. */
  systemAccount: string;
  /** The full resolver's directory (pushed JWTs live here). */
  resolverDir: string;
  /** Account public key -> account JWT, for every account of the fleet (the system account included). */
  preload: Record<string, string>;
  /** Server-wide ping interval (default 2 s, 2 missed pings close a connection). */
  pingIntervalSeconds?: number;
}

/** The cluster's name when none is given. */
export const HUB_CLUSTER_NAME = 'ef-hub';

const q = (s: string) => `"${s}"`;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** An environment variable nats-server expands in its configuration (unquoted). */
const ENV_REF = /^\$[A-Z_][A-Z0-9_]{0,63}$/;

export function renderHubConfig(o: HubConfigOptions): string {
  if (typeof o.serverName !== 'string' || !(NAME.test(o.serverName) || ENV_REF.test(o.serverName)))
    throw new IdentityInputError('serverName', 'not a server name or an environment reference ($POD_NAME)');
  const serverName = ENV_REF.test(o.serverName) ? o.serverName : q(o.serverName);
  hostPort(o.listen, 'listen');
  const mon = hostPort(o.monitor, 'monitor');
  if (!isLoopback(mon.host) && o.monitorInPod !== true)
    throw new IdentityInputError('monitor', 'the monitoring listener must be on loopback (or the server runs in a pod)');
  hostPort(o.leaf.listen, 'leaf.listen');
  const system = publicKey('account', o.systemAccount, 'systemAccount');
  const preload = checkedPreload(o.preload, system);
  const ping = o.pingIntervalSeconds ?? 2;
  if (!Number.isInteger(ping) || ping < 1 || ping > 600) throw new IdentityInputError('pingIntervalSeconds', 'from 1 to 600');
  const tls = `tls {
    cert_file: ${q(confString(o.tls.certFile, 'tls.certFile'))}
    key_file: ${q(confString(o.tls.keyFile, 'tls.keyFile'))}
    ca_file: ${q(confString(o.tls.caFile, 'tls.caFile'))}
    timeout: 2
  }`;
  return `# Hub member ${o.serverName} (rendered by @edgefarm/identity renderHubConfig).
server_name: ${serverName}
listen: ${q(o.listen)}
http: ${q(o.monitor)}
ping_interval: "${ping}s"
ping_max: 2
${tls.replaceAll('\n  ', '\n')}
jetstream {
  domain: ${q(HUB_DOMAIN)}
  store_dir: ${q(confString(o.storeDir, 'storeDir'))}
}
leafnodes {
  listen: ${q(o.leaf.listen)}
  # sites dial the URLs they were given (every member), not gossiped ones
  no_advertise: true
  ${tls}
}
${clusterBlock(o.cluster, tls)}operator: ${q(confString(o.operatorJwtFile, 'operatorJwtFile'))}
system_account: ${system}
resolver: {
  type: full
  dir: ${q(confString(o.resolverDir, 'resolverDir'))}
  allow_delete: false
  interval: "2m"
  timeout: "1.9s"
}
resolver_preload: {
${Object.entries(preload)
  .map(([k, jwt]) => `  ${k}: ${q(jwt)}`)
  .join('\n')}
}
`;
}

function clusterBlock(c: HubConfigOptions['cluster'], tls: string): string {
  if (c === undefined) return '';
  const name = c.name ?? HUB_CLUSTER_NAME;
  if (!NAME.test(name)) throw new IdentityInputError('cluster.name', 'not a cluster name');
  hostPort(c.listen, 'cluster.listen');
  if (!Array.isArray(c.routes) || c.routes.length < 2 || c.routes.length > 5) {
    throw new IdentityInputError('cluster.routes', 'the other members of a 3- or 5-member hub, or all of them: 2 to 5 routes');
  }
  const routes = c.routes.map((r, i) => serverUrl(r, ['nats-route'], `cluster.routes[${i}]`));
  return `cluster {
  name: ${q(name)}
  listen: ${q(c.listen)}
  no_advertise: true
  routes: [ ${routes.map(q).join(', ')} ]
  ${tls}
}
`;
}

/** Every preloaded JWT must be a validly signed account JWT for the key it is listed under; the system account too. */
function checkedPreload(preload: Record<string, string>, system: string): Record<string, string> {
  const entries = Object.entries(preload ?? {});
  if (entries.length === 0 || entries.length > 16) throw new IdentityInputError('preload', 'from 1 to 16 account JWTs');
  for (const [key, jwt] of entries) {
    publicKey('account', key, 'preload key');
    let sub: string | undefined;
    let type: string | undefined;
    try {
      const c = decode<Account>(jwt);
      sub = c.sub;
      type = c.nats.type;
    } catch (err) {
      throw new IdentityInputError(`preload ${key}`, 'not a validly signed JWT', { cause: err });
    }
    if (type !== 'account' || sub !== key) throw new IdentityInputError(`preload ${key}`, 'not the account JWT of this key');
  }
  if (!(system in preload)) throw new IdentityInputError('preload', 'lacks the system account');
  return preload;
}
