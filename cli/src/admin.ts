/**
 * The admin's commands: join tokens (`edgefarm token create|list|delete`) and edge nodes (`edgefarm node
 * add|list|revoke|delete`), over the Kubernetes API as the user running them.
 */
import {
  FLEET_KEYS,
  FLEET_NAMESPACE,
  MAX_TOKEN_TTL_SECONDS,
  caHashOf,
  formatJoinToken,
  identityOf,
  isNodeName,
  isTokenId,
  joinTokenSecret,
  newJoinToken,
  readTokenSecret,
  tokenSecretName,
  FLEET_CONFIGMAP,
} from '@edgefarm/registrar';
import { CliError, EXIT } from './errors.js';
import type { CliKube } from './kube.js';
import { age, structured, table, type Format, type Streams } from './output.js';

export interface AdminContext extends Streams {
  kube: CliKube;
  namespace: string;
  now: () => number;
}

export function nodeArg(name: string): string {
  if (!isNodeName(name)) throw new CliError(EXIT.usage, `"${name}" is not a node name (a DNS subdomain: lower case, digits, '-', '.')`);
  return name;
}

export async function kube<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw new CliError(EXIT.kubeFailed, `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** The fleet CA's hash and the registrar URL from the ConfigMap the install writes. */
export async function fleet(ctx: AdminContext): Promise<{ caHash: string; registrarUrl: string }> {
  const data = await kube('reading the fleet ConfigMap', () => ctx.kube.getConfigMap(ctx.namespace, FLEET_CONFIGMAP));
  const ca = data?.[FLEET_KEYS.ca];
  const registrarUrl = data?.[FLEET_KEYS.registrarUrl];
  if (!ca || !registrarUrl) {
    throw new CliError(
      EXIT.notFound,
      `ConfigMap ${FLEET_CONFIGMAP} in ${ctx.namespace} lacks ${FLEET_KEYS.ca} or ${FLEET_KEYS.registrarUrl} (the install writes it)`,
    );
  }
  try {
    return { caHash: caHashOf(ca), registrarUrl };
  } catch (err) {
    throw new CliError(EXIT.failed, `ConfigMap ${FLEET_CONFIGMAP}: ${FLEET_KEYS.ca} is not a PEM certificate`, { cause: err });
  }
}

export async function tokenCreate(
  ctx: AdminContext,
  node: string,
  ttlSeconds: number,
  format: Format,
  labels: Record<string, string> = {},
): Promise<void> {
  nodeArg(node);
  if (ttlSeconds > MAX_TOKEN_TTL_SECONDS) throw new CliError(EXIT.usage, `--ttl: at most ${MAX_TOKEN_TTL_SECONDS / 3600}h`);
  const { caHash, registrarUrl } = await fleet(ctx);
  const expiration = new Date(ctx.now() + ttlSeconds * 1000);
  for (let attempt = 0; attempt < 5; attempt++) {
    const token = newJoinToken(caHash);
    const created = await kube('creating the token Secret', () =>
      ctx.kube.createSecret(ctx.namespace, joinTokenSecret(token, node, expiration, ctx.namespace, labels)),
    );
    if (!created) continue;
    const text = formatJoinToken(token);
    const command = `edgefarm join --token ${text} --hub ${registrarUrl}`;
    const data = structured(format, { id: token.id, node, token: text, expiration: expiration.toISOString(), joinCommand: command });
    if (data) ctx.out(data);
    else
      ctx.out(
        `token ${token.id} for node ${node}, valid until ${expiration.toISOString()} (single use):\n\n  ${text}\n\nat the site, as root:\n\n  ${command}\n`,
      );
    return;
  }
  throw new CliError(EXIT.failed, 'could not find a free token id in 5 attempts');
}

export async function tokenList(ctx: AdminContext, format: Format): Promise<void> {
  const secrets = await kube('listing join tokens', () => ctx.kube.listTokenSecrets(ctx.namespace));
  const now = ctx.now();
  const tokens = secrets.flatMap((s) => {
    try {
      const r = readTokenSecret(s);
      return [
        {
          id: r.id,
          node: r.node,
          expiration: r.expiration.toISOString(),
          expired: r.expiration.getTime() <= now,
          secret: s.metadata?.name ?? '',
        },
      ];
    } catch {
      return [{ id: s.metadata?.name ?? '?', node: '?', expiration: '', expired: false, secret: s.metadata?.name ?? '', malformed: true }];
    }
  });
  tokens.sort((a, b) => a.node.localeCompare(b.node) || a.id.localeCompare(b.id));
  const data = structured(format, tokens);
  if (data) return ctx.out(data);
  const headers = ['ID', 'NODE', 'EXPIRES', 'STATUS', ...(format === 'wide' ? ['SECRET'] : [])];
  const status = (t: (typeof tokens)[number]) => ('malformed' in t ? 'malformed' : t.expired ? 'expired' : 'valid');
  const left = (t: (typeof tokens)[number]) => (t.expiration ? (t.expired ? '-' : age(Date.parse(t.expiration) - now)) : '?');
  ctx.out(
    table(
      headers,
      tokens.map((t) => [t.id, t.node, left(t), status(t), ...(format === 'wide' ? [t.secret] : [])]),
    ),
  );
}

export async function tokenDelete(ctx: AdminContext, id: string): Promise<void> {
  if (!isTokenId(id)) throw new CliError(EXIT.usage, `"${id}" is not a token id (6 characters of [a-z0-9])`);
  const deleted = await kube('deleting the token', () => ctx.kube.deleteSecret(ctx.namespace, tokenSecretName(id)));
  if (!deleted) throw new CliError(EXIT.notFound, `token ${id} does not exist`);
  ctx.out(`token ${id} deleted\n`);
}

export async function nodeAdd(ctx: AdminContext, node: string, labels: Record<string, string>): Promise<void> {
  nodeArg(node);
  const created = await kube('creating the EdgeNode', () => ctx.kube.createEdgeNode(node, labels));
  if (!created) throw new CliError(EXIT.nameTaken, `EdgeNode ${node} exists already`);
  ctx.out(`edgenode ${node} created; make a join token with: edgefarm token create ${node}\n`);
}

export async function nodeList(ctx: AdminContext, format: Format): Promise<void> {
  const nodes = await kube('listing EdgeNodes', () => ctx.kube.listEdgeNodes());
  const now = ctx.now();
  const rows = nodes
    .map((n) => {
      const id = identityOf(n);
      return {
        name: n.metadata?.name ?? '',
        connected: n.status?.connected === true,
        lastHeartbeatTime: n.status?.lastHeartbeatTime ?? null,
        publicKey: id?.publicKey ?? null,
        credentialsExpireAt: id?.expiresAt ?? null,
        agentVersion: n.status?.agentVersion ?? null,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const data = structured(format, rows);
  if (data) return ctx.out(data);
  const expiry = (r: (typeof rows)[number]) => {
    if (!r.credentialsExpireAt) return 'not joined';
    const left = Date.parse(r.credentialsExpireAt) - now;
    return left <= 0 ? 'expired' : `in ${age(left)}`;
  };
  const headers = ['NAME', 'CONNECTED', 'CREDENTIALS', ...(format === 'wide' ? ['LAST-HEARTBEAT', 'AGENT', 'KEY'] : [])];
  ctx.out(
    table(
      headers,
      rows.map((r) => [
        r.name,
        String(r.connected),
        expiry(r),
        ...(format === 'wide' ? [r.lastHeartbeatTime ?? '-', r.agentVersion ?? '-', r.publicKey ?? '-'] : []),
      ]),
    ),
  );
}

/** Adds the node's key to the revocation list (the revoker closes its link), then clears its identity. */
export async function nodeRevoke(ctx: AdminContext, node: string): Promise<void> {
  nodeArg(node);
  const edgeNode = await kube('reading the EdgeNode', () => ctx.kube.getEdgeNode(node));
  if (!edgeNode) throw new CliError(EXIT.notFound, `EdgeNode ${node} does not exist`);
  const id = identityOf(edgeNode);
  if (!id) throw new CliError(EXIT.notFound, `node ${node} has no identity to revoke (it has not joined)`);
  await kube('adding the key to the revocation list', () => ctx.kube.addRevocation(ctx.namespace, id.publicKey, new Date(ctx.now())));
  await kube("clearing the node's identity", () => ctx.kube.clearIdentity(node));
  ctx.out(`node ${node}: key ${id.publicKey} revoked; it can join again with a new token (edgefarm token create ${node})\n`);
}

/** Deletes the EdgeNode, revoking its key first when it has one (the provider's revoker would add it as well). */
export async function nodeDelete(ctx: AdminContext, node: string): Promise<void> {
  nodeArg(node);
  const edgeNode = await kube('reading the EdgeNode', () => ctx.kube.getEdgeNode(node));
  if (!edgeNode) throw new CliError(EXIT.notFound, `EdgeNode ${node} does not exist`);
  const id = identityOf(edgeNode);
  if (id)
    await kube('adding the key to the revocation list', () => ctx.kube.addRevocation(ctx.namespace, id.publicKey, new Date(ctx.now())));
  await kube('deleting the EdgeNode', () => ctx.kube.deleteEdgeNode(node));
  ctx.out(`edgenode ${node} deleted${id ? ` (key ${id.publicKey} revoked)` : ''}\n`);
}

export const DEFAULT_NAMESPACE = FLEET_NAMESPACE;
