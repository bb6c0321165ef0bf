/**
 * The site's configuration as a join writes it: {@link renderSite} is the one renderer of nats-site.conf (through
 * @edgefarm/identity renderSiteConfig) and agent.env, used by `edgefarm join` (join.ts joinFiles) and by
 * `edgefarm site config NODE`, which prints it for an admin from the cloud side (the credentials file named by path,
 * never embedded).
 */
import path from 'node:path';
import { createUser } from '@nats-io/nkeys';
import { isIdentityInputError, renderSiteConfig } from '@edgefarm/identity';
import { FLEET_CONFIGMAP, identityOf } from '@edgefarm/registrar';
import { isUserPublicKey } from '@edgefarm/proto';
import { kube, nodeArg, type AdminContext } from './admin.js';
import { CliError, EXIT } from './errors.js';
import { structured, type Format } from './output.js';

/** The fleet ConfigMap's key with the hub's leaf URLs (comma-separated; the registrar's EF_HUB_LEAF_URLS). */
export const HUB_LEAF_URLS_KEY = 'hubLeafUrls';

/** The site's own listeners and store (`join --listen/--monitor/--store-dir`). */
export interface SiteSettings {
  listen: string;
  /** undefined: no monitoring listener. */
  monitor?: string;
  storeDir: string;
}

export interface SiteIdentity {
  node: string;
  wireId: string;
  hubLeafUrls: string[];
  agentPublicKey: string;
}

/** nats-site.conf and agent.env of a join directory `dir`, naming its other files by their paths there. */
export function renderSite(dir: string, id: SiteIdentity, o: SiteSettings): { siteConfig: string; agentEnv: string } {
  const at = (f: string) => path.join(dir, f);
  const siteConfig = renderSiteConfig({
    node: id.node,
    wireId: id.wireId,
    listen: o.listen,
    ...(o.monitor ? { monitor: o.monitor } : {}),
    storeDir: o.storeDir,
    hubLeafUrls: id.hubLeafUrls,
    credsFile: at('node.creds'),
    caFile: at('ca.pem'),
    agentPublicKey: id.agentPublicKey,
  });
  const env = {
    EF_NODE_NAME: id.node,
    EF_SITE: id.node,
    EF_NATS_URL: `nats://${o.listen}`,
    EF_NODE_WIRE_ID: id.wireId,
    EF_NATS_SEED_FILE: at('agent.nk'),
    EF_IDENTITY_DIR: dir,
  };
  const agentEnv = Object.entries(env)
    .map(([k, v]) => `${k}=${v}\n`)
    .join('');
  return { siteConfig, agentEnv };
}

/** Comma- or space-separated leaf URLs (the ConfigMap's value, or --hub-leaf-urls). */
export function splitUrls(text: string): string[] {
  return text.split(/[,\s]+/).filter(Boolean);
}

export interface SiteConfigOptions extends SiteSettings {
  dir: string;
  /** Overrides the fleet ConfigMap's hubLeafUrls. */
  hubLeafUrls?: string;
  /** The agent's public key at the site (agent.nk's); unknown to the cloud, a placeholder without it. */
  agentKey?: string;
  format: Format;
}

/** Stand-ins for what only the site knows, put in the rendered text where a made-up key was rendered. */
export const PLACEHOLDERS = { agentKey: 'AGENT_PUBLIC_KEY', nodeKey: 'NODE_PUBLIC_KEY' } as const;

/** `edgefarm site config NODE`: what a join writes for NODE, from its EdgeNode and the fleet ConfigMap. */
export async function siteConfig(ctx: AdminContext, node: string, o: SiteConfigOptions): Promise<void> {
  nodeArg(node);
  if (o.agentKey !== undefined && !isUserPublicKey(o.agentKey))
    throw new CliError(EXIT.usage, `--agent-key ${JSON.stringify(o.agentKey.slice(0, 60))}: expected a user public key (U...)`);
  if (!path.isAbsolute(o.dir)) throw new CliError(EXIT.usage, `--dir ${JSON.stringify(o.dir.slice(0, 60))}: expected an absolute path`);
  let urls: string[];
  if (o.hubLeafUrls !== undefined) urls = splitUrls(o.hubLeafUrls);
  else {
    const data = await kube('reading the fleet ConfigMap', () => ctx.kube.getConfigMap(ctx.namespace, FLEET_CONFIGMAP));
    const text = data?.[HUB_LEAF_URLS_KEY];
    if (!text)
      throw new CliError(
        EXIT.notFound,
        `ConfigMap ${FLEET_CONFIGMAP} in ${ctx.namespace} has no ${HUB_LEAF_URLS_KEY} (the install writes it); or give --hub-leaf-urls`,
      );
    urls = splitUrls(text);
  }
  const edgeNode = await kube('reading the EdgeNode', () => ctx.kube.getEdgeNode(node));
  if (!edgeNode) ctx.err(`note: EdgeNode ${node} does not exist (a join creates it)\n`);
  const joinedKey = identityOf(edgeNode)?.publicKey;
  if (!joinedKey) ctx.err(`note: node ${node} has not joined: its key (${PLACEHOLDERS.nodeKey}) is made at the join\n`);
  if (!o.agentKey) ctx.err(`note: the agent's key is made at the site (agent.nk): --agent-key fills in ${PLACEHOLDERS.agentKey}\n`);
  // what only the site knows is rendered as a made-up key, then named: the renderer stays the only one
  const stand = { node: createUser().getPublicKey(), agent: createUser().getPublicKey() };
  let rendered: { siteConfig: string; agentEnv: string };
  try {
    rendered = renderSite(
      o.dir,
      { node, wireId: joinedKey ?? stand.node, hubLeafUrls: urls, agentPublicKey: o.agentKey ?? stand.agent },
      { listen: o.listen, ...(o.monitor ? { monitor: o.monitor } : {}), storeDir: o.storeDir },
    );
  } catch (err) {
    if (isIdentityInputError(err)) throw new CliError(EXIT.usage, err.message, { cause: err });
    throw err;
  }
  const name = (t: string) => t.replaceAll(stand.node, PLACEHOLDERS.nodeKey).replaceAll(stand.agent, PLACEHOLDERS.agentKey);
  const files = { 'nats-site.conf': name(rendered.siteConfig), 'agent.env': name(rendered.agentEnv) };
  const data = structured(o.format, { node, wireId: joinedKey ?? null, dir: o.dir, hubLeafUrls: urls, files });
  if (data) return ctx.out(data);
  ctx.out(
    Object.entries(files)
      .map(([f, text]) => `# ${path.join(o.dir, f)}\n${text}`)
      .join('\n'),
  );
}
