/**
 * The provider's configuration: {@link PROVIDER_SETTINGS} declares every setting (docs/reference/settings.md is
 * generated from it), {@link parseConfig} turns an environment record into a validated {@link ProviderConfig}.
 * main.ts passes process.env; nothing else reads the environment.
 */
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { V1Taint } from '@kubernetes/client-node';
import { TOMBSTONE_TTL } from '@edgefarm/proto';
import {
  ConfigError,
  ValueError,
  absolutePath,
  custom,
  defineSettings,
  flag,
  int,
  logLevel,
  port,
  text,
  type Env,
} from '@edgefarm/settings';
import { DEFAULT_TAINT } from './nodecontroller/node.js';
import { REVOKER_SPECS, revokerConfig, type RevokerConfig } from './identity/config.js';
import { DEFAULT_DESIRED_MAX_MIB, DEFAULT_STATUS_MAX_MIB } from './bus/limits.js';

export { ConfigError, isConfigError } from '@edgefarm/settings';

/** Provider configuration: parsed and validated from an environment-like record, with defaults. */
export interface ProviderConfig {
  natsUrl: string;
  /**
   * The creds files (user JWT and seed) of the provider's two hub users (decision 0008): one in the EF_DESIRED account,
   * one in EF_CLOUD. Unset: one unauthenticated connection serves both (tests, an open hub).
   */
  natsCreds?: { desired: string; cloud: string };
  /** The fleet CA (PEM) the hub's certificate is checked against; unset: the system's CAs (and no TLS unless asked). */
  natsCaFile?: string;
  httpPort: number;
  kubeletPort: number;
  /** Address of this provider that the apiserver can reach: the Nodes' InternalIP. */
  kubeletAddress: string;
  logLevel: string;
  /** Stream replicas on the hub (3 for a 3-node hub cluster). */
  hubReplicas: number;
  /** EF_DESIRED's byte limit in MiB (discard new: at the limit publishes are refused, nothing stored is dropped); default 4096. */
  hubDesiredMaxMiB?: number;
  /** EF_STATUS's byte limit in MiB (discard old: at the limit the oldest report goes); default 1024. */
  hubStatusMaxMiB?: number;
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
  kubeletTls?: { certFile: string; keyFile: string; clientCAFile?: string } | { fromCluster: true; clientCAFile?: string };
  /** Kubernetes Event writes per second across every node served (burst twice that). */
  eventQps: number;
  /** Least seconds between two status writes of one Device (devices/status.ts). */
  deviceStatusIntervalSeconds: number;
  /** Device status writes per second for all devices. */
  deviceStatusQps: number;
  /** Ports handed to the nodes, one each, for their node-scoped endpoints (docs/decisions/0006-kubelet-api.md). */
  kubeletNodePorts?: { from: number; to: number };
  /** The revoker (identity/revoker.ts): on when its four settings are given. */
  revoker?: RevokerConfig;
  /** Lifetime asked for each node's client certificate (kube/node-clients.ts, decision 0010); renewed at 80%. */
  nodeCredentialSeconds: number;
  /** How long a node's certificate signing request may wait to be approved and signed. */
  nodeCredentialTimeoutSeconds: number;
  /** /metrics requires a token allowed `get` on the non-resource URL /metrics (TokenReview + SubjectAccessReview). */
  metricsAuth?: boolean;
  /** Streaming connections (exec, attach, port-forward) and log streams at once on the kubelet API. */
  kubeletMaxSessions?: number;
  /** A kubelet API streaming connection with no byte either way for this long is closed. */
  kubeletStreamingIdleTimeoutSeconds?: number;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];
const showTaint = (t: V1Taint): string => `${t.key}${t.value === undefined ? '' : `=${t.value}`}:${t.effect}`;

const taints = custom('key[=value]:Effect,... or none', (raw): V1Taint[] => {
  if (raw === 'none') return [];
  return raw.split(',').map((item) => {
    const m = /^([^=:]+)(?:=([^:]*))?:(.+)$/.exec(item.trim());
    if (!m || !QUALIFIED_NAME.test(m[1]!) || !EFFECTS.includes(m[3]!)) {
      throw new ValueError(`"${item.trim()}" is not key[=value]:Effect with Effect one of ${EFFECTS.join(', ')} (or "none")`);
    }
    return m[2] === undefined ? { key: m[1]!, effect: m[3]! } : { key: m[1]!, value: m[2], effect: m[3]! };
  });
});

