/**
 * The configuration of a site's own nats-server (decision 0008): JetStream in the site's domain with its file store
 * capped (max_file_store, 1 GiB by default: the size the agent keeps free for it, docs/site.md#disk), one static account
 * with JetStream whose only user is the agent (an nkey, limited to proto's agentLocalPermissions; a client without
 * credentials gets nothing), and the leaf remote that dials the hub with the node's credentials file over TLS,
 * verifying the hub against the fleet's CA, bound to that account.
 *
 * Rendered by `edgefarm join` at the site and by the test harness, from the same function.
 */
import { agentLocalPermissions, isUserPublicKey, siteDomain, type SubjectPermissions } from '@edgefarm/proto';
import { IdentityInputError } from './errors.js';
import { confString, hostPort, isLoopback, nodeName, publicKey, serverUrl } from './keys.js';

export interface SiteConfigOptions {
  /** The node's name (server name, JetStream domain). */
  node: string;
  /** The node's wire id (its public key once joined): what its permissions name. */
  wireId: string;
  /** Client listener, `host:port` (the agent connects here; loopback on a gateway). */
  listen: string;
  /** Monitoring listener, `host:port` (loopback), or undefined for none. */
  monitor?: string;
  storeDir: string;
  /**
   * JetStream's file store cap (max_file_store, bytes; default {@link DEFAULT_SITE_STORE_MAX_BYTES}): what the store may
   * grow to, a known size instead of nats-server's 75 % of whatever the disk had free when it started. The agent keeps
   * that much free beside it (EF_STORE_RESERVE, DiskPressure; docs/site.md#disk).
   */
  maxFileStoreBytes?: number;
  /** fsync every write before its ack (a gateway loses power more often than it crashes). Default true. */
  syncAlways?: boolean;
  /** The hub's leaf URLs (`tls://host:port`, every member of a hub cluster). */
  hubLeafUrls: string[];
  /** The node's credentials file (its user JWT and seed), read again at every dial. */
  credsFile: string;
  /** The fleet CA the hub's certificate must chain to; undefined only for a hub without TLS (tests). */
  caFile?: string;
  /** The agent's public nkey on this server. */
  agentPublicKey: string;
  /** Server-wide ping: a silent (cut) link is detected in ~5 s instead of minutes. Default 2 s, 2 pings. */
  pingIntervalSeconds?: number;
}

/** The site store's default cap: 1 GiB (the outbox of days offline; the desired state; an hour of Events). */
export const DEFAULT_SITE_STORE_MAX_BYTES = 1024 * 1024 * 1024;
const MIN_SITE_STORE_BYTES = 1024 * 1024;
const MAX_SITE_STORE_BYTES = 2 ** 50;

/** The account the agent and the leaf remote share on the site server. */
export const SITE_ACCOUNT = 'SITE';

const q = (s: string) => JSON.stringify(s);
const list = (a: string[]) => `[ ${a.map(q).join(', ')} ]`;

function userPermissions(p: SubjectPermissions): string {
  const lines = [
    `publish: { allow: ${list(p.pub.allow)}${p.pub.deny.length ? `, deny: ${list(p.pub.deny)}` : ''} }`,
    `subscribe: { allow: ${list(p.sub.allow)}${p.sub.deny.length ? `, deny: ${list(p.sub.deny)}` : ''} }`,
  ];
  if (p.resp) lines.push(`allow_responses: { max: ${p.resp.max}, expires: "${Math.ceil(p.resp.ttlMs / 1000)}s" }`);
  return lines.join('\n          ');
}

/**
 * Refuses what cannot be a site's configuration: a node name that is not one, a wire id other than the node's name
 * or a user nkey, a store cap that is not whole bytes from 1 MiB to 1 PiB, a monitoring listener off loopback, hub URLs other than `tls://` (or `nats-leaf://` without a CA),
 * an agent key that is not a user nkey, paths with characters a configuration cannot quote.
 */
export function renderSiteConfig(o: SiteConfigOptions): string {
  nodeName(o.node, 'node');
  if (o.wireId !== o.node && !isUserPublicKey(o.wireId)) throw new IdentityInputError('wireId', "neither the node's name nor a user nkey");
  hostPort(o.listen, 'listen');
  if (o.monitor !== undefined && !isLoopback(hostPort(o.monitor, 'monitor').host)) {
    throw new IdentityInputError('monitor', 'the monitoring listener must be on loopback');
  }
  confString(o.storeDir, 'storeDir');
  confString(o.credsFile, 'credsFile');
  if (o.caFile !== undefined) confString(o.caFile, 'caFile');
  if (!Array.isArray(o.hubLeafUrls) || o.hubLeafUrls.length < 1 || o.hubLeafUrls.length > 5) {
    throw new IdentityInputError('hubLeafUrls', 'from 1 to 5 URLs (every member of the hub)');
  }
  o.hubLeafUrls.forEach((u, i) => serverUrl(u, o.caFile ? ['tls'] : ['tls', 'nats-leaf'], `hubLeafUrls[${i}]`));
  publicKey('user', o.agentPublicKey, 'agentPublicKey');
  const ping = o.pingIntervalSeconds ?? 2;
  if (!Number.isInteger(ping) || ping < 1 || ping > 600) throw new IdentityInputError('pingIntervalSeconds', 'from 1 to 600');
  const maxStore = o.maxFileStoreBytes ?? DEFAULT_SITE_STORE_MAX_BYTES;
  if (!Number.isSafeInteger(maxStore) || maxStore < MIN_SITE_STORE_BYTES || maxStore > MAX_SITE_STORE_BYTES) {
    throw new IdentityInputError('maxFileStoreBytes', 'whole bytes from 1 MiB to 1 PiB');
  }
  const sync = o.syncAlways === false ? '' : '\n  sync_interval: always';
  const tls = o.caFile ? `\n    tls: { ca_file: ${q(o.caFile)} }` : '';
  return `# The site nats-server of edge node ${o.node} (rendered by @edgefarm/identity renderSiteConfig).
server_name: ${q(o.node)}
listen: ${q(o.listen)}
${o.monitor ? `http: ${q(o.monitor)}\n` : ''}ping_interval: "${ping}s"
ping_max: 2
jetstream {
  domain: ${q(siteDomain(o.node))}
  store_dir: ${q(o.storeDir)}
  max_file_store: ${maxStore}${sync}
}
accounts {
  ${SITE_ACCOUNT}: {
    jetstream: enabled
    users: [
      { nkey: ${o.agentPublicKey}, permissions: {
          ${userPermissions(agentLocalPermissions(o.wireId))}
      } }
    ]
  }
}
leafnodes {
  reconnect: 1
  remotes: [ {
    urls: ${list(o.hubLeafUrls)}
    credentials: ${q(o.credsFile)}
    account: ${SITE_ACCOUNT}${tls}
  } ]
}
`;
}
