/**
 * The agent's configuration: one validated object handed to {@link Agent}. {@link AGENT_SETTINGS} declares every
 * setting (docs/reference/settings.md is generated from it); {@link configFromEnv} turns an environment record into
 * the configuration (main.ts passes process.env; nothing else reads the environment).
 */
import { isIP } from 'node:net';
import { encodeToken, isUserPublicKey } from '@edgefarm/proto';
import { ValueError, absolutePath, custom, defineSettings, int, logLevel, text, type Env } from '@edgefarm/settings';
import { ByteSizeError, parseByteSize } from './logs/size.js';

export { ConfigError, isConfigError } from '@edgefarm/settings';

export interface AgentConfig {
  /** Kubernetes node name of this edge node. */
  nodeName: string;
  /**
   * The node's name in every subject it uses (proto's nodeWireId): its NATS user public key once it joined, otherwise
   * its node name. Site stream names keep the node name; Kubernetes-facing names (heartbeats, Events) too.
   */
  wireId: string;
  /** Site name (its JetStream domain is siteDomain(site)); informational for now. */
  site: string;
  /** NATS URL(s) of the site's leaf nats-server. */
  natsUrl: string;
  /** The agent's nkey seed file for its site server (agent.nk of the join directory); unset: no authentication. */
  natsSeedFile?: string;
  /** CRI endpoint: a unix socket path or unix:// URL. */
  criEndpoint: string;
  /** The node's InternalIP; also the pod IP of hostNetwork pods. */
  nodeIp: string;
  /** Root of per-pod log directories: <podLogRoot>/<ns>_<name>_<uid>/<container>/<restart>.log */
  podLogRoot: string;
  /** cgroupfs parent of every pod: <cgroupRoot>/pod<uid>. */
  cgroupParent: string;
  /** Root of per-pod volume directories: <volumeRoot>/<uid>/volumes/<volume>. */
  volumeRoot: string;
  /**
   * The agent's own state (its desired-state snapshot, to resume from the last applied sequence after a restart).
   * Unset: no snapshot, every start lists the site stream from the beginning.
   */
  stateDir?: string;
  /** The join directory `edgefarm join` wrote (its credentials are renewed from here); unset: no renewal. */
  identityDir?: string;
  logLevel: string;
  agentVersion: string;
  /** Interval of the full resync of every pod key: a safety net, see reconcile/reconciler.ts. */
  resyncMs: number;
  /** Interval of the cheap relist that syncs pods whose runtime state changed (0: off). */
  relistMs?: number;
  heartbeatMs: number;
  /** Pods reconciled in parallel. */
  concurrency: number;
  /** CrashLoopBackOff: first delay and cap (the kubelet's 10 s and 300 s when unset). */
  restartBackoffBaseMs?: number;
  restartBackoffMaxMs?: number;
  /**
   * Image garbage collection thresholds of the image filesystem's usage, as the kubelet's imageGCHigh/LowThreshold-
   * Percent (85 and 80 when unset; high 100 disables it).
   */
  imageGcHighPercent?: number;
  imageGcLowPercent?: number;
  /**
   * Interval of measuring disk-backed emptyDirs that have a sizeLimit; a pod whose emptyDir holds more is evicted, as
   * the kubelet's eviction manager does (eviction/emptydir.ts). 0: never (10 s when unset).
   */
  emptyDirCheckMs?: number;
  /** Container log rotation (logs/rotation.ts): a log file at or above this size is rotated (10Mi when unset). */
  containerLogMaxSizeBytes?: number;
  /** Files kept per container log, the current one included (5 when unset; at least 2). */
  containerLogMaxFiles?: number;
  /** How often container log sizes are checked (10 s when unset). */
  containerLogMonitorIntervalMs?: number;
  /**
   * DiskPressure (heartbeat/disk-pressure.ts): True while the free space of the filesystem of the agent's state or
   * of the pods' directories falls below nodefsMinFreePercent, or of the image filesystem below imagefsMinFreePercent
   * (the kubelet's eviction-hard nodefs.available<10%, imagefs.available<15% when unset).
   */
  nodefsMinFreePercent?: number;
  imagefsMinFreePercent?: number;
  /**
   * Bytes kept available on the filesystem of stateDir for the site's JetStream store beside it (its max_file_store,
   * 1 GiB by default); less is DiskPressure too (0: no reserve).
   */
  storeReserveBytes?: number;
  /** Where GET /metrics and /healthz listen (undefined: no server). */
  metricsAddr?: { host: string; port: number };
  /** Interval of publishing the metrics text to the cloud (0 or unset: off). */
  metricsPublishSeconds?: number;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Parses a `host:port` listen address (IPv6 hosts in brackets); undefined when it is not one. */
export function parseListenAddr(raw: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(raw);
  if (!m) return undefined;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined && isIP(host) !== 6) return undefined;
  if (m[2] !== undefined && isIP(host) === 0 && !DNS_SUBDOMAIN.test(host)) return undefined;
  return { host, port };
}

