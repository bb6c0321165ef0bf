import * as k8s from '@kubernetes/client-node';
import { RealRegistrarKube } from './kube.js';

describe('RealRegistrarKube.nodeWithKey', () => {
  it('lists EdgeNodes a page at a time (limit and continue), stopping at the first match', async () => {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:1' }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const kube = new RealRegistrarKube(kc, 2);
    const node = (name: string, key?: string) => ({ metadata: { name }, status: key ? { identity: { publicKey: key } } : {} });
    const pages: Record<string, unknown> = {
      '': { items: [node('a', 'UA'), node('b')], metadata: { continue: 'p2' } },
      p2: { items: [node('c', 'UC'), node('d', 'UD')], metadata: { continue: 'p3' } },
      p3: { items: [node('e')], metadata: {} },
    };
    const requests: { limit?: number; _continue?: string }[] = [];
    (kube as unknown as { custom: unknown }).custom = {
      listClusterCustomObject: (req: { limit?: number; _continue?: string }) => {
        requests.push({ limit: req.limit, _continue: req._continue });
        return Promise.resolve(pages[req._continue ?? '']);
      },
    };
    expect(await kube.nodeWithKey('UD')).toBe('d');
    expect(requests).toEqual([
      { limit: 2, _continue: undefined },
      { limit: 2, _continue: 'p2' },
    ]);
    requests.length = 0;
    expect(await kube.nodeWithKey('UX')).toBeUndefined();
    expect(requests.map((r) => r._continue)).toEqual([undefined, 'p2', 'p3']);
  });
});
