import { pino } from 'pino';
import { Registry } from 'prom-client';
import { FakeKubeClient } from './kube/fake.js';
import { KubeletAuth } from './kubelet/auth.js';
import { httpServer } from './http.js';

const metrics = { text: async () => 'up 1\n', contentType: 'text/plain; version=0.0.4' };

describe('/metrics behind TokenReview and SubjectAccessReview (EF_METRICS_AUTH)', () => {
  function rig() {
    const kube = new FakeKubeClient();
    kube.tokenUsers.set('scraper', { username: 'system:serviceaccount:monitoring:prometheus', groups: ['system:serviceaccounts'] });
    kube.tokenUsers.set('other', { username: 'system:serviceaccount:default:nobody', groups: ['system:serviceaccounts'] });
    kube.allow = (u, a) => u.username.endsWith(':prometheus') && a.verb === 'get' && a.path === '/metrics' && !a.resource;
    const registry = new Registry();
    const http = httpServer({
      notReady: () => undefined,
      metrics,
      metricsAuth: new KubeletAuth({ kube, log: pino({ level: 'silent' }) }),
      registry,
    });
    const scrape = (token?: string) =>
      http.inject({ method: 'GET', url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });
    const count = async (reason: string) =>
      (await registry.getSingleMetric('edgefarm_provider_metrics_requests_rejected_total')!.get()).values.find(
        (v) => v.labels.reason === reason,
      )?.value;
    return { kube, http, scrape, count };
  }

  it('serves a scraper allowed get /metrics', async () => {
    const { scrape, kube } = rig();
    const r = await scrape('scraper');
    expect(r.statusCode).toBe(200);
    expect(r.body).toBe('up 1\n');
    expect(kube.calls).toContain('reviewToken');
  });

  it('401 without a token or with one the apiserver does not know, 403 without the right; counted', async () => {
    const { scrape, count } = rig();
    expect((await scrape()).statusCode).toBe(401);
    expect((await scrape('bogus')).statusCode).toBe(401);
    const denied = await scrape('other');
    expect(denied.statusCode).toBe(403);
    expect(JSON.parse(denied.body).message).toContain('verb=get, path=/metrics');
    expect(await count('unauthenticated')).toBe(2);
    expect(await count('forbidden')).toBe(1);
  });

  it('500 when the review fails', async () => {
    const { scrape, kube, count } = rig();
    kube.failNext('reviewToken', new Error('apiserver down'));
    expect((await scrape('scraper')).statusCode).toBe(500);
    expect(await count('auth_error')).toBe(1);
  });

  it('is off by default: a plain scrape works, /healthz never asks', async () => {
    const http = httpServer({ notReady: () => undefined, metrics });
    expect((await http.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
    const { http: guarded } = rig();
    expect((await guarded.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