/** `key=value:Effect` or `key:Effect`, comma-separated, as kubectl taint writes them; `none` for no taint. */
export function parseTaints(raw: string | undefined): V1Taint[] {
  if (raw === undefined || raw.trim() === '') return [{ ...DEFAULT_TAINT }];
  try {
    return taints.parse(raw.trim());
  } catch (err) {
    if (err instanceof ValueError) throw new ConfigError([`EF_NODE_TAINTS: ${err.message}`]);
    throw err;
  }
}

const identity = custom('text, made a DNS label (lower case, [a-z0-9-], at most 40)', (raw) => {
  const id = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  if (!DNS_LABEL.test(id)) throw new ValueError('does not make a DNS label');
  return id;
});

const portRange = custom('FROM-TO (TCP ports, FROM <= TO)', (raw) => {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(raw);
  const from = Number(m?.[1]);
  const to = Number(m?.[2]);
  if (!m || from < 1 || to > 65535 || from > to) throw new ValueError('expected FROM-TO (TCP ports, FROM <= TO)');
  return { from, to };
});

export const PROVIDER_SETTINGS = defineSettings(
  {
    title: 'provider',
    source: 'provider/src/config.ts',
    intro:
      'The cloud side (`node provider/dist/main.js`; hack/lib.sh `ef_provider_start` sets the NATS, port, identity and TLS settings for each replica). `KUBECONFIG` picks its Kubernetes identity (default: in-cluster, else ~/.kube/config).',
  },
  {
    natsUrl: {
      env: 'EF_NATS_URL',
      type: text('NATS URL, or a comma-separated list (every hub cluster member)'),
      default: 'nats://127.0.0.1:4222',
      doc: 'the hub',
    },
    natsDesiredCreds: {
      env: 'EF_NATS_DESIRED_CREDS',
      type: absolutePath(),
      unset: 'no credentials (then EF_NATS_CLOUD_CREDS must be unset too: one unauthenticated connection)',
      doc: "creds file of the provider's hub user in the EF_DESIRED account (desired state); read at every connect; needs EF_NATS_CLOUD_CREDS",
    },
    natsCloudCreds: {
      env: 'EF_NATS_CLOUD_CREDS',
      type: absolutePath(),
      unset: 'no credentials (then EF_NATS_DESIRED_CREDS must be unset too)',
      doc: "creds file of the provider's hub user in the EF_CLOUD account (status, Events, logs/exec); read at every connect; needs EF_NATS_DESIRED_CREDS",
    },
    natsCaFile: {
      env: 'EF_NATS_CA_FILE',
      type: absolutePath(),
      unset: "the system's CAs; TLS only when the hub asks for it",
      doc: 'the fleet CA (PEM): TLS to the hub, whose certificate must be signed by it (the connection fails otherwise)',
    },
    hubReplicas: {
      env: 'EF_HUB_REPLICAS',
      type: custom('1 | 3 | 5', (raw) => {
        if (!['1', '3', '5'].includes(raw)) throw new ValueError('must be 1, 3 or 5');
        return Number(raw);
      }),
      default: '1',
      doc: 'replicas of the hub streams: 1, or 3/5 on a hub cluster',
    },
    hubDesiredMaxMiB: {
      env: 'EF_HUB_DESIRED_MAX_MIB',
      type: int(1, 1024 * 1024),
      default: String(DEFAULT_DESIRED_MAX_MIB),
      doc: 'byte limit of the hub stream EF_DESIRED, in MiB; at the limit desired-state publishes are refused (edgefarm_provider_desired_publish_rejected_total) and nothing stored is dropped (docs/decisions/0004)',
    },
    hubStatusMaxMiB: {
      env: 'EF_HUB_STATUS_MAX_MIB',
      type: int(1, 1024 * 1024),
      default: String(DEFAULT_STATUS_MAX_MIB),
      doc: 'byte limit of the hub stream EF_STATUS, in MiB; at the limit the oldest report is dropped (docs/decisions/0004)',
    },
    identity: {
      env: 'EF_PROVIDER_ID',
      type: identity,
      derive: (env) => env.POD_NAME?.trim() || hostname(),
      defaultText: '`$POD_NAME`, else the host name',
      doc: "this replica's name among the replicas, and the holder of its Leases",
    },
    namespace: {
      env: 'EF_NAMESPACE',
      type: custom('namespace name', (raw) => {
        if (!DNS_LABEL.test(raw)) throw new ValueError('is not a namespace name');
        return raw;
      }),
      default: 'edgefarm-system',
      doc: 'where the shard and member Leases live',
    },
    shards: {
      env: 'EF_SHARDS',
      type: int(1, 1024),
      default: '16',
      doc: 'shards the nodes are spread over; the same on every replica (docs/decisions/0002)',
    },
    shardLeaseSeconds: {
      env: 'EF_SHARD_LEASE_SECONDS',
      type: int(3, 300),
      default: '15',
      doc: "duration of a shard Lease: a dead replica's nodes move after about this long; the same on every replica",
    },
    nodeTaints: {
      env: 'EF_NODE_TAINTS',
      type: taints,
      default: showTaint(DEFAULT_TAINT),
      doc: "taints every edge Node gets besides its EdgeNode's own",
    },
    httpPort: { env: 'EF_HTTP_PORT', type: port(), default: '10255', doc: '`/healthz`, `/readyz` and `/metrics` (docs/metrics.md)' },
    kubeletPort: {
      env: 'EF_KUBELET_PORT',
      type: port(),
      default: '10250',
      doc: 'the kubelet API (logs, exec, attach, port-forward) of every node this replica serves',
    },
    kubeletAddress: {
      env: 'EF_KUBELET_ADDRESS',
      type: custom('IP address', (raw) => {
        if (isIP(raw) === 0) throw new ValueError('is not an IP address');
        return raw;
      }),
      derive: (env) => env.POD_IP?.trim() || '127.0.0.1',
      defaultText: '`$POD_IP`, else 127.0.0.1',
      doc: "this replica's address as the apiserver reaches it: the Nodes' InternalIP",
    },
    kubeletNodePorts: {
      env: 'EF_KUBELET_NODE_PORTS',
      type: portRange,
      unset: 'every Node advertises EF_KUBELET_PORT',
      doc: "a port per node for its /stats and /metrics/resource, advertised as the Node's kubelet port (docs/decisions/0006)",
    },
    kubeletTlsCert: {
      env: 'EF_KUBELET_TLS_CERT',
      type: text('PEM file'),
      unset: 'the kubelet API is not served',
      doc: "the kubelet API's serving certificate; goes with EF_KUBELET_TLS_KEY",
    },
    kubeletTlsKey: { env: 'EF_KUBELET_TLS_KEY', type: text('PEM file'), unset: 'see EF_KUBELET_TLS_CERT', doc: 'its private key' },
    kubeletServingCsr: {
      env: 'EF_KUBELET_SERVING_CSR',
      type: flag(),
      default: '0',
      doc: "1: the kubelet API's serving certificate comes from the cluster: a CSR to signer kubernetes.io/kubelet-serving for the replica's address, approved by the provider and signed by kube-controller-manager, renewed at 80% of its lifetime (EF_NODE_CREDENTIAL_SECONDS); instead of EF_KUBELET_TLS_CERT",
    },
    kubeletClientCA: {
      env: 'EF_KUBELET_CLIENT_CA',
      type: text('PEM file'),
      unset: 'clients authenticate with a bearer token only (TokenReview)',
      doc: "CA of the client certificates the kubelet API accepts (the apiserver's kubelet-client certificate); needs EF_KUBELET_TLS_CERT",
    },
    kubeletMaxSessions: {
      env: 'EF_KUBELET_MAX_SESSIONS',
      type: int(1, 1_000_000),
      default: '1024',
      doc: 'kubelet API streaming connections (exec, attach, port-forward) and log streams at once on this replica; more are refused with 429',
    },
    kubeletStreamingIdleTimeoutSeconds: {
      env: 'EF_KUBELET_STREAMING_IDLE_TIMEOUT_SECONDS',
      type: int(1, 7 * 24 * 3600),
      default: '14400',
      doc: "an exec, attach or port-forward connection with no byte either way for this long is closed (the kubelet's --streaming-connection-idle-timeout, 4 h)",
    },
    metricsAuth: {
      env: 'EF_METRICS_AUTH',
      type: flag(),
      default: '0',
      doc: '1: `/metrics` requires a bearer token allowed `get` on the non-resource URL `/metrics` (TokenReview + SubjectAccessReview, as kube-rbac-proxy); 0: a plain scrape',
    },
    tombstoneTtlSeconds: {
      env: 'EF_TOMBSTONE_TTL_SECONDS',
      type: int(10, 366 * 24 * 3600),
      default: String(TOMBSTONE_TTL.defaultSeconds),
      doc: 'how long the hub keeps a deletion for an offline site; a site out of touch for longer relists (docs/decisions/0004)',
    },
    eventQps: {
      env: 'EF_EVENT_QPS',
      type: int(1, 100_000),
      default: '50',
      doc: "Kubernetes Event writes per second for all nodes served (burst twice that), as the kubelet's --event-qps for one node",
    },
    deviceStatusIntervalSeconds: {
      env: 'EF_DEVICE_STATUS_INTERVAL_SECONDS',
      type: int(1, 3600),
      default: '5',
      doc: "least seconds between two writes of one Device's status from its twin (newer twins meanwhile are coalesced; docs/devices.md)",
    },
    deviceStatusQps: {
      env: 'EF_DEVICE_STATUS_QPS',
      type: int(1, 10_000),
      default: '20',
      doc: 'Device status writes per second for all devices served (burst twice that)',
    },
    nodeCredentialSeconds: {
      env: 'EF_NODE_CREDENTIAL_SECONDS',
      type: int(600, 366 * 24 * 3600),
      default: '86400',
      doc: "lifetime asked for each served node's client certificate (CN=system:node:<name>, from the CSR API), renewed at 80% (docs/decisions/0010)",
    },
    nodeCredentialTimeoutSeconds: {
      env: 'EF_NODE_CREDENTIAL_TIMEOUT_SECONDS',
      type: int(1, 3600),
      default: '60',
      doc: "how long a node's certificate signing request may wait for kube-controller-manager to approve and sign it",
    },
    logLevel: {
      env: 'EF_LOG_LEVEL',
      type: logLevel(),
      default: 'info',
      doc: 'log level',
    },
    ...REVOKER_SPECS,
  },
  {
    retired: {
      EF_NODES: 'the provider serves every EdgeNode (kubectl get edgenodes); create one per edge node',
    },
  },
);

