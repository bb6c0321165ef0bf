import { edge } from '@edgefarm/proto';
import { translatePod } from './translate.js';
import { pod } from './testing.js';

const translated = (over: object) => {
  const t = translatePod(pod({ containers: [{ name: 'c', image: 'i', ports: [{ name: 'web', containerPort: 8080 }], ...over }] }));
  if (!t.ok) throw new Error(t.unsupported.join('; '));
  return t.spec.containers[0]!;
};

describe('lifecycle hooks in the desired pod', () => {
  it('carries a postStart exec hook and a preStop httpGet hook (named port resolved, https kept)', () => {
    const c = translated({
      lifecycle: {
        postStart: { exec: { command: ['sh', '-c', 'echo hi'] } },
        preStop: { httpGet: { path: '/echo?msg=prestop', port: 'web', host: '10.0.0.9', scheme: 'HTTPS' } },
      },
    });
    expect(c.postStart?.handler).toEqual({ case: 'exec', value: expect.objectContaining({ command: ['sh', '-c', 'echo hi'] }) });
    expect(c.preStop?.handler).toEqual({
      case: 'httpGet',
      value: expect.objectContaining({ path: '/echo?msg=prestop', port: 8080, host: '10.0.0.9', scheme: 'HTTPS' }),
    });
  });

  it('carries a sleep hook', () => {
    const c = translated({ lifecycle: { preStop: { sleep: { seconds: 5 } } } });
    expect(c.preStop?.handler).toEqual({ case: 'sleep', value: expect.objectContaining({ seconds: 5n }) });
    expect(c.postStart).toBeUndefined();
  });

  it.each([
    [
      { preStop: { tcpSocket: { port: 80 } } },
      'containers[0].lifecycle.preStop: tcpSocket hooks are not run (deprecated): use exec, httpGet or sleep',
    ],
    [{ postStart: {} }, 'containers[0].lifecycle.postStart: a hook needs exec, httpGet or sleep'],
    [{ postStart: { httpGet: { port: 'nope' } } }, 'containers[0].lifecycle.postStart.httpGet.port: no container port named "nope"'],
  ])('rejects %j', (lifecycle, problem) => {
    const t = translatePod(pod({ containers: [{ name: 'c', image: 'i', lifecycle }] }));
    expect(t.ok ? [] : t.unsupported).toEqual([problem]);
  });

  it('leaves a container without hooks as it was', () => {
    const c = translated({});
    expect(c.postStart).toBeUndefined();
    expect(c.preStop).toBeUndefined();
    expect(edge.EdgeContainerSchema.typeName).toBe('edgefarm.v1.EdgeContainer');
  });
});
