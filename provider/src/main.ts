/**
 * Provider entry point: the only place that reads the environment or exits. Serves the EdgeNodes of the shards it holds.
 *
 *   KUBECONFIG         kubeconfig of the provider's identity (default: in-cluster or ~/.kube/config)
 *   EF_NATS_URL        hub NATS URL, or a comma-separated list of every hub cluster member's (default nats://127.0.0.1:4222)
 *   EF_HUB_REPLICAS    replicas of the hub streams: 1, or 3/5 on a hub cluster (default 1)
 *   EF_PROVIDER_ID     this replica's name (default $POD_NAME or the hostname); EF_NAMESPACE namespace of its Leases
 *                      (default edgefarm-system); EF_SHARDS (16) and EF_SHARD_LEASE_SECONDS (15), the same on every replica
 *   EF_NODE_TAINTS     taints of every edge Node, key[=value]:Effect,... or none (default edgefarm.io/edge=true:NoSchedule)
 *   EF_HTTP_PORT       /healthz and /metrics (default 10255)
 *   EF_KUBELET_PORT    port advertised as the nodes' kubelet endpoint (default 10250)
 *   EF_KUBELET_ADDRESS this provider's IP as the apiserver reaches it: the Nodes' InternalIP (default $POD_IP or
 *                      127.0.0.1)
 *   EF_TOMBSTONE_TTL_SECONDS  how long the hub keeps a delete's tombstone (default 86400); a site out of touch for
 *                      longer relists its desired state from the hub
 *   EF_KUBELET_TLS_CERT, EF_KUBELET_TLS_KEY  the kubelet API's serving certificate and key (PEM files); without
 *                      them the kubelet API (kubectl logs/exec/attach/port-forward/top) is not served
 *   EF_KUBELET_CLIENT_CA  CA of client certificates the kubelet API accepts (the apiserver's kubelet-client cert);
 *                      other clients authenticate with a bearer token (TokenReview)
 *   EF_KUBELET_NODE_PORTS FROM-TO: a port per node for its /stats and /metrics/resource, advertised as the Node's
 *                      kubelet endpoint (docs/decisions/0006-kubelet-api.md); unset: every Node advertises EF_KUBELET_PORT
 *   EF_LOG_LEVEL       pino level (default info)
 */
import { readFileSync } from 'node:fs';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { Provider } from './provider.js';
import { RealKubeClient } from './kube/client.js';
import { PooledKubeConfig } from './kube/kubeconfig.js';
import { parseConfig, ConfigError } from './config.js';

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`edgefarm-provider: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const log = pino({ level: config.logLevel, base: { component: 'provider' } });
  const kc = new PooledKubeConfig(); // one connection pool, not a TLS handshake per request
  kc.loadFromDefault();
  const servers = config.natsUrl
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const nc = await connect({ servers, name: 'edgefarm-provider', maxReconnectAttempts: -1, reconnectTimeWait: 500 });
  log.info({ nats: config.natsUrl, identity: config.identity }, 'connected to the hub');
  const t = config.kubeletTls;
  const kubeletTls = t && {
    cert: readFileSync(t.certFile),
    key: readFileSync(t.keyFile),
    clientCA: t.clientCAFile ? readFileSync(t.clientCAFile) : undefined,
  };
  const provider = new Provider({ kube: new RealKubeClient(kc), nc, log, config, kubeletTls });
  await provider.start();
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    await provider.stop();
    await kc.close();
    await nc.drain().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error('edgefarm-provider failed:', err);
  process.exit(1);
});
