/**
 * The agent's configuration: one validated object handed to {@link Agent}. {@link configFromEnv} turns an
 * environment record into it (main.ts passes process.env; nothing else reads the environment).
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { encodeToken } from '@edgefarm/proto';

export interface AgentConfig {
  /** Kubernetes node name of this edge node. */
  nodeName: string;
  /** Site name (its JetStream domain is siteDomain(site)); informational for now. */
  site: string;
  /** NATS URL(s) of the site's leaf nats-server. */
  natsUrl: string;
  /** CRI endpoint: a unix socket path or unix:// URL. */
  criEndpoint: string;
  /** The node's InternalIP; also the pod IP of hostNetwork pods. */
  nodeIp: string;
  /** Pod CIDR (informational: the CNI config owns pod addressing). */
  podCidr: string;
  /** Root of per-pod log directories: <podLogRoot>/<ns>_<name>_<uid>/<container>/<restart>.log */
  podLogRoot: string;
  /** cgroupfs parent of every pod: <cgroupRoot>/pod<uid>. */
  cgroupParent: string;
  /** Root of per-pod volume directories: <volumeRoot>/<uid>/volumes/<volume>. */
  volumeRoot: string;
  /**
   * The agent's own state (its desired-state snapshot, to resume from the last applied sequence after a restart).
   * Unset: no snapshot, every start relists the site stream.
   */
  stateDir?: string;
  logLevel: string;
  agentVersion: string;
  /** Interval of the full resync of every pod key (EF_RESYNC_MS, default 10000): a safety net, see reconcile/reconciler.ts. */
  resyncMs: number;
  /** Interval of the cheap relist that syncs pods whose runtime state changed (EF_RELIST_MS, default 500; 0: off). */
  relistMs?: number;
  heartbeatMs: number;
  /** Pods reconciled in parallel. */
  concurrency: number;
  /** CrashLoopBackOff: first delay and cap (default the kubelet's 10 s and 300 s; EF_RESTART_BACKOFF_{BASE,MAX}_MS). */
  restartBackoffBaseMs?: number;
  restartBackoffMaxMs?: number;
  /**
   * Image garbage collection thresholds of the image filesystem's usage, as the kubelet's imageGCHigh/LowThreshold-
   * Percent (default 85 and 80; EF_IMAGE_GC_HIGH_PERCENT / EF_IMAGE_GC_LOW_PERCENT; high 100 disables it).
   */
  imageGcHighPercent?: number;
  imageGcLowPercent?: number;
  /** Where GET /metrics and /healthz listen (EF_METRICS_ADDR `host:port`, default 127.0.0.1:10255; `off`: undefined). */
  metricsAddr?: { host: string; port: number };
  /** Interval of publishing the metrics text to the cloud (EF_METRICS_PUBLISH_SECONDS, default 30; 0 or unset: off). */
  metricsPublishSeconds?: number;
}

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

