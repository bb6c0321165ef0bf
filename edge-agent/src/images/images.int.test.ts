/**
 * Images against a real containerd and real OCI registries on loopback (Debian's docker-registry, one open and one
 * with basic auth; hack/registry.sh): pulls without and with an imagePullSecret (ErrImagePull -> ImagePullBackOff
 * -> Running once the secret object arrives), pull policies Never and Always, and the image garbage collector.
 */
import path from 'node:path';
import { edge } from '@edgefarm/proto';
import { Agent } from '../agent.js';
import { CriImageService } from './cri.js';
import {
  edgeObject,
  podSpec,
  publishDesired,
  publishObject,
  publishTombstone,
  StatusWatcher,
  TestRegistry,
  TestSite,
  waitFor,
} from '@edgefarm/testing';

const T = 180_000;
const AUTH = { username: 'edge', password: 'pull-s3cret' };
const BACKOFF = { backoffInitialMs: 2000, backoffMaxMs: 8000 };
let site: TestSite;
let open: TestRegistry;
let secured: TestRegistry;
let agent: Agent;
let watcher: StatusWatcher;

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
function waiting(r: edge.PodStatusReport, name = 'main'): { reason: string; message: string } | undefined {
  const s = r.containerStatuses.find((c) => c.name === name)?.state?.state;
  return s?.case === 'waiting' ? { reason: s.value.reason, message: s.value.message } : undefined;
}
const dockerConfig = (host: string, auth: { username: string; password: string }) =>
  JSON.stringify({ auths: { [`http://${host}`]: { auth: Buffer.from(`${auth.username}:${auth.password}`).toString('base64') } } });

beforeAll(async () => {
  site = await TestSite.start();
  open = await TestRegistry.start({ dir: path.join(site.dir, 'registry-open') });
  secured = await TestRegistry.start({ dir: path.join(site.dir, 'registry-auth'), auth: AUTH });
  await open.trustIn(site.containerd!.registryConfigDir);
  await secured.trustIn(site.containerd!.registryConfigDir);
  agent = new Agent(site.agentConfig({ restartBackoffBaseMs: 500, restartBackoffMaxMs: 1000 }), site.logger('agent'), {
    imagePulls: BACKOFF,
    // Only when the test asks (runOnce), and then down to 0%.
    imageGc: { highPercent: 0, lowPercent: 0, minAgeMs: 0, intervalMs: 3_600_000 },
  });
  await agent.start();
  watcher = await new StatusWatcher(site.hubNc, site.node).start();
}, T);

afterAll(async () => {
  await watcher?.stop();
  await agent?.stop();
  await open?.stop();
  await secured?.stop();
  await site?.stop();
}, T);

