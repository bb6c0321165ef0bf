/**
 * A KubeConfig whose API requests share one connection pool per cluster and user.
 *
 * @kubernetes/client-node 2.0.1 gives every API request a new undici Agent when the cluster uses TLS
 * (KubeConfig.applySecurityAuthentication → createDispatcher), so every request opens a new TCP connection and does a
 * full TLS handshake with the client certificate. At 100 edge nodes that was ~40 % of the provider's CPU
 * (docs/decisions/0007-provider-cost-per-node.md). Here the first dispatcher made for a cluster/user pair is kept and
 * handed to every later request of that pair; undici keeps its connections alive and reuses them, as client-go does.
 * The dispatchers made for later requests are never used, so they open nothing.
 *
 * Credentials carried in headers (bearer tokens, the in-cluster ServiceAccount token) are still applied per request;
 * a client certificate is read once, when the pair's first request is made (restart to pick up a rotated one).
 */
import * as k8s from '@kubernetes/client-node';

type Dispatcher = NonNullable<ReturnType<k8s.RequestContext['getDispatcher']>>;

export class PooledKubeConfig extends k8s.KubeConfig {
  private readonly dispatchers = new Map<string, Dispatcher>();

  override async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (made === undefined) return; // plain HTTP, nothing to pool
    const key = JSON.stringify([this.getCurrentCluster()?.name ?? '', this.getCurrentUser()?.name ?? '']);
    const pooled = this.dispatchers.get(key);
    if (pooled === undefined) this.dispatchers.set(key, made);
    else context.setDispatcher(pooled);
  }

  /** Closes the pooled connections (in-flight requests finish first). */
  async close(): Promise<void> {
    const all = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(all.map((d) => d.close()));
  }
}
