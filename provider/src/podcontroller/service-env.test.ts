import type { V1Service } from '@kubernetes/client-node';
import type { Watcher } from '../kube/client.js';
import { FakeStore } from '../kube/fake.js';
import { ServiceEnv, serviceEnvVars } from './service-env.js';

function svc(namespace: string, name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[]): V1Service {
  return { metadata: { namespace, name }, spec: { clusterIP, ports } };
}
const asRecord = (env: { name: string; value: string }[]) => Object.fromEntries(env.map((e) => [e.name, e.value]));

const kubernetes = svc('default', 'kubernetes', '10.96.0.1', [{ name: 'https', port: 443 }]);

describe('serviceEnvVars (pkg/kubelet/envvars FromServices, getServiceEnvVarMap)', () => {
  it('makes the kubelet variables, sorted by name', () => {
    const env = serviceEnvVars(
      [
        svc('ns', 'foo-bar', '1.2.3.4', [
          { port: 8080, protocol: 'TCP' },
          { name: 'udp-port', port: 8081, protocol: 'UDP' },
        ]),
        svc('ns', '1st.svc', 'fd00::10', [{ name: 'web', port: 80 }]),
        svc('ns', 'headless', 'None', [{ port: 80 }]),
        svc('ns', 'external', '', [{ port: 80 }]),
      ],
      [kubernetes],
      true,
    );
    expect(env.map((e) => e.name)).toEqual([...env.map((e) => e.name)].sort());
    expect(asRecord(env)).toEqual({
      FOO_BAR_SERVICE_HOST: '1.2.3.4',
      FOO_BAR_SERVICE_PORT: '8080',
      FOO_BAR_SERVICE_PORT_UDP_PORT: '8081',
      FOO_BAR_PORT: 'tcp://1.2.3.4:8080',
      FOO_BAR_PORT_8080_TCP: 'tcp://1.2.3.4:8080',
      FOO_BAR_PORT_8080_TCP_PROTO: 'tcp',
      FOO_BAR_PORT_8080_TCP_PORT: '8080',
      FOO_BAR_PORT_8080_TCP_ADDR: '1.2.3.4',
      FOO_BAR_PORT_8081_UDP: 'udp://1.2.3.4:8081',
      FOO_BAR_PORT_8081_UDP_PROTO: 'udp',
      FOO_BAR_PORT_8081_UDP_PORT: '8081',
      FOO_BAR_PORT_8081_UDP_ADDR: '1.2.3.4',
      _1ST_SVC_SERVICE_HOST: 'fd00::10',
      _1ST_SVC_SERVICE_PORT: '80',
      _1ST_SVC_SERVICE_PORT_WEB: '80',
      _1ST_SVC_PORT: 'tcp://[fd00::10]:80',
      _1ST_SVC_PORT_80_TCP: 'tcp://[fd00::10]:80',
      _1ST_SVC_PORT_80_TCP_PROTO: 'tcp',
      _1ST_SVC_PORT_80_TCP_PORT: '80',
      _1ST_SVC_PORT_80_TCP_ADDR: 'fd00::10',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
      KUBERNETES_PORT: 'tcp://10.96.0.1:443',
      KUBERNETES_PORT_443_TCP: 'tcp://10.96.0.1:443',
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_PORT: '443',
      KUBERNETES_PORT_443_TCP_ADDR: '10.96.0.1',
    });
  });

  it("without service links only the default namespace's kubernetes Service; other default Services only for pods there", () => {
    const other = svc('default', 'other', '10.96.0.7', [{ port: 1 }]);
    expect(Object.keys(asRecord(serviceEnvVars([svc('ns', 'a', '1.1.1.1', [{ port: 1 }])], [kubernetes, other], false)))).toEqual(
      expect.arrayContaining(['KUBERNETES_SERVICE_HOST']),
    );
    expect(
      serviceEnvVars([svc('ns', 'a', '1.1.1.1', [{ port: 1 }])], [kubernetes, other], false).some((e) => /^(A|OTHER)_/.test(e.name)),
    ).toBe(false);
    expect(serviceEnvVars([kubernetes, other], [kubernetes, other], true).some((e) => e.name === 'OTHER_SERVICE_HOST')).toBe(true);
  });

  it("a kubernetes Service of the pod's own namespace wins over the default namespace's", () => {
    const mine = svc('ns', 'kubernetes', '10.0.0.5', [{ port: 80 }]);
    expect(asRecord(serviceEnvVars([mine], [kubernetes], true)).KUBERNETES_SERVICE_HOST).toBe('10.0.0.5');
    expect(asRecord(serviceEnvVars([mine], [kubernetes], false)).KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
  });

  it('a Service without ports adds nothing (never indexes a first port of none)', () => {
    expect(serviceEnvVars([svc('ns', 'empty', '1.1.1.1', [])], [], true)).toEqual([]);
  });
});

describe('ServiceEnv (the informer)', () => {
  it('answers nothing before its first list, then per namespace; a change reports its namespace', async () => {
    const store = new FakeStore<V1Service>();
    store.set(kubernetes);
    store.set(svc('ns', 'a', '1.1.1.1', [{ port: 1 }]));
    const env = new ServiceEnv(store);
    expect(env.env('ns', true)).toBeUndefined();
    const changed: string[] = [];
    await env.start((ns, name) => changed.push(`${ns}/${name}`));
    expect(asRecord(env.env('ns', true)!)).toMatchObject({ A_SERVICE_HOST: '1.1.1.1', KUBERNETES_SERVICE_HOST: '10.96.0.1' });
    store.set(svc('ns', 'b', '1.1.1.2', [{ port: 2 }]));
    expect(changed).toEqual(['ns/b']);
    expect(asRecord(env.env('ns', true)!).B_SERVICE_HOST).toBe('1.1.1.2');
    expect(asRecord(env.env('elsewhere', true)!).B_SERVICE_HOST).toBeUndefined();
    store.delete('ns', 'b');
    expect(changed).toEqual(['ns/b', 'ns/b']);
    expect(asRecord(env.env('ns', true)!).B_SERVICE_HOST).toBeUndefined();
  });

  it('a failed first list leaves no answer (pods wait) until the informer delivers again', async () => {
    let handlers: Parameters<Watcher<V1Service>['start']>[0] | undefined;
    const watch: Watcher<V1Service> = {
      start: async (h) => {
        handlers = h;
        h.error?.(new Error('services is forbidden'));
      },
      get: () => undefined,
      list: () => [],
      stop: async () => undefined,
    };
    const env = new ServiceEnv(watch);
    const errors: unknown[] = [];
    await env.start(
      () => undefined,
      (err) => errors.push(err),
    );
    expect(errors).toHaveLength(1);
    expect(env.env('ns', true)).toBeUndefined();
    handlers!.changed(kubernetes); // the relist
    expect(asRecord(env.env('ns', true)!).KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
  });
});