const positive = int(1);
const nodeDir = (env: Env, dir: string): string => `${dir}/${env.EF_NODE_NAME?.trim() ?? ''}`;

export const AGENT_SETTINGS = defineSettings(
  {
    title: 'edge-agent',
    source: 'edge-agent/src/config.ts',
    intro:
      "The agent at each edge site (`node edge-agent/dist/main.js`; hack/site.sh sets the required ones and the directories for the stack's sites).",
  },
  {
    nodeName: {
      env: 'EF_NODE_NAME',
      type: custom('DNS subdomain', (raw) => {
        if (raw.length > 253 || !DNS_SUBDOMAIN.test(raw)) throw new ValueError('is not a DNS subdomain');
        return raw;
      }),
      required: true,
      doc: 'the Kubernetes node name of this edge node',
    },
    wireId: {
      env: 'EF_NODE_WIRE_ID',
      // checked against EF_NODE_NAME once both parsed (configFromEnv)
      type: custom('NATS user public key (U and 55 base32 characters), or the node name', (raw) => raw),
      derive: (env) => env.EF_NODE_NAME?.trim() ?? '',
      defaultText: 'the node name (EF_NODE_NAME)',
      doc: "the node's name in every subject it uses: its NATS user public key once it joined (edgefarm join's agent.env sets it), else its node name",
    },
    site: {
      env: 'EF_SITE',
      type: custom('site name', (raw) => {
        try {
          encodeToken(raw);
        } catch {
          throw new ValueError('is not usable as a site name');
        }
        return raw;
      }),
      required: true,
      doc: 'the site the node belongs to (its JetStream domain is site-<site>)',
    },
    natsUrl: {
      env: 'EF_NATS_URL',
      type: custom('nats:// URL, or a comma-separated list', (raw) => {
        if (!raw.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim())))
          throw new ValueError('is not a nats:// URL (comma-separated list allowed)');
        return raw;
      }),
      required: true,
      doc: "the site's leaf nats-server",
    },
    natsSeedFile: {
      env: 'EF_NATS_SEED_FILE',
      type: absolutePath(),
      unset: 'no authentication (an open site server, as in tests)',
      doc: "the agent's nkey seed for its site nats-server (agent.nk in the join directory), read again at every connect",
    },
    criEndpoint: {
      env: 'EF_CRI_ENDPOINT',
      type: custom('unix socket path, or unix:// URL', (raw) => {
        if (!raw.replace(/^unix:\/\//, '').startsWith('/')) throw new ValueError('must be an absolute unix socket path');
        return raw;
      }),
      required: true,
      doc: "containerd's CRI socket",
    },
    nodeIp: {
      env: 'EF_NODE_IP',
      type: custom('IP address', (raw) => {
        if (isIP(raw) === 0) throw new ValueError('is not an IP address');
        return raw;
      }),
      required: true,
      doc: "the node's InternalIP, and the pod IP of hostNetwork pods",
    },
    podLogRoot: {
      env: 'EF_POD_LOG_DIR',
      type: text('path'),
      derive: (env) => `${nodeDir(env, '/var/log/edgefarm')}/pods`,
      defaultText: '/var/log/edgefarm/<node>/pods',
      doc: 'root of the pod log directories (CRI log_directory): <ns>_<name>_<uid>/<container>/<restart>.log',
    },
    cgroupParent: {
      env: 'EF_CGROUP_PARENT',
      type: text('cgroup path'),
      derive: (env) => nodeDir(env, '/edgefarm'),
      defaultText: '/edgefarm/<node>',
      doc: 'cgroupfs parent of every pod cgroup (<parent>/pod<uid>)',
    },
    volumeRoot: {
      env: 'EF_VOLUME_DIR',
      type: absolutePath({ belowRoot: true }),
      derive: (env) => `${nodeDir(env, '/var/lib/edgefarm')}/pods`,
      defaultText: '/var/lib/edgefarm/<node>/pods',
      doc: 'root of the pod volume directories (<uid>/volumes/<name>)',
    },
    stateDir: {
      env: 'EF_STATE_DIR',
      type: absolutePath({ belowRoot: true }),
      derive: (env) => `${nodeDir(env, '/var/lib/edgefarm')}/agent`,
      defaultText: '/var/lib/edgefarm/<node>/agent',
      doc: "the agent's own state: its desired-state snapshot, to resume after a restart without relisting",
    },
    identityDir: {
      env: 'EF_IDENTITY_DIR',
      type: absolutePath({ belowRoot: true }),
      unset: 'no renewal (a site without a join, as in tests)',
      doc: "the join directory `edgefarm join` wrote: the agent renews the node's credentials in it at 70-90 % of their lifetime",
    },
    logLevel: { env: 'EF_LOG_LEVEL', type: logLevel(), default: 'info', doc: 'log level' },
    resyncMs: {
      env: 'EF_RESYNC_MS',
      type: positive,
      default: '10000',
      doc: 'interval of the full resync of every pod (a safety net; changes are synced as they come)',
    },
    relistMs: {
      env: 'EF_RELIST_MS',
      type: int(0),
      default: '500',
      doc: 'interval of the relist that syncs pods whose runtime state changed; 0: off',
    },
    heartbeatMs: { env: 'EF_HEARTBEAT_MS', type: positive, default: '5000', doc: 'interval of the node heartbeat' },
    concurrency: { env: 'EF_CONCURRENCY', type: positive, default: '4', doc: 'pods reconciled in parallel' },
    restartBackoffBaseMs: {
      env: 'EF_RESTART_BACKOFF_BASE_MS',
      type: positive,
      default: '10000',
      doc: "CrashLoopBackOff: the first delay (the kubelet's)",
    },
    restartBackoffMaxMs: {
      env: 'EF_RESTART_BACKOFF_MAX_MS',
      type: positive,
      default: '300000',
      doc: "CrashLoopBackOff: the longest delay (the kubelet's); not below EF_RESTART_BACKOFF_BASE_MS",
    },
    imageGcHighPercent: {
      env: 'EF_IMAGE_GC_HIGH_PERCENT',
      type: int(0, 100),
      default: '85',
      doc: "image GC starts above this usage of the image filesystem (the kubelet's imageGCHighThresholdPercent); 100: no image GC",
    },
    imageGcLowPercent: {
      env: 'EF_IMAGE_GC_LOW_PERCENT',
      type: int(0, 100),
      default: '80',
      doc: 'and frees down to this usage; below EF_IMAGE_GC_HIGH_PERCENT',
    },
    emptyDirCheckMs: {
      env: 'EF_EMPTYDIR_CHECK_MS',
      type: int(0),
      default: '10000',
      doc: "interval of measuring disk-backed emptyDirs with a sizeLimit; a pod whose emptyDir holds more is evicted (Failed, Evicted), as the kubelet's eviction manager does; 0: never",
    },
    containerLogMaxSizeBytes: {
      env: 'EF_CONTAINER_LOG_MAX_SIZE',
      type: custom('byte size (10Mi, 512Ki, 1048576)', (raw) => {
        try {
          const bytes = parseByteSize(raw);
          if (bytes < 1) throw new ValueError('must be at least 1 byte');
          return bytes;
        } catch (err) {
          if (err instanceof ByteSizeError) throw new ValueError(err.message);
          throw err;
        }
      }),
      default: '10Mi',
      doc: "a container's log file at or above this size is rotated (the kubelet's containerLogMaxSize)",
    },
    containerLogMaxFiles: {
      env: 'EF_CONTAINER_LOG_MAX_FILES',
      type: int(2),
      default: '5',
      doc: "log files kept per container, the current one included; older rotated files are gzipped (the kubelet's containerLogMaxFiles)",
    },
    containerLogMonitorIntervalMs: {
      env: 'EF_CONTAINER_LOG_MONITOR_INTERVAL_MS',
      type: positive,
      default: '10000',
      doc: "how often container log sizes are checked (the kubelet's containerLogMonitorInterval); a file may exceed the maximum size by what its container writes in one interval",
    },
    nodefsMinFreePercent: {
      env: 'EF_NODEFS_MIN_FREE_PERCENT',
      type: int(0, 99),
      default: '10',
      doc: "DiskPressure below this free space of the filesystems of EF_STATE_DIR, EF_POD_LOG_DIR and EF_VOLUME_DIR (the kubelet's eviction-hard nodefs.available); 0: never",
    },
    imagefsMinFreePercent: {
      env: 'EF_IMAGEFS_MIN_FREE_PERCENT',
      type: int(0, 99),
      default: '15',
      doc: "DiskPressure below this free space of containerd's root filesystem (the kubelet's eviction-hard imagefs.available); 0: never",
    },
    storeReserveBytes: {
      env: 'EF_STORE_RESERVE',
      type: custom('byte size (1Gi, 512Mi, 0)', (raw) => {
        try {
          return parseByteSize(raw);
        } catch (err) {
          if (err instanceof ByteSizeError) throw new ValueError(err.message);
          throw err;
        }
      }),
      default: '1Gi',
      doc: "DiskPressure while less than this is available on the filesystem of EF_STATE_DIR, where the site's JetStream store lives beside it: the store's max_file_store (edgefarm join renders 1 GiB); 0: no reserve",
    },
    metricsAddr: {
      env: 'EF_METRICS_ADDR',
      type: custom('host:port (IPv6 in brackets) | off', (raw) => {
        if (raw === 'off') return undefined;
        const addr = parseListenAddr(raw);
        if (!addr) throw new ValueError('is not host:port (port 1-65535) or off');
        return addr;
      }),
      default: '127.0.0.1:10255',
      doc: 'where GET /metrics and /healthz listen (docs/metrics.md); off: nowhere',
    },
    metricsPublishSeconds: {
      env: 'EF_METRICS_PUBLISH_SECONDS',
      type: int(0),
      default: '30',
      doc: 'interval of publishing the metrics text to the cloud (ef.outbox.<node>.metrics); 0: off',
    },
  },
);

/** Builds and validates the configuration; throws a ConfigError naming every problem. */
export function configFromEnv(env: Env, agentVersion: string): AgentConfig {
  const values = AGENT_SETTINGS.parse(env, (v, problem) => {
    if (v.wireId !== v.nodeName && !isUserPublicKey(v.wireId))
      problem(`EF_NODE_WIRE_ID must be a NATS user public key or the node name ${v.nodeName}, not "${v.wireId}"`);
    if (v.restartBackoffMaxMs < v.restartBackoffBaseMs) problem('EF_RESTART_BACKOFF_MAX_MS must not be below EF_RESTART_BACKOFF_BASE_MS');
    // The kubelet's rule: low below high (high 100 disables collection).
    if (v.imageGcLowPercent >= v.imageGcHighPercent && v.imageGcHighPercent < 100) {
      problem(`EF_IMAGE_GC_LOW_PERCENT (${v.imageGcLowPercent}) must be below EF_IMAGE_GC_HIGH_PERCENT (${v.imageGcHighPercent})`);
    }
  });
  return { ...values, agentVersion };
}
