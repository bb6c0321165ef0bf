import { isIP } from 'node:net';

/** Provider configuration: parsed and validated from an environment-like record, with defaults. */
export interface ProviderConfig {
  natsUrl: string;
  nodes: string[];
  httpPort: number;
  kubeletPort: number;
  /** Address of this provider that the apiserver can reach: the Nodes' InternalIP. */
  kubeletAddress: string;
  logLevel: string;
  /** Stream replicas on the hub (3 for a 3-node hub cluster). */
  hubReplicas: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function port(env: Record<string, string | undefined>, name: string, dflt: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ConfigError(`${name}="${raw}" is not a TCP port`);
  return n;
}

function address(raw: string): string {
  if (isIP(raw) === 0) throw new ConfigError(`EF_KUBELET_ADDRESS="${raw}" is not an IP address`);
  return raw;
}

export function parseConfig(env: Record<string, string | undefined>): ProviderConfig {
  const nodes = (env.EF_NODES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (nodes.length === 0) throw new ConfigError('EF_NODES is required: a comma-separated list of edge node names');
  for (const n of nodes) {
    if (n.length > 253 || !DNS_SUBDOMAIN.test(n)) throw new ConfigError(`EF_NODES: "${n}" is not a valid Kubernetes node name`);
  }
  if (new Set(nodes).size !== nodes.length) throw new ConfigError('EF_NODES lists a node twice');
  const replicas = Number(env.EF_HUB_REPLICAS ?? '1');
  if (![1, 3, 5].includes(replicas)) throw new ConfigError(`EF_HUB_REPLICAS="${env.EF_HUB_REPLICAS}" must be 1, 3 or 5`);
  return {
    natsUrl: env.EF_NATS_URL || 'nats://127.0.0.1:4222',
    nodes,
    httpPort: port(env, 'EF_HTTP_PORT', 10255),
    kubeletPort: port(env, 'EF_KUBELET_PORT', 10250),
    kubeletAddress: address(env.EF_KUBELET_ADDRESS || env.POD_IP || '127.0.0.1'),
    logLevel: env.EF_LOG_LEVEL || 'info',
    hubReplicas: replicas,
  };
}