describe('edge-agent images with containerd and a loopback registry', () => {
  it(
    'pulls an image from a registry without auth (IfNotPresent) and runs it',
    async () => {
      const image = await open.push('test/anon:1');
      const pod = podSpec({
        containers: [{ name: 'main', image, imagePullPolicy: edge.PullPolicy.IF_NOT_PRESENT, command: ['sleep', '3600'] }],
      });
      const t0 = performance.now();
      await publishDesired(site.hubNc, site.node, pod);
      const { report, at } = await watcher.waitFor(pod.uid, running, 60_000);
      process.stderr.write(`images.int: publish -> Running with a registry pull: ${Math.round(at - t0)} ms\n`);
      // As the kubelet reports it with containerd: the repo digest the image was pulled by.
      expect(report.containerStatuses[0]!.imageId).toMatch(new RegExp(`^${open.host}/test/anon@sha256:[0-9a-f]{64}$`));
      expect(await open.manifestRequests('test/anon')).toBeGreaterThanOrEqual(1);
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'measures CRI PullImage from the loopback registry (fresh image, then unchanged digest)',
    async () => {
      const image = await open.pushVariant('test/timing:1', 'timing');
      const cri = new CriImageService(site.containerd!, {
        podLogRoot: path.join(site.dir, 'logs'),
        cgroupParent: '/edgefarm-int/timing',
      });
      const t0 = performance.now();
      await cri.pullImage(image, undefined, podSpec());
      const t1 = performance.now();
      await cri.pullImage(image, undefined, podSpec());
      const t2 = performance.now();
      process.stderr.write(`images.int: PullImage fresh ${Math.round(t1 - t0)} ms, again (same digest) ${Math.round(t2 - t1)} ms\n`);
      expect(await cri.imageId(image)).toMatch(/^sha256:/);
    },
    T,
  );

  it(
    'fails with ErrImagePull without the pull secret, backs off with ImagePullBackOff, and runs once the secret arrives',
    async () => {
      const image = await secured.push('private/app:1');
      const pod = podSpec({ imagePullSecrets: ['regcred'], containers: [{ name: 'main', image, command: ['sleep', '3600'] }] });
      await publishDesired(site.hubNc, site.node, pod);
      const pullErr = await watcher.waitFor(pod.uid, (r) => waiting(r)?.reason === 'ErrImagePull', 30_000);
      const w = waiting(pullErr.report)!;
      expect(w.message).toContain(image);
      expect(w.message.toLowerCase()).toMatch(/unauthorized|401/);
      expect(pullErr.report.phase).toBe(edge.PodPhase.PENDING);
      const backoff = await watcher.waitFor(pod.uid, (r) => waiting(r)?.reason === 'ImagePullBackOff', 30_000);
      expect(waiting(backoff.report)!.message).toBe(`Back-off pulling image "${image}"`);

      // A malformed secret first: a clear message, no crash.
      await publishObject(site.hubNc, site.node, 'secret', edgeObject('regcred', '1', { '.dockerconfigjson': '{"auths": {' }));
      const bad = await watcher.waitFor(
        pod.uid,
        (r) => waiting(r)?.message.startsWith('invalid image pull secret "default/regcred": not valid JSON') ?? false,
        30_000,
      );
      expect(waiting(bad.report)!.reason).toBe('ErrImagePull');

      await publishObject(
        site.hubNc,
        site.node,
        'secret',
        edgeObject('regcred', '2', { '.dockerconfigjson': dockerConfig(secured.host, AUTH) }),
      );
      const t0 = performance.now();
      const { at } = await watcher.waitFor(pod.uid, running, 60_000);
      process.stderr.write(`images.int: secret published -> Running (incl. the remaining backoff): ${Math.round(at - t0)} ms\n`);
      expect(await secured.manifestRequests('private/app', 200)).toBeGreaterThanOrEqual(1);
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'policy Never with an absent image: ErrImageNeverPull with the kubelet message, and no pull',
    async () => {
      const image = `${open.host}/test/never:1`;
      const pod = podSpec({ containers: [{ name: 'main', image, imagePullPolicy: edge.PullPolicy.NEVER, command: ['sleep', '3600'] }] });
      await publishDesired(site.hubNc, site.node, pod);
      const { report } = await watcher.waitFor(pod.uid, (r) => waiting(r)?.reason === 'ErrImageNeverPull', 30_000);
      expect(waiting(report)!.message).toBe(`Container image "${image}" is not present with pull policy of Never`);
      expect(await open.manifestRequests('test/never', 404)).toBe(0);
      expect(await open.manifestRequests('test/never', 200)).toBe(0);
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'policy Always pulls again on every container start',
    async () => {
      const image = await open.push('test/always:1');
      const pod = podSpec({
        containers: [{ name: 'main', image, imagePullPolicy: edge.PullPolicy.ALWAYS, command: ['sh', '-c', 'sleep 1; exit 1'] }],
      });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => (r.containerStatuses[0]?.restartCount ?? 0) >= 2, 60_000);
      // One manifest request per start at least (first start + 2 restarts).
      expect(await open.manifestRequests('test/always')).toBeGreaterThanOrEqual(3);
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'image GC removes an unused image and keeps images in use and the sandbox image',
    async () => {
      const inUseImage = await open.push('test/gc-used:1');
      const unusedImage = await open.pushVariant('test/gc-unused:1', 'gc');
      const pod = podSpec({ containers: [{ name: 'main', image: inUseImage, command: ['sleep', '3600'] }] });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running, 60_000);
      const cri = new CriImageService(site.containerd!, {
        podLogRoot: path.join(site.dir, 'logs'),
        cgroupParent: '/edgefarm-int/gc',
      });
      await cri.pullImage(unusedImage, undefined, podSpec());
      const unusedId = (await cri.imageId(unusedImage))!;
      const usedId = (await cri.imageId(inUseImage))!;
      expect(unusedId).not.toBe(usedId);
      const run = await agent.parts.imageGc!.runOnce();
      expect(run.removed).toContain(unusedId);
      expect(run.removed).not.toContain(usedId);
      expect(run.errors).toEqual([]);
      expect(await cri.imageId(unusedImage)).toBeUndefined();
      expect(await cri.imageId(inUseImage)).toBe(usedId);
      expect(await cri.imageId('registry.k8s.io/pause:3.6')).toMatch(/^sha256:/);
      // The running pod is untouched.
      await waitFor('pod still running', () => running(watcher.of(pod.uid).at(-1)!), 5000);
      await publishTombstone(site.hubNc, site.node, pod);
      await waitFor('pod removed', () => watcher.of(pod.uid).some((r) => r.removed), 60_000);
    },
    T,
  );
});
