/**
 * ConfigMaps, Secrets, ServiceAccount tokens and the downward API reach a pod on edge-1 through the provider, and
 * changes reach the running container the way they do on a kubelet:
 * - a Secret (or ConfigMap) mounted as a volume is rewritten in place: the container sees the new file without
 *   restarting;
 * - a ConfigMap used as an env var does not change a running process; the next start of the container gets the new
 *   value (here the app exits and restartPolicy Always starts it again).
 * The projected ServiceAccount token is a real token for the pod: the apiserver's TokenReview authenticates it.
 * The tests look inside the container through the site's containerd (CRI ExecSync).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
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

const NAME = 'e2e-config';
const SELECTOR = 'e2e=config';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

jest.setTimeout(10 * 60_000);

afterAll(async () => {
  await deleteAndWait(SELECTOR, [`pod/${NAME}`, `configmap/${NAME}`, `secret/${NAME}`]);
});

const configMap = (greeting: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: NAME, namespace: 'default', labels: { e2e: 'config' } },
  data: { greeting, 'app.conf': `greeting=${greeting}\n` },
});
const secret = (password: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: NAME, namespace: 'default', labels: { e2e: 'config' } },
  stringData: { password },
});

async function inPod(p: PodObj, cmd: string): Promise<string> {
  const r = await siteExec('edge-1', p.metadata.uid, 'app', ['sh', '-c', cmd]);
  if (r.exitCode !== 0) throw new Error(`${cmd}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** `kubectl create -o json` of an object that cannot be applied (TokenReview). */
async function kubectlCreate<T>(obj: object): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-e2e-'));
  try {
    const file = path.join(dir, 'object.json');
    await writeFile(file, JSON.stringify(obj));
    return await kubectlJson<T>('create', '-f', file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('ConfigMap as env and files, Secret as a volume, the ServiceAccount token and downward API reach the container; changes arrive as on a kubelet', async () => {
  await applyObject(configMap('hello-1'));
  await applyObject(secret('s3cret-1'));
  const started = Date.now();
  await applyObject({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: NAME, namespace: 'default', labels: { e2e: 'config', tier: 'edge' } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 2,
      containers: [
        {
          name: 'app',
          image: BUSYBOX,
          imagePullPolicy: 'IfNotPresent',
          command: SLEEP_LOOP_TRAPPED,
          env: [
            { name: 'GREETING', valueFrom: { configMapKeyRef: { name: NAME, key: 'greeting' } } },
            { name: 'MY_POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
            { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
            { name: 'MESSAGE', value: '$(GREETING) from $(MY_POD)' },
          ],
          envFrom: [{ prefix: 'CFG_', configMapRef: { name: NAME } }],
          volumeMounts: [
            { name: 'secret', mountPath: '/etc/secret', readOnly: true },
            { name: 'config', mountPath: '/etc/config' },
            { name: 'info', mountPath: '/etc/podinfo' },
          ],
        },
      ],
      volumes: [
        { name: 'secret', secret: { secretName: NAME, defaultMode: 0o400 } },
        { name: 'config', configMap: { name: NAME, items: [{ key: 'app.conf', path: 'conf/app.conf' }] } },
        { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
      ],
    },
  });
  let pod = await eventually('the pod Running and Ready on edge-1', 120_000, async () => {
    const p = await kubectlJson<PodObj>('get', 'pod', NAME);
    return p.status.phase === 'Running' && p.status.containerStatuses?.[0]?.ready ? p : undefined;
  });
  log(`pod with ConfigMap/Secret/token/downward volumes Running ${Date.now() - started} ms after kubectl apply`);

  // Files and env as the kubelet would make them.
  expect(await inPod(pod, 'cat /etc/secret/password')).toBe('s3cret-1');
  expect((await inPod(pod, 'stat -L -c %a /etc/secret/password')).trim()).toBe('400');
  expect(await inPod(pod, 'cat /etc/config/conf/app.conf')).toBe('greeting=hello-1\n');
  expect(await inPod(pod, 'cat /etc/podinfo/labels')).toBe('e2e="config"\ntier="edge"');
  expect(await inPod(pod, 'echo "$GREETING|$CFG_greeting|$MY_POD|$MY_IP|$MESSAGE"')).toBe(
    `hello-1|hello-1|${NAME}|${pod.status.podIP}|hello-1 from ${NAME}\n`,
  );
  expect(await inPod(pod, `cat ${SA_DIR}/namespace`)).toBe('default');
  expect(await inPod(pod, `cat ${SA_DIR}/ca.crt`)).toMatch(/^-----BEGIN CERTIFICATE-----/);

  // The projected token is a real token bound to this pod.
  const token = await inPod(pod, `cat ${SA_DIR}/token`);
  const review = await kubectlCreate<{
    status: { authenticated?: boolean; user?: { username: string; extra?: Record<string, string[]> }; error?: string };
  }>({
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenReview',
    spec: { token },
  });
  expect(review.status.error ?? '').toBe('');
  expect(review.status.authenticated).toBe(true);
  expect(review.status.user?.username).toBe('system:serviceaccount:default:default');
  expect(review.status.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual([NAME]);
  expect(review.status.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.metadata.uid]);

  const containerId = pod.status.containerStatuses![0]!.containerID;

  // A Secret change is rewritten in place: same container, no restart.
  let t0 = Date.now();
  await applyObject(secret('s3cret-2'));
  await eventually(
    'the new Secret value in the mounted file',
    60_000,
    async () => ((await inPod(pod, 'cat /etc/secret/password')) === 's3cret-2' ? true : undefined),
    100,
  );
  log(`Secret change visible in the running container's volume ${Date.now() - t0} ms after kubectl apply`);

  // A ConfigMap change: files in place; env of the running process unchanged (as on a kubelet).
  t0 = Date.now();
  await applyObject(configMap('hello-2'));
  await eventually(
    'the new ConfigMap value in the mounted file',
    60_000,
    async () => ((await inPod(pod, 'cat /etc/config/conf/app.conf')) === 'greeting=hello-2\n' ? true : undefined),
    100,
  );
  log(`ConfigMap change visible in the running container's volume ${Date.now() - t0} ms after kubectl apply`);
  expect(await inPod(pod, 'echo $GREETING')).toBe('hello-1\n');
  pod = await kubectlJson<PodObj>('get', 'pod', NAME);
  expect(pod.status.containerStatuses![0]!.containerID).toBe(containerId);
  expect(pod.status.containerStatuses![0]!.restartCount).toBe(0);

  // The app exits; its next start reads the ConfigMap as it is now.
  t0 = Date.now();
  await inPod(pod, 'kill -TERM 1');
  pod = await eventually('the container restarted and Ready', 60_000, async () => {
    const p = await kubectlJson<PodObj>('get', 'pod', NAME);
    const c = p.status.containerStatuses?.[0];
    return c && c.restartCount === 1 && c.ready ? p : undefined;
  });
  log(`container restarted ${Date.now() - t0} ms after its process exited`);
  expect(await inPod(pod, 'echo "$GREETING|$CFG_greeting"')).toBe('hello-2|hello-2\n');
});
