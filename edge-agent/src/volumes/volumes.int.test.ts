/**
 * Pod volumes, ConfigMaps, Secrets, tokens and env references against a real containerd and NATS: the test plays
 * the provider (objects published before the pods that use them) and looks inside the running containers with
 * CRI ExecSync.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cri, edge } from '@edgefarm/proto';
import { Labels } from '../runtime/labels.js';
import {
  BUSYBOX,
  edgeObject,
  fieldsOf,
  podSpec,
  publishDesired,
  publishObject,
  publishObjectTombstone,
  publishTombstone,
  StatusWatcher,
  TestSite,
  waitFor,
} from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let watcher: StatusWatcher;

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
const idOf = (r: edge.PodStatusReport, name: string) =>
  r.containerStatuses.find((c) => c.name === name)!.containerId.replace(/^containerd:\/\//, '');
const enc = new TextEncoder();

function exec(containerId: string, ...cmd: string[]): Promise<{ out: string; err: string; code: number }> {
  return bed.exec(containerId, cmd);
}
async function sh(containerId: string, script: string): Promise<string> {
  const r = await exec(containerId, 'sh', '-c', script);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
  return r.out.trim();
}
/** The environment an exec in the container gets (the container's), NUL-separated so values may hold newlines. */
async function envOf(containerId: string): Promise<Record<string, string>> {
  const r = await exec(containerId, 'cat', '/proc/self/environ');
  const entries = r.out.split('\0').filter((l) => l.includes('='));
  return Object.fromEntries(entries.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}
async function mountsUnder(dir: string): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(`${dir}/`));
}
function waiting(r: edge.PodStatusReport, name: string): { reason: string; message: string } | undefined {
  const s = r.containerStatuses.find((c) => c.name === name)?.state?.state;
  return s?.case === 'waiting' ? { reason: s.value.reason, message: s.value.message } : undefined;
}

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('edge-agent volumes and env references with containerd', () => {
  it(
    'projects ConfigMap, Secret, downward API and token files, shares an emptyDir, resolves env; follows a ConfigMap change in place',
    async () => {
      const pod = podSpec({ labels: { app: 'vol' } });
      await publishObject(
        site.hubNc,
        site.node,
        'configmap',
        edgeObject('app', '1', { greeting: 'hello', 'app.yaml': 'a: 1\n', 'bad key': 'x' }),
      );
      await publishObject(site.hubNc, site.node, 'secret', edgeObject('creds', '1', { user: 'admin', pass: 's3cret' }));
      await publishObject(
        site.hubNc,
        site.node,
        'token',
        edgeObject(pod.name, '1700000000000', { 'kube-api-access-x': 'header.payload.sig' }, { podUid: pod.uid }),
      );
      const spec = podSpec({
        ...fieldsOf(pod),
        volumes: [
          { name: 'cfg', source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: 'app' } } }] } } },
          {
            name: 'sec',
            source: {
              case: 'projected',
              value: {
                defaultMode: 0o440,
                sources: [
                  {
                    source: {
                      case: 'secret',
                      value: {
                        name: 'creds',
                        items: [
                          { key: 'pass', path: 'pw/password', mode: 0o400 },
                          { key: 'user', path: 'username' },
                        ],
                      },
                    },
                  },
                ],
              },
            },
          },
          {
            name: 'info',
            source: {
              case: 'projected',
              value: {
                sources: [{ source: { case: 'files', value: { files: [{ path: 'labels', content: enc.encode('app="vol"\n') }] } } }],
              },
            },
          },
          {
            name: 'sa',
            source: {
              case: 'projected',
              value: {
                sources: [
                  { source: { case: 'serviceAccountToken', value: { key: 'kube-api-access-x', path: 'token' } } },
                  { source: { case: 'files', value: { files: [{ path: 'namespace', content: enc.encode('default') }] } } },
                ],
              },
            },
          },
          { name: 'scratch', source: { case: 'emptyDir', value: {} } },
          { name: 'mem', source: { case: 'emptyDir', value: { memory: true, sizeLimitBytes: 16n * 1024n * 1024n } } },
        ],
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sh', '-c', 'echo from-main > /scratch/shared; echo "started with $(GREETING)"; exec sleep 3600'],
            env: [
              { name: 'GREETING', configMapKeyRef: { name: 'app', key: 'greeting' } },
              { name: 'MSG', value: '$(GREETING) world $$(GREETING)' },
              { name: 'POD_IP', fieldPath: 'status.podIP' },
              { name: 'PASS', secretKeyRef: { name: 'creds', key: 'pass' } },
            ],
            envFrom: [{ configMap: 'app', prefix: 'CFG_' }],
            volumeMounts: [
              { name: 'cfg', mountPath: '/etc/cfg' },
              { name: 'cfg', mountPath: '/etc/greeting.txt', subPath: 'greeting' },
              { name: 'sec', mountPath: '/etc/sec' },
              { name: 'info', mountPath: '/etc/podinfo' },
              { name: 'sa', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' },
              { name: 'scratch', mountPath: '/scratch' },
              { name: 'mem', mountPath: '/mem' },
            ],
          },
          { name: 'side', image: BUSYBOX, command: ['sleep', '3600'], volumeMounts: [{ name: 'scratch', mountPath: '/data' }] },
        ],
      });
      await publishDesired(site.hubNc, site.node, spec);
      const up = await watcher.waitFor(pod.uid, running, 60_000);
      const main = idOf(up.report, 'main');
      const side = idOf(up.report, 'side');

      // files
      expect(await sh(main, 'cat /etc/cfg/greeting')).toBe('hello');
      expect(await sh(main, 'cat /etc/cfg/app.yaml')).toBe('a: 1');
      expect(await sh(main, 'readlink /etc/cfg/greeting')).toBe('..data/greeting');
      expect(await sh(main, 'cat /etc/greeting.txt')).toBe('hello');
      expect(await sh(main, 'cat /etc/sec/pw/password')).toBe('s3cret');
      expect(await sh(main, 'stat -L -c %a /etc/sec/pw/password')).toBe('400');
      expect(await sh(main, 'stat -L -c %a /etc/sec/username')).toBe('440');
      expect(await sh(main, 'stat -L -c %a /etc/cfg/greeting')).toBe('644');
      expect(await sh(main, 'cat /etc/podinfo/labels')).toBe('app="vol"');
      expect(await sh(main, 'cat /var/run/secrets/kubernetes.io/serviceaccount/token')).toBe('header.payload.sig');
      expect(await sh(main, 'cat /var/run/secrets/kubernetes.io/serviceaccount/namespace')).toBe('default');
      expect(await sh(side, 'cat /data/shared')).toBe('from-main');
      // secret-holding volumes and memory emptyDirs are tmpfs; projected volumes are read-only
      const mounts = await sh(main, 'cat /proc/mounts');
      expect(mounts).toMatch(/^tmpfs \/etc\/sec tmpfs ro[ ,]/m);
      expect(mounts).toMatch(/^tmpfs \/var\/run\/secrets\/kubernetes\.io\/serviceaccount tmpfs ro[ ,]/m);
      expect(mounts).toMatch(/^tmpfs \/mem tmpfs rw,.*size=16384k/m);
      expect((await exec(main, 'touch', '/etc/cfg/x')).code).not.toBe(0);
      expect((await exec(main, 'touch', '/mem/x')).code).toBe(0);

      // env
      const env = await envOf(main);
      expect(env).toMatchObject({
        GREETING: 'hello',
        MSG: 'hello world $(GREETING)',
        POD_IP: up.report.podIp,
        PASS: 's3cret',
        CFG_greeting: 'hello',
        'CFG_app.yaml': 'a: 1\n',
      });
      expect(env['CFG_bad key']).toBeUndefined();
      expect(up.report.podIp).toMatch(/^10\.250\./);

      // the volume dir on the host
      const podDir = path.join(site.agentConfig().volumeRoot, pod.uid);
      expect(existsSync(path.join(podDir, 'volumes', 'cfg', '..data'))).toBe(true);

      // a ConfigMap change: the file changes in place, the container is not restarted and keeps its env
      await publishObject(site.hubNc, site.node, 'configmap', edgeObject('app', '2', { greeting: 'hello again', 'app.yaml': 'a: 2\n' }));
      const t0 = Date.now();
      await waitFor(
        'the ConfigMap file to change in the container',
        async () => (await sh(main, 'cat /etc/cfg/greeting')) === 'hello again',
        10_000,
        100,
      );
      process.stdout.write(`volumes: ConfigMap change visible in the container after ${Date.now() - t0} ms\n`);
      expect(await sh(main, 'cat /etc/greeting.txt')).toBe('hello'); // a subPath mount does not follow, as in Kubernetes
      expect((await envOf(main)).GREETING).toBe('hello');
      await new Promise((r) => setTimeout(r, 1500)); // a resync or two
      const live = (
        await site.containerd!.runtime.listContainers({
          filter: { labelSelector: { [Labels.podUid]: pod.uid, [Labels.containerName]: 'main' } },
        })
      ).containers;
      expect(live.filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING).map((c) => c.id)).toEqual([main]);
      const latest = watcher.of(pod.uid).at(-1)!;
      expect(latest.containerStatuses.find((c) => c.name === 'main')!.restartCount).toBe(0);
      expect(idOf(latest, 'main')).toBe(main);

      // a crash: the restarted container gets the new value
      await site.containerd!.runtime.stopContainer({ containerId: main, timeout: 0n });
      const again = await watcher.waitFor(
        pod.uid,
        (r) => running(r) && r.containerStatuses.find((c) => c.name === 'main')!.restartCount === 1,
        30_000,
      );
      const main2 = idOf(again.report, 'main');
      expect(main2).not.toBe(main);
      expect(await envOf(main2)).toMatchObject({ GREETING: 'hello again', MSG: 'hello again world $(GREETING)', 'CFG_app.yaml': 'a: 2\n' });
      expect(await sh(main2, 'cat /etc/greeting.txt')).toBe('hello again');

      // the pod removed: its volume directory goes, tmpfs unmounted first
      expect((await mountsUnder(podDir)).length).toBeGreaterThanOrEqual(3);
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed, 30_000);
      expect(existsSync(podDir)).toBe(false);
      expect(await mountsUnder(podDir)).toEqual([]);
      await publishObjectTombstone(site.hubNc, site.node, 'token', pod);
    },
    T,
  );

  it(
    'holds pods while their ConfigMaps are missing (CreateContainerConfigError, ContainerCreating) and starts them when they arrive',
    async () => {
      const byEnv = podSpec({
        hostNetwork: true,
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            env: [{ name: 'LATE', configMapKeyRef: { name: 'late-env', key: 'k' } }],
          },
        ],
      });
      const byVolume = podSpec({
        hostNetwork: true,
        volumes: [
          {
            name: 'cfg',
            source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: 'late-vol' } } }] } },
          },
        ],
        containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
      });
      await publishDesired(site.hubNc, site.node, byEnv);
      await publishDesired(site.hubNc, site.node, byVolume);
      const e = await watcher.waitFor(byEnv.uid, (r) => waiting(r, 'main')?.reason === 'CreateContainerConfigError');
      expect(waiting(e.report, 'main')!.message).toBe('configmap "late-env" not found');
      expect(e.report.phase).toBe(edge.PodPhase.PENDING);
      const v = await watcher.waitFor(byVolume.uid, (r) => waiting(r, 'main')?.message !== undefined && waiting(r, 'main')!.message !== '');
      expect(waiting(v.report, 'main')).toEqual({
        reason: 'ContainerCreating',
        message: 'MountVolume.SetUp failed for volume "cfg" : configmap "late-vol" not found',
      });
      expect(await bed.sandboxes(byVolume.uid)).toHaveLength(0);

      await publishObject(site.hubNc, site.node, 'configmap', edgeObject('late-env', '5', { k: 'arrived' }));
      await publishObject(site.hubNc, site.node, 'configmap', edgeObject('late-vol', '5', { k: 'arrived too' }));
      const er = await watcher.waitFor(byEnv.uid, running);
      const vr = await watcher.waitFor(byVolume.uid, running);
      expect((await envOf(idOf(er.report, 'main'))).LATE).toBe('arrived');
      expect(await sh(idOf(vr.report, 'main'), 'cat /cfg/k')).toBe('arrived too');
      for (const p of [byEnv, byVolume]) {
        await publishTombstone(site.hubNc, site.node, p);
        await watcher.waitFor(p.uid, (r) => r.removed, 30_000);
      }
    },
    T,
  );

  it(
    'hostPath: DirectoryOrCreate is created and shared with the host; a missing File holds the pod',
    async () => {
      const host = path.join(site.dir, 'hostpath', 'data');
      const pod = podSpec({
        hostNetwork: true,
        volumes: [{ name: 'h', source: { case: 'hostPath', value: { path: host, type: 'DirectoryOrCreate' } } }],
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sh', '-c', 'echo from-pod > /h/out; exec sleep 3600'],
            volumeMounts: [{ name: 'h', mountPath: '/h' }],
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      await waitFor(
        'file written through the hostPath',
        async () => (await readFile(path.join(host, 'out'), 'utf8').catch(() => '')) === 'from-pod\n',
      );

      const file = path.join(site.dir, 'hostpath', 'config.ini');
      const held = podSpec({
        hostNetwork: true,
        volumes: [{ name: 'f', source: { case: 'hostPath', value: { path: file, type: 'File' } } }],
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            volumeMounts: [{ name: 'f', mountPath: '/etc/app.ini', readOnly: true }],
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, held);
      const w = await watcher.waitFor(held.uid, (r) => !!waiting(r, 'main')?.message);
      expect(waiting(w.report, 'main')).toEqual({
        reason: 'ContainerCreating',
        message: `MountVolume.SetUp failed for volume "f" : hostPath type check failed: ${file} is not a file`,
      });
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, 'k=v\n');
      const r = await watcher.waitFor(held.uid, running, 30_000);
      expect(await sh(idOf(r.report, 'main'), 'cat /etc/app.ini')).toBe('k=v');
      for (const p of [pod, held]) {
        await publishTombstone(site.hubNc, site.node, p);
        await watcher.waitFor(p.uid, (x) => x.removed, 30_000);
      }
      expect(existsSync(path.join(host, 'out'))).toBe(true); // hostPath content is the host's, never removed
    },
    T,
  );
});
