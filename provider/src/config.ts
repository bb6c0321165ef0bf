import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { V1Taint } from '@kubernetes/client-node';
import { TOMBSTONE_TTL } from '@edgefarm/proto';
import { DEFAULT_TAINT } from './nodecontroller/node.js';

/** Provider configuration: parsed and validated from an environment-like record, with defaults. */
export interface ProviderConfig {
  natsUrl: string;
  httpPort: number;
  kubeletPort: number;
  /** Address of this provider that the apiserver can reach: the Nodes' InternalIP. */
  kubeletAddress: string;
  logLevel: string;
  /** Stream replicas on the hub (3 for a 3-node hub cluster). */
  hubReplicas: number;
  /** Namespace of the shard and member Leases. */
  namespace: string;
  /** This replica's name among the replicas (a DNS label). */
  identity: string;
  /** Number of shards the nodes are spread over; every replica must use the same. */
  shards: number;
  shardLeaseSeconds: number;
  /** Taints every edge Node gets besides its EdgeNode's own. */
  nodeTaints: V1Taint[];
  /** How long the hub keeps a tombstone (Nats-TTL); a site out of touch for longer relists its desired state. */
  tombstoneTtlSeconds: number;
  /**
   * The kubelet API's serving certificate and key (PEM files), and the CA that signs the clients' certificates (the
   * apiserver's kubelet-client certificate). Without a certificate the kubelet API is not served.
   */
  kubeletTls?: { certFile: string; keyFile: string; clientCAFile?: string };
  /** Kubernetes Event writes per second across every node served (burst twice that). */
  eventQps: number;
  /** Ports handed to the nodes, one each, for their node-scoped endpoints (docs/decisions/0006-kubelet-api.md). */
  kubeletNodePorts?: { from: number; to: number };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

function int(env: Record<string, string | undefined>, name: string, dflt: number, min: number, max: number, what: string): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name}="${raw}" is not ${what}`);
  return n;
}
const port = (env: Record<string, string | undefined>, name: string, dflt: number) => int(env, name, dflt, 1, 65535, 'a TCP port');

function address(raw: string): string {
  if (isIP(raw) === 0) throw new ConfigError(`EF_KUBELET_ADDRESS="${raw}" is not an IP address`);
  return raw;
}

/** `key=value:Effect` or `key:Effect`, comma-separated, as kubectl taint writes them; `none` for no taint. */
export function parseTaints(raw: string | undefined): V1Taint[] {
  if (raw === undefined || raw === '') return [{ ...DEFAULT_TAINT }];
  if (raw.trim() === 'none') return [];
  return raw.split(',').map((item) => {
    const m = /^([^=:]+)(?:=([^:]*))?:(.+)$/.exec(item.trim());
    if (!m || !QUALIFIED_NAME.test(m[1]!) || !EFFECTS.includes(m[3]!)) {
      throw new ConfigError(`EF_NODE_TAINTS: "${item}" is not key[=value]:Effect with Effect one of ${EFFECTS.join(', ')} (or "none")`);
    }
    return m[2] === undefined ? { key: m[1]!, effect: m[3]! } : { key: m[1]!, value: m[2], effect: m[3]! };
  });
}

function identity(raw: string): string {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  if (!DNS_LABEL.test(id)) throw new ConfigError(`EF_PROVIDER_ID="${raw}" does not make a DNS label`);
  return id;
}

function kubeletTls(env: Record<string, string | undefined>): ProviderConfig['kubeletTls'] {
  const certFile = env.EF_KUBELET_TLS_CERT || undefined;
  const keyFile = env.EF_KUBELET_TLS_KEY || undefined;
  if (!certFile !== !keyFile) throw new ConfigError('EF_KUBELET_TLS_CERT and EF_KUBELET_TLS_KEY go together');
  if (!certFile || !keyFile) {
    if (env.EF_KUBELET_CLIENT_CA) throw new ConfigError('EF_KUBELET_CLIENT_CA needs EF_KUBELET_TLS_CERT and EF_KUBELET_TLS_KEY');
    return undefined;
  }
  return { certFile, keyFile, clientCAFile: env.EF_KUBELET_CLIENT_CA || undefined };
}

/** `FROM-TO`, both TCP ports, FROM <= TO. */
function portRange(raw: string | undefined): ProviderConfig['kubeletNodePorts'] {
  if (raw === undefined || raw === '') return undefined;
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(raw.trim());
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to)
    throw new ConfigError(`EF_KUBELET_NODE_PORTS="${raw}" is not FROM-TO (TCP ports, FROM <= TO)`);
  return { from, to };
}

export function parseConfig(env: Record<string, string | undefined>): ProviderConfig {
  if (env.EF_NODES !== undefined) {
    throw new ConfigError(
      'EF_NODES is no longer read: the provider serves every EdgeNode (kubectl get edgenodes); create one per edge node',
    );
  }
  const replicas = Number(env.EF_HUB_REPLICAS ?? '1');
  if (![1, 3, 5].includes(replicas)) throw new ConfigError(`EF_HUB_REPLICAS="${env.EF_HUB_REPLICAS}" must be 1, 3 or 5`);
  const namespace = env.EF_NAMESPACE || 'edgefarm-system';
  if (!DNS_LABEL.test(namespace)) throw new ConfigError(`EF_NAMESPACE="${namespace}" is not a namespace name`);
  return {
    natsUrl: env.EF_NATS_URL || 'nats://127.0.0.1:4222',
    httpPort: port(env, 'EF_HTTP_PORT', 10255),
    kubeletPort: port(env, 'EF_KUBELET_PORT', 10250),
    kubeletAddress: address(env.EF_KUBELET_ADDRESS || env.POD_IP || '127.0.0.1'),
    logLevel: env.EF_LOG_LEVEL || 'info',
    hubReplicas: replicas,
    namespace,
    identity: identity(env.EF_PROVIDER_ID || env.POD_NAME || hostname()),
    shards: int(env, 'EF_SHARDS', 16, 1, 1024, 'a shard count (1 to 1024)'),
    shardLeaseSeconds: int(env, 'EF_SHARD_LEASE_SECONDS', 15, 3, 300, 'a lease duration in seconds (3 to 300)'),
    nodeTaints: parseTaints(env.EF_NODE_TAINTS),
    tombstoneTtlSeconds: int(
      env,
      'EF_TOMBSTONE_TTL_SECONDS',
      TOMBSTONE_TTL.defaultSeconds,
      10,
      366 * 24 * 3600,
      'a tombstone TTL in seconds (10 to 31622400)',
    ),
    kubeletTls: kubeletTls(env),
    kubeletNodePorts: portRange(env.EF_KUBELET_NODE_PORTS),
    eventQps: int(env, 'EF_EVENT_QPS', 50, 1, 100_000, 'an event rate (whole events per second, 1 to 100000)'),
  };
}
