import { PublishedPods } from './published.js';

describe('PublishedPods', () => {
  it('answers which pods a node has, which use an object, and whether any on a node still uses it', () => {
    const p = new PublishedPods();
    p.set('default/a', { node: 'edge-1', uid: 'ua', fingerprint: 'f', refs: ['configmap/default/app', 'token/default/a'] });
    p.set('default/b', { node: 'edge-1', uid: 'ub', fingerprint: 'f', refs: ['configmap/default/app'] });
    p.set('default/c', { node: 'edge-2', uid: 'uc', fingerprint: 'f', refs: ['configmap/default/app'] });
    expect(p.onNode('edge-1')).toEqual(['default/a', 'default/b']);
    expect(p.using('configmap/default/app')).toEqual(['default/a', 'default/b', 'default/c']);
    expect(p.usedOn('edge-2', 'token/default/a')).toBe(false);
    p.delete('default/a');
    expect(p.usedOn('edge-1', 'configmap/default/app')).toBe(true);
    p.forgetNode('edge-1');
    expect(p.usedOn('edge-1', 'configmap/default/app')).toBe(false);
    expect(p.get('default/c')?.uid).toBe('uc');
  });
});
