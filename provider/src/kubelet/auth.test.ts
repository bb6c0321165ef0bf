import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { KubeletAuth, requestAttributes } from './auth.js';
import { BadPathError } from './routes.js';

const log = pino({ level: 'silent' });
const req = (method: string, url: string, token?: string) =>
  ({ method, url, headers: token ? { authorization: `Bearer ${token}` } : {}, socket: {} }) as unknown as IncomingMessage;

describe('kubelet authorization attributes', () => {
  it.each([
    ['GET', '/stats/summary', 'get', 'stats'],
    ['GET', '/metrics/resource', 'get', 'metrics'],
    ['GET', '/logs/', 'get', 'log'],
    ['GET', '/containerLogs/ns/p/c?follow=true', 'get', 'proxy'],
    ['POST', '/exec/ns/p/c?command=ls', 'create', 'proxy'],
    ['GET', '/exec/ns/p/c', 'get', 'proxy'],
    ['POST', '/portForward/ns/p', 'create', 'proxy'],
    ['GET', '/pods', 'get', 'proxy'],
    ['GET', '/statsz', 'get', 'proxy'],
    ['GET', '/spec/', 'get', 'spec'],
    ['GET', '/stats', 'get', 'stats'],
    ['GET', '/stats/summary?x=/../exec', 'get', 'stats'],
  ])('%s %s → %s nodes/%s', (method, url, verb, subresource) => {
    expect(requestAttributes(method, url, 'edge-1')).toEqual({
      verb,
      resource: { group: '', resource: 'nodes', subresource, name: 'edge-1' },
    });
  });
});

describe('ambiguous paths are refused, never authorized as one endpoint and routed as another', () => {
  it.each(['/stats/../exec/ns/p/c', '/stats/%2e%2e/exec/ns/p/c', '/metrics%2f..%2fexec/ns/p/c', '/logs/..%5cpods', '//stats/x'])(
    '%s',
    (url) => {
      expect(() => requestAttributes('POST', url, 'edge-1')).toThrow(BadPathError);
    },
  );

  it('check answers 400 for such a path, before any SubjectAccessReview', async () => {
    const kube = new FakeKubeClient();
    kube.tokenUsers.set('t', { username: 'u', groups: [] });
    const a = new KubeletAuth({ kube, log });
    expect(await a.check(req('POST', '/stats/../exec/ns/p/c', 't'), 'edge-1')).toMatchObject({ ok: false, status: { code: 400 } });
    expect(kube.calls.filter((c) => c.startsWith('reviewAccess'))).toEqual([]);
  });
});

describe('KubeletAuth', () => {
  function auth() {
    const kube = new FakeKubeClient();
    let now = 0;
    kube.tokenUsers.set('admin-token', { username: 'admin', groups: ['system:masters'] });
    kube.tokenUsers.set('sa-token', { username: 'system:serviceaccount:default:nobody', groups: ['system:serviceaccounts'] });
    return { kube, a: new KubeletAuth({ kube, log, nowMs: () => now }), tick: (ms: number) => (now += ms) };
  }

  it('refuses anonymous requests and unknown tokens (401)', async () => {
    const { a } = auth();
    expect(await a.check(req('GET', '/pods'), 'edge-1')).toMatchObject({ ok: false, status: { code: 401, reason: 'Unauthorized' } });
    expect(await a.check(req('GET', '/pods', 'bogus'), 'edge-1')).toMatchObject({ ok: false, status: { code: 401 } });
  });

  it('allows what SubjectAccessReview allows, refuses the rest (403 with the attributes)', async () => {
    const { a, kube } = auth();
    expect(await a.check(req('POST', '/exec/default/web/app', 'admin-token'), 'edge-1')).toMatchObject({
      ok: true,
      user: { username: 'admin' },
    });
    const denied = await a.check(req('GET', '/stats/summary', 'sa-token'), 'edge-1');
    expect(denied).toMatchObject({ ok: false, status: { code: 403, reason: 'Forbidden' } });
    expect(!denied.ok && denied.status.message).toContain('verb=get, resource=nodes, subresource=stats');
    expect(kube.calls).toContain('reviewAccess admin create nodes/proxy edge-1');
  });

  it('caches tokens and decisions (allowed 5 min, denied 30 s)', async () => {
    const { a, kube, tick } = auth();
    const count = (m: string) => kube.calls.filter((c) => c.startsWith(m)).length;
    for (let i = 0; i < 3; i++) await a.check(req('GET', '/pods', 'admin-token'), 'edge-1');
    for (let i = 0; i < 3; i++) await a.check(req('GET', '/pods', 'sa-token'), 'edge-1');
    expect(count('reviewToken')).toBe(2);
    expect(count('reviewAccess')).toBe(2);
    tick(31_000);
    await a.check(req('GET', '/pods', 'admin-token'), 'edge-1');
    await a.check(req('GET', '/pods', 'sa-token'), 'edge-1');
    expect(count('reviewAccess')).toBe(3); // only the denial expired
    tick(300_000);
    await a.check(req('GET', '/pods', 'admin-token'), 'edge-1');
    expect(count('reviewToken')).toBe(3); // the token's 2 min passed too
  });

  it('answers 500 when the reviews fail, without caching the failure', async () => {
    const { a, kube } = auth();
    kube.failNext('reviewToken', new Error('apiserver down'));
    expect(await a.check(req('GET', '/pods', 'admin-token'), 'edge-1')).toMatchObject({ ok: false, status: { code: 500 } });
    expect(await a.check(req('GET', '/pods', 'admin-token'), 'edge-1')).toMatchObject({ ok: true });
  });
});