/** The provider's configuration from an environment record; throws ConfigError naming every bad or conflicting setting. */
export function parseConfig(env: Env): ProviderConfig {
  const { kubeletTlsCert, kubeletTlsKey, kubeletClientCA, kubeletServingCsr, natsDesiredCreds, natsCloudCreds, ...v } =
    PROVIDER_SETTINGS.parse(env, (s, problem) => {
      if (!s.kubeletTlsCert !== !s.kubeletTlsKey) problem('EF_KUBELET_TLS_CERT and EF_KUBELET_TLS_KEY go together');
      else if (s.kubeletServingCsr && s.kubeletTlsCert) problem('EF_KUBELET_SERVING_CSR=1 and EF_KUBELET_TLS_CERT exclude each other');
      else if (s.kubeletClientCA && !s.kubeletTlsCert && !s.kubeletServingCsr)
        problem('EF_KUBELET_CLIENT_CA needs EF_KUBELET_TLS_CERT and EF_KUBELET_TLS_KEY, or EF_KUBELET_SERVING_CSR=1');
      if (!s.natsDesiredCreds !== !s.natsCloudCreds)
        problem('EF_NATS_DESIRED_CREDS and EF_NATS_CLOUD_CREDS go together (one hub user per account), or neither');
      revokerConfig(s, problem);
    });
  const { revokerOperatorSeedFile, revokerSystemCreds, revokerAccounts, revokerNodeSigner, ...rest } = v;
  const revoker = revokerConfig({ revokerOperatorSeedFile, revokerSystemCreds, revokerAccounts, revokerNodeSigner });
  const kubeletTls = kubeletServingCsr
    ? { fromCluster: true as const, clientCAFile: kubeletClientCA }
    : kubeletTlsCert && kubeletTlsKey
      ? { certFile: kubeletTlsCert, keyFile: kubeletTlsKey, clientCAFile: kubeletClientCA }
      : undefined;
  const natsCreds = natsDesiredCreds && natsCloudCreds ? { desired: natsDesiredCreds, cloud: natsCloudCreds } : undefined;
  return { ...rest, kubeletTls, natsCreds, revoker };
}
