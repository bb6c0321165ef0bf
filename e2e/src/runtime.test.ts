/**
 * The pod runtime at the edge through kubectl, a representative set of what the kubelet does (issue 4): the crash
 * loop with its back-off, an OOM kill, readiness and liveness probes, the security context, and the termination
 * message. The integration tests in edge-agent cover each feature against containerd in detail.
 */
import { jest } from '@jest/globals';
import {
  BUSYBOX,
  EDGE_PLACEMENT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  deleteAndWait,
  eventually,
  kubectlJson,
  log,
  siteExec,
  type PodObj,
} from './stack.js';

const SELECTOR = 'e2e=runtime';
const NAMES = ['e2e-crashloop', 'e2e-oom', 'e2e-probes', 'e2e-security', 'e2e-termination'];

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(
    SELECTOR,
    NAMES.map((n) => `pod/${n}`),
  );
});

interface ContainerStatusObj {
  name: string;
  ready: boolean;
  started?: boolean;
  restartCount: number;
  state?: {
    waiting?: { reason?: string; message?: string };
    running?: object;
    terminated?: { reason?: string; exitCode?: number; message?: string };
  };
  lastState?: { terminated?: { reason?: string; exitCode?: number; message?: string } };
}

function edgePod(name: string, container: object, spec: object = {}): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { e2e: 'runtime', app: name } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 2,
      ...spec,
      containers: [{ name: 'app', image: BUSYBOX, imagePullPolicy: 'IfNotPresent', ...container }],
    },
  };
}

async function status(name: string): Promise<{ pod: PodObj; c: ContainerStatusObj | undefined }> {
  const pod = await kubectlJson<PodObj>('get', 'pod', name);
  return { pod, c: pod.status.containerStatuses?.[0] as ContainerStatusObj | undefined };
}

test('a crashing container goes into CrashLoopBackOff with a growing restart count', async () => {
  const name = 'e2e-crashloop';
  const t0 = Date.now();
  await applyObject(edgePod(name, { command: ['sh', '-c', 'echo crashing; exit 3'] }));
  const c = await eventually('CrashLoopBackOff with at least one restart', 120_000, async () => {
    const { c } = await status(name);
    return c?.state?.waiting?.reason === 'CrashLoopBackOff' && c.restartCount >= 1 ? c : undefined;
  });
  log(`CrashLoopBackOff after ${Date.now() - t0} ms: restartCount ${c.restartCount}, ${c.state?.waiting?.message}`);
  expect(c.state?.waiting?.message).toMatch(new RegExp(`^back-off \\d+[ms0-9]* restarting failed container=app pod=${name}_default`));
  expect(c.lastState?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
  // The kubelet's Events, recorded at the edge and delivered through the site's events stream.
  const events = await eventually('kubelet Events for the pod (Pulled/Created/Started/BackOff)', 60_000, async () => {
    const { items } = await kubectlJson<{
      items: { type: string; reason: string; message: string; source?: { component?: string; host?: string } }[];
    }>('get', 'events', '--field-selector', `involvedObject.name=${name}`);
    const reasons = new Set(items.map((e) => e.reason));
    return ['Created', 'Started', 'BackOff'].every((r) => reasons.has(r)) ? items : undefined;
  });
  const backoff = events.find((e) => e.reason === 'BackOff')!;
  expect(backoff).toMatchObject({ type: 'Warning', source: { component: 'kubelet', host: 'edge-1' } });
  expect(backoff.message).toMatch(/^Back-off restarting failed container app in pod e2e-crashloop_default/);
});

test('a container over its memory limit is OOMKilled', async () => {
  const name = 'e2e-oom';
  await applyObject(
    edgePod(
      name,
      { command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" x); sleep 3600'], resources: { limits: { memory: '32Mi' } } },
      { restartPolicy: 'Never' },
    ),
  );
  const { c } = await eventually('terminated with reason OOMKilled', 120_000, async () => {
    const s = await status(name);
    return s.c?.state?.terminated ? s : undefined;
  });
  expect(c!.state!.terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
});

test('readiness (exec) gates Ready; a failing liveness probe (httpGet) restarts the container', async () => {
  const name = 'e2e-probes';
  await applyObject(
    edgePod(name, {
      command: [
        'sh',
        '-c',
        'mkdir -p /www && echo ok > /www/healthz && httpd -p 8080 -h /www && trap "exit 0" TERM; while true; do sleep 1; done',
      ],
      ports: [{ name: 'http', containerPort: 8080 }],
      readinessProbe: { exec: { command: ['test', '-f', '/tmp/ready'] }, periodSeconds: 1 },
      livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 2 },
    }),
  );
  await eventually('running, not ready', 120_000, async () => {
    const x = await status(name);
    return x.c?.state?.running && !x.c.ready ? x : undefined;
  });
  await new Promise((r) => setTimeout(r, 3000));
  const s = await status(name);
  expect([s.c?.ready, s.c?.restartCount]).toEqual([false, 0]); // healthy but not ready
  const t0 = Date.now();
  await siteExec('edge-1', s.pod.metadata.uid, 'app', ['touch', '/tmp/ready']);
  await eventually('Ready after /tmp/ready exists', 30_000, async () => ((await status(name)).c?.ready ? true : undefined), 100);
  log(`readiness probe: Ready ${Date.now() - t0} ms after the probe's condition came true (period 1 s)`);

  const t1 = Date.now();
  await siteExec('edge-1', s.pod.metadata.uid, 'app', ['rm', '/www/healthz']);
  const restarted = await eventually(
    'restarted by the liveness probe',
    60_000,
    async () => {
      const x = await status(name);
      return x.c && x.c.restartCount >= 1 ? x : undefined;
    },
    100,
  );
  log(`liveness probe (period 1 s, failureThreshold 2): container restarted ${Date.now() - t1} ms after it turned unhealthy`);
  expect(restarted.c!.lastState?.terminated).toBeDefined();
});

test('the security context reaches the container', async () => {
  const name = 'e2e-security';
  await applyObject(
    edgePod(
      name,
      {
        command: SLEEP_LOOP_TRAPPED,
        securityContext: { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      },
      { securityContext: { runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000] } },
    ),
  );
  const { pod } = await eventually('running', 120_000, async () => {
    const x = await status(name);
    return x.c?.state?.running ? x : undefined;
  });
  const id = await siteExec('edge-1', pod.metadata.uid, 'app', ['id']);
  expect(id.stdout).toMatch(/uid=1000 gid=3000/);
  expect(id.stdout).toMatch(/4000/);
  const write = await siteExec('edge-1', pod.metadata.uid, 'app', ['touch', '/should-fail']);
  expect(write.exitCode).not.toBe(0);
  const caps = await siteExec('edge-1', pod.metadata.uid, 'app', ['sh', '-c', 'grep CapEff /proc/self/status']);
  expect(caps.stdout).toMatch(/CapEff:\s+0000000000000000/);
});

test('the termination message reaches the status', async () => {
  const name = 'e2e-termination';
  await applyObject(
    edgePod(name, { command: ['sh', '-c', 'echo -n "bye from the edge" > /dev/termination-log; exit 4'] }, { restartPolicy: 'Never' }),
  );
  const { pod, c } = await eventually('terminated', 120_000, async () => {
    const x = await status(name);
    return x.c?.state?.terminated ? x : undefined;
  });
  expect(c!.state!.terminated).toMatchObject({ exitCode: 4, reason: 'Error', message: 'bye from the edge' });
  expect(pod.status.phase).toBe('Failed');
});