export class ConfigError extends Error {
  override name = 'ConfigError';
}
export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function positiveInt(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${name} must be a positive integer, got "${raw}"`);
  return n;
}

/** Builds and validates the configuration; throws a {@link ConfigError} naming every problem. */
export function configFromEnv(env: Record<string, string | undefined>, agentVersion: string): AgentConfig {
  const problems: string[] = [];
  const req = (name: string): string => {
    const v = env[name]?.trim();
    if (!v) problems.push(`${name} is required`);
    return v ?? '';
  };
  const nodeName = req('EF_NODE_NAME');
  const site = req('EF_SITE');
  const natsUrl = req('EF_NATS_URL');
  const criEndpoint = req('EF_CRI_ENDPOINT');
  const nodeIp = req('EF_NODE_IP');
  const podCidr = env.EF_POD_CIDR?.trim() ?? '';
  const logLevel = env.EF_LOG_LEVEL?.trim() || 'info';
  const volumeRoot = env.EF_VOLUME_DIR?.trim() || `/var/lib/edgefarm/${nodeName}/pods`;
  const stateDir = env.EF_STATE_DIR?.trim() || `/var/lib/edgefarm/${nodeName}/agent`;

  if (nodeName && (nodeName.length > 253 || !DNS_SUBDOMAIN.test(nodeName))) {
    problems.push(`EF_NODE_NAME "${nodeName}" is not a DNS subdomain`);
  }
  if (site) {
    try {
      encodeToken(site);
    } catch {
      problems.push(`EF_SITE "${site}" is not usable`);
    }
  }
  if (natsUrl && !natsUrl.split(',').every((u) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(u.trim()))) {
    problems.push(`EF_NATS_URL "${natsUrl}" is not a nats:// URL (comma-separated list allowed)`);
  }
  if (criEndpoint && !path.isAbsolute(criEndpoint.replace(/^unix:\/\//, ''))) {
    problems.push(`EF_CRI_ENDPOINT "${criEndpoint}" must be an absolute unix socket path`);
  }
  if (nodeIp && isIP(nodeIp) === 0) problems.push(`EF_NODE_IP "${nodeIp}" is not an IP address`);
  if (podCidr && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(podCidr)) problems.push(`EF_POD_CIDR "${podCidr}" is not a CIDR`);
  if (!path.isAbsolute(volumeRoot) || path.resolve(volumeRoot) === '/')
    problems.push(`EF_VOLUME_DIR "${volumeRoot}" must be an absolute path below /`);
  if (!path.isAbsolute(stateDir) || path.resolve(stateDir) === '/')
    problems.push(`EF_STATE_DIR "${stateDir}" must be an absolute path below /`);
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`EF_LOG_LEVEL "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);

  let resyncMs = 0;
  let relistMs = 500;
  let heartbeatMs = 0;
  let concurrency = 0;
  let restartBackoffBaseMs = 0;
  let restartBackoffMaxMs = 0;
  try {
    resyncMs = positiveInt(env, 'EF_RESYNC_MS', 10_000);
    relistMs = env.EF_RELIST_MS?.trim() === '0' ? 0 : positiveInt(env, 'EF_RELIST_MS', 500);
    heartbeatMs = positiveInt(env, 'EF_HEARTBEAT_MS', 5_000);
    concurrency = positiveInt(env, 'EF_CONCURRENCY', 4);
  } catch (err) {
    problems.push((err as Error).message);
  }
  try {
    restartBackoffBaseMs = positiveInt(env, 'EF_RESTART_BACKOFF_BASE_MS', 10_000);
    restartBackoffMaxMs = positiveInt(env, 'EF_RESTART_BACKOFF_MAX_MS', 300_000);
    if (restartBackoffMaxMs < restartBackoffBaseMs) problems.push('EF_RESTART_BACKOFF_MAX_MS must not be below EF_RESTART_BACKOFF_BASE_MS');
  } catch (err) {
    problems.push((err as Error).message);
  }
  const percent = (name: string, fallback: number): number => {
    const raw = env[name]?.trim();
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 100) {
      problems.push(`${name} must be an integer percentage (0-100), got "${raw}"`);
      return fallback;
    }
    return n;
  };
  const imageGcHighPercent = percent('EF_IMAGE_GC_HIGH_PERCENT', 85);
  const imageGcLowPercent = percent('EF_IMAGE_GC_LOW_PERCENT', 80);
  // The kubelet's validation: low must be below high (high 100 disables collection).
  if (imageGcLowPercent >= imageGcHighPercent && imageGcHighPercent < 100) {
    problems.push(`EF_IMAGE_GC_LOW_PERCENT (${imageGcLowPercent}) must be below EF_IMAGE_GC_HIGH_PERCENT (${imageGcHighPercent})`);
  }
  const metricsRaw = env.EF_METRICS_ADDR?.trim() || '127.0.0.1:10255';
  const metricsAddr = metricsRaw === 'off' ? undefined : parseListenAddr(metricsRaw);
  if (metricsRaw !== 'off' && !metricsAddr) problems.push(`EF_METRICS_ADDR "${metricsRaw}" is not host:port (port 1-65535) or off`);
  const publishRaw = env.EF_METRICS_PUBLISH_SECONDS?.trim() || '30';
  const metricsPublishSeconds = Number(publishRaw);
  if (!Number.isInteger(metricsPublishSeconds) || metricsPublishSeconds < 0) {
    problems.push(`EF_METRICS_PUBLISH_SECONDS must be a non-negative integer (0: off), got "${publishRaw}"`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);

  return {
    nodeName,
    site,
    natsUrl,
    criEndpoint,
    nodeIp,
    podCidr,
    podLogRoot: env.EF_POD_LOG_DIR?.trim() || `/var/log/edgefarm/${nodeName}/pods`,
    cgroupParent: env.EF_CGROUP_PARENT?.trim() || `/edgefarm/${nodeName}`,
    volumeRoot: path.resolve(volumeRoot),
    stateDir: path.resolve(stateDir),
    logLevel,
    agentVersion,
    resyncMs,
    relistMs,
    heartbeatMs,
    concurrency,
    restartBackoffBaseMs,
    restartBackoffMaxMs,
    imageGcHighPercent,
    imageGcLowPercent,
    metricsAddr,
    metricsPublishSeconds,
  };
}
