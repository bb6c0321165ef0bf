/**
 * A container's environment as the upstream node conformance specs see it, against a real containerd and NATS: the
 * main process's environment (/proc/1/environ, what `sh -c env` prints in "[sig-node] ConfigMap should be consumable
 * via the environment", "Secrets should be consumable via the environment", "... via environment variable" and
 * "Pods should contain environment variables for services"). The test plays the provider: objects first, then the pod.
 */
import { edge } from '@edgefarm/proto';
import { BUSYBOX, edgeObject, podSpec, publishDesired, publishObject, publishTombstone, StatusWatcher, TestSite } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let bed: AgentBed;
let site: TestSite;
let watcher: StatusWatcher;

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, watcher } = bed);
}, T);
afterAll(() => bed?.stop(), T);

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
const idOf = (r: edge.PodStatusReport, name: string) =>
  r.containerStatuses.find((c) => c.name === name)!.containerId.replace(/^containerd:\/\//, '');

/** The environment of the container's main process. */
async function mainEnv(containerId: string): Promise<Record<string, string>> {
  const r = await bed.exec(containerId, ['cat', '/proc/1/environ']);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
  const entries = r.out.split('\0').filter((l) => l.includes('='));
  return Object.fromEntries(entries.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('container environment with containerd (node conformance shapes)', () => {
  it(
    'envFrom a ConfigMap twice (with and without prefix), envFrom a Secret, a key reference, and the service variables under them',
    async () => {
      const data = { 'data-1': 'value-1', 'data-2': 'value-2', 'data-3': 'value-3' };
      await publishObject(site.hubNc, site.node, 'configmap', edgeObject('configmap-test-1', '1', data));
      await publishObject(site.hubNc, site.node, 'secret', edgeObject('secret-test-1', '1', data));
      // Not through `sh -c`: the busybox 1.35 shell of the test image leaves names with '-' (data-1) out of what it
      // passes on, so /proc/1/environ after its exec would lack them although containerd set them.
      const sleep = ['sleep', '3600'];
      const pod = podSpec({
        restartPolicy: edge.RestartPolicy.NEVER,
        serviceEnv: [
          { name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' },
          { name: 'KUBERNETES_SERVICE_PORT', value: '443' },
          { name: 'data-1', value: 'from-service' },
        ],
        containers: [
          {
            name: 'cm-env-from',
            image: BUSYBOX,
            command: sleep,
            envFrom: [{ configMap: 'configmap-test-1' }, { prefix: 'p-', configMap: 'configmap-test-1' }],
          },
          {
            name: 'secret-env-from',
            image: BUSYBOX,
            command: sleep,
            envFrom: [{ secret: 'secret-test-1' }, { prefix: 'p-', secret: 'secret-test-1' }],
          },
          {
            name: 'key-ref',
            image: BUSYBOX,
            command: sleep,
            env: [
              { name: 'CONFIG_DATA_1', configMapKeyRef: { name: 'configmap-test-1', key: 'data-1' } },
              { name: 'SECRET_DATA', secretKeyRef: { name: 'secret-test-1', key: 'data-1' } },
              { name: 'URL', value: 'https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)' },
            ],
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const { report } = await watcher.waitFor(pod.uid, running, 90_000);

      const expected = {
        'data-1': 'value-1',
        'data-2': 'value-2',
        'data-3': 'value-3',
        'p-data-1': 'value-1',
        'p-data-2': 'value-2',
        'p-data-3': 'value-3',
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
        KUBERNETES_SERVICE_PORT: '443',
      };
      expect(await mainEnv(idOf(report, 'cm-env-from'))).toMatchObject(expected);
      expect(await mainEnv(idOf(report, 'secret-env-from'))).toMatchObject(expected);
      expect(await mainEnv(idOf(report, 'key-ref'))).toMatchObject({
        CONFIG_DATA_1: 'value-1',
        SECRET_DATA: 'value-1',
        URL: 'https://10.96.0.1:443',
        'data-1': 'from-service',
        KUBERNETES_SERVICE_HOST: '10.96.0.1',
      });

      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed, 30_000);
    },
    T,
  );
});
