import { edge } from '@edgefarm/proto';
import { specFingerprint, tokenKey, translatePod } from './translate.js';
import { podObjectKeys } from '@edgefarm/proto';
import { specTokenKeys } from './tokens.js';
import { pod } from './testing.js';

describe('translatePod', () => {
  it('translates the supported subset', () => {
    const t = translatePod(
      pod({
        restartPolicy: 'OnFailure',
        terminationGracePeriodSeconds: 5,
        containers: [
          {
            name: 'c',
            image: 'img',
            imagePullPolicy: 'Never',
            env: [
              { name: 'A', value: '1' },
              { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            ],
            ports: [{ containerPort: 80 }],
          },
        ],
      }),
    );
    if (!t.ok) throw new Error(t.unsupported.join());
    expect(t.spec.restartPolicy).toBe(edge.RestartPolicy.ON_FAILURE);
    expect(t.spec.terminationGracePeriodSeconds).toBe(5n);
    expect(t.spec.containers[0]!.env).toEqual([
      expect.objectContaining({ name: 'A', value: '1' }),
      expect.objectContaining({ name: 'POD', value: 'web-1' }),
    ]);
    expect(t.spec.containers[0]!.imagePullPolicy).toBe(edge.PullPolicy.NEVER);
    expect(t.spec.containers[0]!.ports[0]!.protocol).toBe('TCP');
    expect(t.spec.deleting).toBe(false);
  });

  it('ignores the auto-injected service account volume', () => {
    const p = pod({
      volumes: [{ name: 'kube-api-access-abcde', projected: { sources: [] } }],
      containers: [
        {
          name: 'c',
          image: 'i',
          volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
        },
      ],
    });
    expect(translatePod(p).ok).toBe(true);
  });

  it('lists every unsupported field instead of dropping it', () => {
    const t = translatePod(
      pod({
        hostPID: true,
        volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'x' } }],
        containers: [
          {
            name: 'c',
            image: 'i',
            volumeMounts: [
              { name: 'data', mountPath: '/data' },
              { name: 'nope', mountPath: '/x' },
            ],
            env: [{ name: 'S', valueFrom: { fieldRef: { fieldPath: 'status.phase' } } }],
          },
        ],
      }),
    );
    expect(t.ok).toBe(false);
    if (t.ok) return;
    expect(t.unsupported).toEqual([
      'volumes[data]: persistentVolumeClaim volumes are not supported at the edge',
      'hostPID: not supported at the edge',
      'containers[0].volumeMounts[nope]: no volume of that name',
      'containers[0].env[S].valueFrom: fieldRef status.phase is not supported',
    ]);
  });

  it.each([
    [{ name: 'v', nfs: { server: 's', path: '/' } }, 'volumes[v]: nfs volumes are not supported at the edge'],
    [{ name: 'v', emptyDir: { medium: 'HugePages' } }, 'volumes[v].emptyDir.medium: "HugePages" is not supported at the edge'],
    [{ name: 'v', emptyDir: { sizeLimit: 'lots' } }, 'volumes[v].emptyDir.sizeLimit: "lots" is not a quantity'],
    [{ name: 'v', hostPath: { path: '/x', type: 'Pipe' } }, 'volumes[v].hostPath.type: unknown value "Pipe"'],
    [
      { name: 'v', projected: { sources: [{ clusterTrustBundle: { path: 'x' } }] } },
      'volumes[v].projected.sources[0]: clusterTrustBundle projections are not supported at the edge',
    ],
    [
      { name: 'v', downwardAPI: { items: [{ path: 'n', fieldRef: { fieldPath: 'spec.nodeName' } }] } },
      'volumes[v].downwardAPI[n]: fieldRef spec.nodeName is not supported in a downwardAPI volume',
    ],
  ])('rejects the volume %j', (volume, problem) => {
    const t = translatePod(pod({ volumes: [volume] }));
    expect(t.ok ? [] : t.unsupported).toEqual([problem]);
  });

  it('translates every supported volume kind, mounts and env references', () => {
    const t = translatePod(
      pod(
        {
          serviceAccountName: 'robot',
          volumes: [
            { name: 'scratch', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
            { name: 'host', hostPath: { path: '/var/data', type: 'DirectoryOrCreate' } },
            { name: 'cfg', configMap: { name: 'app', items: [{ key: 'a.conf', path: 'conf/a.conf', mode: 0o600 }], defaultMode: 0o644 } },
            { name: 'creds', secret: { secretName: 'db', optional: true } },
            {
              name: 'info',
              downwardAPI: {
                items: [
                  { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
                  { path: 'mem', resourceFieldRef: { containerName: 'c', resource: 'limits.memory', divisor: '1Mi' } },
                ],
              },
            },
            {
              name: 'kube-api-access-x1',
              projected: {
                defaultMode: 0o644,
                sources: [
                  { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
                  { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
                  { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
                ],
              },
            },
          ],
          containers: [
            {
              name: 'c',
              image: 'i',
              resources: { limits: { memory: '128Mi' } },
              volumeMounts: [
                { name: 'cfg', mountPath: '/etc/app', readOnly: true },
                { name: 'host', mountPath: '/data', subPath: 'x' },
              ],
              env: [
                { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'app', key: 'greeting' } } },
                { name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw', optional: true } } },
                { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                { name: 'TIER', valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } },
                { name: 'CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
              ],
              envFrom: [{ prefix: 'APP_', configMapRef: { name: 'app' } }, { secretRef: { name: 'db', optional: true } }],
            },
          ],
        },
        { labels: { tier: 'edge', app: 'x"y' } },
      ),
      { allocatable: { cpu: '2', memory: '4Gi' } },
    );
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    const [scratch, host, cfg, creds, info, sa] = t.spec.volumes;
    expect(scratch!.source).toEqual({
      case: 'emptyDir',
      value: expect.objectContaining({ memory: true, sizeLimitBytes: 64n * 1024n * 1024n }),
    });
    expect(host!.source).toEqual({ case: 'hostPath', value: expect.objectContaining({ path: '/var/data', type: 'DirectoryOrCreate' }) });
    expect(cfg!.source.case === 'projected' && cfg!.source.value.sources[0]!.source).toEqual({
      case: 'configMap',
      value: expect.objectContaining({
        name: 'app',
        optional: false,
        items: [expect.objectContaining({ key: 'a.conf', path: 'conf/a.conf', mode: 0o600 })],
      }),
    });
    expect(creds!.source.case === 'projected' && creds!.source.value.sources[0]!.source).toEqual({
      case: 'secret',
      value: expect.objectContaining({ name: 'db', optional: true, items: [] }),
    });
    const files =
      info!.source.case === 'projected' && info!.source.value.sources[0]!.source.case === 'files'
        ? info!.source.value.sources[0]!.source.value.files
        : [];
    expect(files.map((f) => [f.path, new TextDecoder().decode(f.content)])).toEqual([
      ['labels', 'app="x\\"y"\ntier="edge"'],
      ['mem', '128'],
    ]);
    const saSources = sa!.source.case === 'projected' ? sa!.source.value.sources.map((x) => x.source.case) : [];
    expect(saSources).toEqual(['serviceAccountToken', 'configMap', 'files']);
    expect(sa!.source.case === 'projected' && sa!.source.value.sources[0]!.source.value).toEqual(
      expect.objectContaining({ key: tokenKey(3607, ''), path: 'token' }),
    );

    const c = t.spec.containers[0]!;
    expect(c.volumeMounts.map((m) => [m.name, m.mountPath, m.subPath, m.readOnly])).toEqual([
      ['cfg', '/etc/app', '', true],
      ['host', '/data', 'x', false],
    ]);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e]));
    expect(env.GREETING!.configMapKeyRef).toEqual(expect.objectContaining({ name: 'app', key: 'greeting', optional: false }));
    expect(env.PW!.secretKeyRef).toEqual(expect.objectContaining({ name: 'db', key: 'pw', optional: true }));
    expect(env.IP!.fieldPath).toBe('status.podIP');
    expect(env.TIER!.value).toBe('edge');
    expect(env.CPU!.value).toBe('2000'); // no CPU limit: the node's allocatable, in millicores
    expect(c.envFrom.map((e) => [e.prefix, e.configMap, e.secret, e.optional])).toEqual([
      ['APP_', 'app', '', false],
      ['', '', 'db', true],
    ]);
    expect(podObjectKeys(t.spec)).toEqual([
      'configmap/default/app',
      'configmap/default/kube-root-ca.crt',
      'secret/default/db',
      'token/default/web-1',
    ]);
    expect(specTokenKeys(t.spec)).toEqual(['3607/']);
  });

  it('needs the node allocatable for a limit the container does not set', () => {
    const t = translatePod(
      pod({
        containers: [{ name: 'c', image: 'i', env: [{ name: 'M', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } }] }],
      }),
    );
    expect(t.ok ? undefined : t).toEqual({
      ok: false,
      unsupported: [],
      waiting: [expect.stringMatching(/no limit set and the node's allocatable memory is not known yet/)],
    });
  });

  it('resourceFieldRef as the kubelet: divisor "0" (the API\'s zero default) is 1, an unset or zero limit is the node allocatable', () => {
    // The upstream spec "Downward API should provide container's limits.cpu/memory and requests.cpu/memory as env
    // vars": the API serializes the divisor it defaulted to the zero Quantity as "0".
    const ref = (name: string, resource: string, divisor = '0') => ({ name, valueFrom: { resourceFieldRef: { resource, divisor } } });
    const envOf = (t: ReturnType<typeof translatePod>) =>
      t.ok ? Object.fromEntries(t.spec.containers[0]!.env.map((e) => [e.name, e.value])) : t;
    const limited = translatePod(
      pod({
        containers: [
          {
            name: 'c',
            image: 'i',
            resources: { requests: { cpu: '250m', memory: '32Mi' }, limits: { cpu: '1250m', memory: '64Mi' } },
            env: [
              ref('CPU_LIMIT', 'limits.cpu'),
              ref('MEMORY_LIMIT', 'limits.memory'),
              ref('CPU_REQUEST', 'requests.cpu'),
              ref('MEMORY_REQUEST', 'requests.memory'),
              ref('CPU_MILLI', 'limits.cpu', '1m'),
              ref('MEMORY_MI', 'requests.memory', '1Mi'),
            ],
          },
        ],
      }),
      { allocatable: { cpu: '2', memory: '4Gi' } },
    );
    expect(envOf(limited)).toEqual({
      CPU_LIMIT: '2',
      MEMORY_LIMIT: '67108864',
      CPU_REQUEST: '1',
      MEMORY_REQUEST: '33554432',
      CPU_MILLI: '1250',
      MEMORY_MI: '32',
    });
    // "should provide default limits.cpu/memory from node allocatable": no limits (or zero ones) at all.
    const unlimited = translatePod(
      pod({
        containers: [
          {
            name: 'c',
            image: 'i',
            resources: { limits: { memory: '0' } },
            env: [
              ref('CPU_LIMIT', 'limits.cpu'),
              ref('MEMORY_LIMIT', 'limits.memory'),
              ref('STORAGE_LIMIT', 'limits.ephemeral-storage'),
              ref('CPU_REQUEST', 'requests.cpu'),
              ref('HUGE', 'limits.hugepages-2Mi'),
            ],
          },
        ],
      }),
      { allocatable: { cpu: '2', memory: '4Gi', 'hugepages-2Mi': '1Gi' } },
    );
    // ephemeral-storage not in the allocatable: 0 as the kubelet; hugepages never come from the allocatable.
    expect(envOf(unlimited)).toEqual({ CPU_LIMIT: '2', MEMORY_LIMIT: '4294967296', STORAGE_LIMIT: '0', CPU_REQUEST: '0', HUGE: '0' });
  });

  it('refuses a negative resourceFieldRef divisor', () => {
    const t = translatePod(
      pod({
        containers: [
          { name: 'c', image: 'i', env: [{ name: 'X', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '-1' } } }] },
        ],
      }),
      { allocatable: { cpu: '2', memory: '4Gi' } },
    );
    expect(t.ok ? [] : t.unsupported).toEqual([expect.stringMatching(/divisor must be positive/)]);
  });

  it("carries the kubelet's service environment variables of the pod's namespace, and waits until the Services are read", () => {
    const asked: [string, boolean][] = [];
    const serviceEnv = (namespace: string, links: boolean) => {
      asked.push([namespace, links]);
      return [{ name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' }];
    };
    const t = translatePod(pod(), { serviceEnv });
    expect(t.ok && t.spec.serviceEnv.map((e) => [e.name, e.value])).toEqual([['KUBERNETES_SERVICE_HOST', '10.96.0.1']]);
    translatePod(pod({ enableServiceLinks: false }), { serviceEnv });
    expect(asked).toEqual([
      ['default', true],
      ['default', false],
    ]);
    // Not in the container: a Service change must not change the container (its hash restarts it at the edge).
    expect(t.ok && t.spec.containers[0]!.env).toEqual([]);
    const early = translatePod(pod(), { serviceEnv: () => undefined });
    expect(early.ok ? undefined : early).toEqual({
      ok: false,
      unsupported: [],
      waiting: [expect.stringMatching(/Services have not been read yet/)],
    });
  });

  it('node conformance envFrom shape: the same ConfigMap twice (no prefix, "p-") and a Secret reach the spec and its object refs', () => {
    const t = translatePod(
      pod({
        restartPolicy: 'Never',
        containers: [
          {
            name: 'env-test',
            image: 'busybox',
            command: ['sh', '-c', 'env'],
            envFrom: [{ configMapRef: { name: 'cm' } }, { prefix: 'p-', configMapRef: { name: 'cm' } }, { secretRef: { name: 's' } }],
            env: [{ name: 'CONFIG_DATA_1', valueFrom: { configMapKeyRef: { name: 'cm2', key: 'data-1' } } }],
          },
        ],
      }),
    );
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    expect(t.spec.containers[0]!.envFrom.map((e) => [e.prefix, e.configMap, e.secret, e.optional])).toEqual([
      ['', 'cm', '', false],
      ['p-', 'cm', '', false],
      ['', '', 's', false],
    ]);
    expect(podObjectKeys(t.spec)).toEqual(['configmap/default/cm', 'configmap/default/cm2', 'secret/default/s']);
  });

  it('carries activeDeadlineSeconds', () => {
    const t = translatePod(pod({ activeDeadlineSeconds: 30 }));
    expect(t.ok && t.spec.activeDeadlineSeconds).toBe(30n);
  });

  it('rejects unknown enum values and incomplete pods', () => {
    expect(translatePod(pod({ restartPolicy: 'Sometimes' })).ok).toBe(false);
    expect(translatePod({ metadata: { name: 'x' } }).ok).toBe(false);
  });

  it('marks deleting pods with their grace period', () => {
    const t = translatePod(pod({}, { deletionTimestamp: new Date(), deletionGracePeriodSeconds: 3 }));
    expect(t.ok && t.spec.deleting && t.spec.deletionGracePeriodSeconds).toBe(3n);
  });

  it('fingerprints ignore resourceVersion churn but see spec changes', () => {
    const a = translatePod(pod({}, { resourceVersion: '7' }));
    const b = translatePod(pod({}, { resourceVersion: '9' }));
    const c = translatePod(pod({ containers: [{ name: 'c', image: 'other' }] }));
    if (!a.ok || !b.ok || !c.ok) throw new Error('unexpected');
    expect(specFingerprint(a.spec)).toBe(specFingerprint(b.spec));
    expect(specFingerprint(a.spec)).not.toBe(specFingerprint(c.spec));
  });

  it('fsGroup and fsGroupChangePolicy reach the agent; without fsGroup none is set', () => {
    const withGroup = translatePod(
      pod({ securityContext: { fsGroup: 1001, fsGroupChangePolicy: 'OnRootMismatch' }, containers: [{ name: 'c', image: 'i' }] }),
    );
    const without = translatePod(pod({ containers: [{ name: 'c', image: 'i' }] }));
    if (!withGroup.ok || !without.ok) throw new Error('unexpected');
    expect(withGroup.spec.fsGroup).toBe(1001n);
    expect(withGroup.spec.fsGroupChangePolicy).toBe('OnRootMismatch');
    expect(without.spec.fsGroup).toBeUndefined();
  });
});

describe('translatePod: what the runtime at the edge enforces', () => {
  it('resources in base units, the effective security context, probes with defaults and named ports, termination message', () => {
    const t = translatePod(
      pod({
        imagePullSecrets: [{ name: 'regcred' }],
        securityContext: {
          runAsUser: 1000,
          runAsNonRoot: true,
          supplementalGroups: [5],
          fsGroup: 2000,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'c',
            image: 'i',
            ports: [{ name: 'http', containerPort: 8080 }],
            resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: '1.5', memory: '128Mi', 'ephemeral-storage': '1Gi' } },
            securityContext: {
              runAsUser: 1001,
              readOnlyRootFilesystem: true,
              capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
              allowPrivilegeEscalation: false,
            },
            livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
            readinessProbe: { tcpSocket: { port: 8080 } },
            startupProbe: { exec: { command: ['true'] }, failureThreshold: 30, terminationGracePeriodSeconds: 7 },
            terminationMessagePolicy: 'FallbackToLogsOnError',
          },
        ],
      }),
    );
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    expect(t.spec.fsGroup).toBe(2000n);
    expect(t.spec.fsGroupChangePolicy).toBe('');
    const c = t.spec.containers[0]!;
    expect(c.resources).toEqual(
      expect.objectContaining({
        cpuRequestMillis: 250n,
        cpuLimitMillis: 1500n,
        memoryRequestBytes: 64n * 2n ** 20n,
        memoryLimitBytes: 128n * 2n ** 20n,
      }),
    );
    expect(c.securityContext).toEqual(
      expect.objectContaining({
        runAsUser: 1001n,
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        capabilitiesAdd: ['NET_ADMIN'],
        capabilitiesDrop: ['ALL'],
        allowPrivilegeEscalation: false,
        supplementalGroups: [5n, 2000n],
        seccompProfile: 'RuntimeDefault',
      }),
    );
    expect(c.securityContext!.runAsGroup).toBeUndefined();
    expect(c.livenessProbe).toEqual(
      expect.objectContaining({ periodSeconds: 5, timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3 }),
    );
    expect(c.livenessProbe!.handler).toEqual({
      case: 'httpGet',
      value: expect.objectContaining({ path: '/healthz', port: 8080, scheme: 'HTTP' }),
    });
    expect(c.readinessProbe!.handler).toEqual({ case: 'tcpSocket', value: expect.objectContaining({ port: 8080 }) });
    expect(c.startupProbe).toEqual(expect.objectContaining({ failureThreshold: 30, terminationGracePeriodSeconds: 7n, periodSeconds: 10 }));
    expect([c.terminationMessagePath, c.terminationMessagePolicy]).toEqual(['/dev/termination-log', 'FallbackToLogsOnError']);
    expect(t.spec.imagePullSecrets).toEqual(['regcred']);
    expect(podObjectKeys(t.spec)).toEqual(['secret/default/regcred']);
  });

  it.each([
    [
      { resources: { limits: { 'nvidia.com/gpu': '1' } } },
      'containers[0].resources.limits.nvidia.com/gpu: extended resources are not supported at the edge',
    ],
    [{ resources: { limits: { memory: 'lots' } } }, 'containers[0].resources.limits.memory: "lots" is not a Kubernetes quantity'],
    [
      { securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: 'x.json' } } },
      'containers[0].securityContext.seccompProfile: type Localhost is not supported at the edge',
    ],
    [{ livenessProbe: { httpGet: { port: 'metrics' } } }, 'containers[0].livenessProbe.httpGet.port: no container port named "metrics"'],
    [{ readinessProbe: { periodSeconds: 3 } }, 'containers[0].readinessProbe: a probe needs exec, httpGet, tcpSocket or grpc'],
    [
      { lifecycle: { preStop: { tcpSocket: { port: 80 } } } },
      'containers[0].lifecycle.preStop: tcpSocket hooks are not run (deprecated): use exec, httpGet or sleep',
    ],
    [{ terminationMessagePolicy: 'Sometimes' }, 'containers[0].terminationMessagePolicy: unknown value "Sometimes"'],
  ])('rejects %j', (over, problem) => {
    const t = translatePod(pod({ containers: [{ name: 'c', image: 'i', ...over }] }));
    expect(t.ok ? [] : t.unsupported).toEqual([problem]);
  });
});
