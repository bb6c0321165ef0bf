/**
 * Provider entry point: the only place that reads the environment or exits. Serves the EdgeNodes of the shards it holds.
 * Its settings are declared in config.ts (PROVIDER_SETTINGS); every one, with its default, is in
 * docs/reference/settings.md. KUBECONFIG picks the Kubernetes identity (default: in-cluster, else ~/.kube/config).
 *
 * Exit codes: 0 after a clean stop on SIGTERM/SIGINT, 1 on a failed start, 2 on bad configuration.
 */
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { connectHub } from './bus/connections.js';
import { Provider } from './provider.js';
import { RealKubeClient } from './kube/client.js';
import { PooledKubeConfig } from './kube/kubeconfig.js';
import { InstrumentedKubeClient } from './kube/instrumented.js';
import { CsrNodeClients } from './kube/node-clients.js';
import { ServingCertificate, type ServingPair } from './kube/serving-cert.js';
import { parseConfig, ConfigError } from './config.js';
import { revokerOf } from './identity/wiring.js';
import { ProviderMetrics } from './metrics/metrics.js';

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
  const hub = await connectHub(config, log);
  log.info({ nats: config.natsUrl, identity: config.identity }, 'connected to the hub');
  const metrics = new ProviderMetrics();
  // The kubelet API's serving certificate: files, or from the cluster through a CSR (renewed below).
  const t = config.kubeletTls;
  let serving: { certificate: ServingCertificate; pair: ServingPair } | undefined;
  let kubeletTls: { cert: Buffer; key: Buffer; clientCA?: Buffer } | undefined;
  if (t && 'fromCluster' in t) {
    const certificate = new ServingCertificate({
      kc,
      log: log.child({ part: 'kubelet-serving' }),
      name: config.identity,
      ips: [config.kubeletAddress],
      lifetimeSeconds: config.nodeCredentialSeconds,
      timeoutMs: config.nodeCredentialTimeoutSeconds * 1000,
      observe: (verb, code, seconds) => metrics.kubeRequest(verb, 'certificatesigningrequests', code, seconds),
    });
    const pair = await certificate.obtain();
    serving = { certificate, pair };
    kubeletTls = {
      cert: Buffer.from(pair.cert),
      key: Buffer.from(pair.key),
      clientCA: t.clientCAFile ? readFileSync(t.clientCAFile) : undefined,
    };
  } else if (t) {
    kubeletTls = {
      cert: readFileSync(t.certFile),
      key: readFileSync(t.keyFile),
      clientCA: t.clientCAFile ? readFileSync(t.clientCAFile) : undefined,
    };
  }
  const servers = config.natsUrl
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
  const revoker = revokerOf(config, kc, servers, log, metrics.registry, config.natsCaFile);
  // What is done for a node is done as that node (decision 0010): a client certificate per node from the CSR API.
  const nodes = new CsrNodeClients({
    kc,
    log: log.child({ part: 'node-clients' }),
    wrap: (client) => new InstrumentedKubeClient(client, (...a) => metrics.kubeRequest(...a)),
    observe: (...a) => metrics.kubeRequest(...a),
    credentialSeconds: config.nodeCredentialSeconds,
    issueTimeoutMs: config.nodeCredentialTimeoutSeconds * 1000,
  });
  const provider = new Provider({ kube: new RealKubeClient(kc), hub, log, config, kubeletTls, metrics, revoker, nodes });
  await provider.start();
  serving?.certificate.renewLater(serving.pair, (next) => provider.setKubeletCertificate(next.cert, next.key));
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    serving?.certificate.stop();
    await provider.stop();
    await nodes.close();
    await kc.close();
    await hub.close().catch(() => undefined);
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  console.error('edgefarm-provider failed:', err);
  process.exit(1);
});
