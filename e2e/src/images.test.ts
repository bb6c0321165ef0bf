/**
 * Image pulls at the edge from a real registry with basic auth (Debian's docker-registry, started by
 * hack/registry.sh on the host address the site reaches over its veth), through kubectl: without credentials the pod
 * shows ErrImagePull / ImagePullBackOff; with a `kubectl create secret docker-registry` as imagePullSecrets it runs.
 */
import { spawn } from 'node:child_process';
import { jest } from '@jest/globals';
import {
  EDGE_PLACEMENT,
  ROOT,
  SLEEP_LOOP_TRAPPED,
  applyObject,
  deleteAndWait,
  eventually,
  kubeconfig,
  kubectl,
  kubectlJson,
  layout,
  log,
  type PodObj,
} from './stack.js';

const SELECTOR = 'e2e=images';
const REGISTRY = 'registry-e2e';
const USER = 'edge';
const PASSWORD = 'pull-s3cret';
let image = '';
let server = '';

jest.setTimeout(10 * 60_000);

beforeAll(async () => {
  const host = await layout('ef_site_host_ip edge-1');
  const port = await layout('echo $((EF_PORT_BASE + 500))');
  server = `${host}:${port}`;
  image = `${server}/e2e/busybox:1`;
  const reg = `"${ROOT}/hack/registry.sh"`;
  const t0 = Date.now();
  await layout(
    [
      `dir="$EF_STATE/registry"; rm -rf "$dir"; mkdir -p "$dir"`,
      `${reg} htpasswd "$dir/htpasswd" ${USER} ${PASSWORD} >/dev/null`,
      `${reg} start ${REGISTRY} ${host} ${port} "$dir/storage" "$dir/htpasswd" >/dev/null`,
      `${reg} push "$EF_CACHE/images/busybox.tar" docker.io/edgefarm/busybox:1.35 ${image} ${USER}:${PASSWORD} >/dev/null`,
      `${reg} hosts "$(ef_site_state edge-1)/containerd/certs.d" ${server} >/dev/null`,
    ].join(' && '),
  );
  log(`registry with basic auth on ${server} (image ${image} pushed) in ${Date.now() - t0} ms`);
});

afterAll(async () => {
  await deleteAndWait(SELECTOR, ['pod/e2e-image-noauth', 'pod/e2e-image-auth', 'secret/e2e-regcred']);
  await layout(`"${ROOT}/hack/registry.sh" stop ${REGISTRY}`);
});

function edgePod(name: string, pullSecrets: string[]): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { e2e: 'images', app: name } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 2,
      imagePullSecrets: pullSecrets.map((n) => ({ name: n })),
      containers: [{ name: 'app', image, imagePullPolicy: 'Always', command: SLEEP_LOOP_TRAPPED }],
    },
  };
}

/** Every waiting `reason: message` of the pod's first container, from a kubectl watch (no state is missed). */
async function watchWaiting(name: string): Promise<{ seen: Set<string>; stop: () => void }> {
  const seen = new Set<string>();
  const w = '.status.containerStatuses[0].state.waiting';
  const child = spawn('kubectl', ['get', 'pods', '-l', `app=${name}`, '--watch', '-o', `jsonpath={${w}.reason}: {${w}.message}{"\\n"}`], {
    env: { ...process.env, KUBECONFIG: await kubeconfig() },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.trim() !== ':') seen.add(l.trim());
  });
  await new Promise((r) => setTimeout(r, 1000)); // the watch is established before the pod exists
  return { seen, stop: () => child.kill() };
}

test('without credentials: ErrImagePull then ImagePullBackOff; with a docker-registry Secret: Running', async () => {
  const { seen, stop } = await watchWaiting('e2e-image-noauth');
  await applyObject(edgePod('e2e-image-noauth', []));
  try {
    // The provider writes the latest report: an ErrImagePull followed within its sync by ImagePullBackOff may be
    // written as the latter only (edge-agent/src/images/images.int.test.ts asserts both states at the agent).
    await eventually('ImagePullBackOff', 90_000, async () => ([...seen].some((s) => s.startsWith('ImagePullBackOff')) ? true : undefined));
  } finally {
    stop();
  }
  log(`without credentials: ${[...seen].join(' | ')}`);
  const errImagePull = [...seen].find((s) => s.startsWith('ErrImagePull'));
  if (errImagePull !== undefined) expect(errImagePull).toMatch(/401|unauthorized/i);
  expect([...seen].find((s) => s.startsWith('ImagePullBackOff'))).toBe(`ImagePullBackOff: Back-off pulling image "${image}"`);

  await kubectl(
    'create',
    'secret',
    'docker-registry',
    'e2e-regcred',
    `--docker-server=${server}`,
    `--docker-username=${USER}`,
    `--docker-password=${PASSWORD}`,
  );
  await kubectl('label', 'secret', 'e2e-regcred', 'e2e=images');
  const t0 = Date.now();
  await applyObject(edgePod('e2e-image-auth', ['e2e-regcred']));
  const p = await eventually(
    'the pod with the pull secret Running',
    90_000,
    async () => {
      const x = await kubectlJson<PodObj>('get', 'pod', 'e2e-image-auth');
      return x.status.phase === 'Running' && x.status.containerStatuses?.[0]?.ready ? x : undefined;
    },
    100,
  );
  log(`with imagePullSecrets: Running ${Date.now() - t0} ms after kubectl apply (pull policy Always, authenticated pull)`);
  expect(p.status.containerStatuses![0]!.imageID).toContain(`${server}/e2e/busybox@sha256:`);
});
