import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create, edge, type ObjectKind } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { isContainerConfigError, type ObjectSource } from '../runtime/env.js';
import type { ObservedPod, ObservedSandbox } from '../runtime/types.js';
import { podSpec, silentLogger } from '@edgefarm/testing';
import { VolumeManager, isVolumeSetUpError } from './manager.js';
import { FakeMounter } from './mounter.js';

const enc = new TextEncoder();

class Objects implements ObjectSource {
  readonly held = new Map<string, edge.EdgeObject>();
  set(kind: ObjectKind, name: string, data: Record<string, string>): void {
    this.held.set(
      `${kind}/${name}`,
      create(edge.EdgeObjectSchema, {
        namespace: 'default',
        name,
        resourceVersion: '1',
        data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, enc.encode(v)])),
      }),
    );
  }
  delete(kind: ObjectKind, name: string): void {
    this.held.delete(`${kind}/${name}`);
  }
  object(kind: ObjectKind, namespace: string, name: string): edge.EdgeObject | undefined {
    return namespace === 'default' ? this.held.get(`${kind}/${name}`) : undefined;
  }
}

type VolumeInit = MessageInitShape<typeof edge.EdgeVolumeSchema>;
const emptyDir = (name: string, memory = false, sizeLimitBytes = 0n): VolumeInit => ({
  name,
  source: { case: 'emptyDir', value: { memory, sizeLimitBytes } },
});
const configMapVolume = (name: string, cm: string, optional = false): VolumeInit => ({
  name,
  source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: cm, optional } } }] } },
});
const secretVolume = (name: string, secret: string): VolumeInit => ({
  name,
  source: { case: 'projected', value: { sources: [{ source: { case: 'secret', value: { name: secret } } }] } },
});

let root: string;
let objects: Objects;
let mounter: FakeMounter;
let vm: VolumeManager;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-volumes-'));
  objects = new Objects();
  mounter = new FakeMounter();
  vm = new VolumeManager({ root, mounter, objects, log: silentLogger() });
  await vm.start();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const observed = (pod: edge.EdgePodSpec, uids: string[] = []): ObservedPod => ({
  key: { namespace: pod.namespace, name: pod.name },
  sandboxes: uids.map((uid, i) => ({ id: `sb${i}`, uid }) as ObservedSandbox),
  containers: [],
});
async function setUpAll(pod: edge.EdgePodSpec): Promise<void> {
  for (const v of pod.volumes) await vm.setUp(pod, v);
}

describe('VolumeManager', () => {
  it('lays out <root>/<uid>/volumes/<name> with an owner file; emptyDirs are 0777, memory ones a tmpfs of the size limit', async () => {
    const pod = podSpec({ volumes: [emptyDir('scratch'), emptyDir('mem', true, 64n * 1024n * 1024n)] });
    await setUpAll(pod);
    const dir = vm.volumeDir(pod.uid, 'scratch');
    expect(dir).toBe(path.join(root, pod.uid, 'volumes', 'scratch'));
    expect((await stat(dir)).mode & 0o777).toBe(0o777);
    expect(JSON.parse(await readFile(path.join(root, pod.uid, 'pod.json'), 'utf8'))).toEqual({ namespace: 'default', name: pod.name });
    expect(mounter.calls).toEqual([`mount ${vm.volumeDir(pod.uid, 'mem')} size=67108864`]);
    await setUpAll(pod); // idempotent, no second mount
    expect(mounter.calls).toHaveLength(1);
    expect(vm.keys()).toEqual([`default/${pod.name}`]);
  });

  it('writes projected volumes atomically; Secret volumes on a tmpfs, ConfigMap ones on disk', async () => {
    objects.set('configmap', 'app', { greeting: 'hello' });
    objects.set('secret', 'creds', { pass: 'pw' });
    const pod = podSpec({ volumes: [configMapVolume('cfg', 'app'), secretVolume('sec', 'creds')] });
    await setUpAll(pod);
    const cfg = vm.volumeDir(pod.uid, 'cfg');
    expect(await readFile(path.join(cfg, 'greeting'), 'utf8')).toBe('hello');
    expect(await readlink(path.join(cfg, 'greeting'))).toBe('..data/greeting');
    expect(await readFile(path.join(vm.volumeDir(pod.uid, 'sec'), 'pass'), 'utf8')).toBe('pw');
    expect(mounter.calls).toEqual([`mount ${vm.volumeDir(pod.uid, 'sec')}`]);
  });

  it('rewrites a projected volume in place when its object changes, and only then', async () => {
    objects.set('configmap', 'app', { greeting: 'hello' });
    const pod = podSpec({ volumes: [configMapVolume('cfg', 'app')] });
    await setUpAll(pod);
    const cfg = vm.volumeDir(pod.uid, 'cfg');
    const first = await readlink(path.join(cfg, '..data'));
    await setUpAll(pod);
    expect(await readlink(path.join(cfg, '..data'))).toBe(first);
    objects.set('configmap', 'app', { greeting: 'hello again', extra: 'x' });
    await setUpAll(pod);
    expect(await readlink(path.join(cfg, '..data'))).not.toBe(first);
    expect(await readFile(path.join(cfg, 'greeting'), 'utf8')).toBe('hello again');
    expect(await readFile(path.join(cfg, 'extra'), 'utf8')).toBe('x');
  });

  it('a missing object fails the first setup in the kubelet words; once set up, a failed refresh keeps the files and is usable', async () => {
    const pod = podSpec({ volumes: [configMapVolume('cfg', 'app')] });
    const err = await vm.setUp(pod, pod.volumes[0]!).catch((e: unknown) => e);
    expect(isVolumeSetUpError(err)).toBe(true);
    expect((err as Error).message).toBe('MountVolume.SetUp failed for volume "cfg" : configmap "app" not found');
    expect(err).toMatchObject({ volume: 'cfg', usable: false });

    objects.set('configmap', 'app', { greeting: 'hello' });
    await setUpAll(pod);
    objects.delete('configmap', 'app');
    const again = await vm.setUp(pod, pod.volumes[0]!).catch((e: unknown) => e);
    expect(again).toMatchObject({ usable: true });
    expect(await readFile(path.join(vm.volumeDir(pod.uid, 'cfg'), 'greeting'), 'utf8')).toBe('hello');

    // after an agent restart the files on disk still count
    const restarted = new VolumeManager({ root, mounter, objects, log: silentLogger() });
    await restarted.start();
    expect(await restarted.setUp(pod, pod.volumes[0]!).catch((e: unknown) => e)).toMatchObject({ usable: true });
  });

  it('an optional missing ConfigMap gives an empty volume', async () => {
    const pod = podSpec({ volumes: [configMapVolume('cfg', 'nope', true)] });
    await setUpAll(pod);
    expect((await lstat(path.join(vm.volumeDir(pod.uid, 'cfg'), '..data'))).isSymbolicLink()).toBe(true);
  });

  it('hostPath: type checked, nothing created under the root', async () => {
    const host = path.join(root, 'host');
    const pod = podSpec({ volumes: [{ name: 'h', source: { case: 'hostPath', value: { path: host, type: 'Directory' } } }] });
    expect(((await vm.setUp(pod, pod.volumes[0]!).catch((e: unknown) => e)) as Error).message).toBe(
      `MountVolume.SetUp failed for volume "h" : hostPath type check failed: ${host} is not a directory`,
    );
    await mkdir(host);
    await setUpAll(pod);
    expect(vm.keys()).toEqual([]);
  });

  it('mounts: volume dirs, hostPaths and subPaths; projected volumes always read-only', async () => {
    objects.set('configmap', 'app', { greeting: 'hello' });
    const host = path.join(root, 'host');
    await mkdir(path.join(host, 'sub'), { recursive: true });
    const pod = podSpec({
      volumes: [configMapVolume('cfg', 'app'), emptyDir('scratch'), { name: 'h', source: { case: 'hostPath', value: { path: host } } }],
      containers: [
        {
          name: 'main',
          image: 'i',
          volumeMounts: [
            { name: 'cfg', mountPath: '/etc/cfg' },
            { name: 'cfg', mountPath: '/etc/greeting', subPath: 'greeting' },
            { name: 'scratch', mountPath: '/scratch' },
            { name: 'scratch', mountPath: '/logs', subPath: 'logs/main', readOnly: true },
            { name: 'h', mountPath: '/host', subPath: 'sub' },
          ],
        },
      ],
    });
    await setUpAll(pod);
    const mounts = await vm.mounts(pod, pod.containers[0]!);
    const cfg = vm.volumeDir(pod.uid, 'cfg');
    const scratch = vm.volumeDir(pod.uid, 'scratch');
    const target = (volume: string, index: number): string => vm.subPathTarget(pod.uid, volume, 'main', index);
    expect(mounts).toEqual([
      { containerPath: '/etc/cfg', hostPath: cfg, readOnly: true },
      { containerPath: '/etc/greeting', hostPath: target('cfg', 1), readOnly: true },
      { containerPath: '/scratch', hostPath: scratch, readOnly: false },
      { containerPath: '/logs', hostPath: target('scratch', 3), readOnly: true },
      { containerPath: '/host', hostPath: target('h', 4), readOnly: false },
    ]);
    // each subPath is the opened directory or file bind-mounted on its target (volume-subpaths/<volume>/<container>/<i>)
    expect(Object.fromEntries(mounter.binds)).toEqual({
      [target('cfg', 1)]: path.join(cfg, await readlink(path.join(cfg, '..data')), 'greeting'),
      [target('scratch', 3)]: path.join(scratch, 'logs/main'),
      [target('h', 4)]: path.join(host, 'sub'),
    });
    expect((await stat(target('cfg', 1))).isFile()).toBe(true);
    expect((await stat(target('scratch', 3))).isDirectory()).toBe(true);
    // a second call (a restarted container) replaces the binds, it does not stack them
    await vm.mounts(pod, pod.containers[0]!);
    expect(mounter.binds.size).toBe(3);
    expect(mounter.calls.filter((c) => c.startsWith('umount'))).toHaveLength(3);
    expect((await stat(path.join(scratch, 'logs/main'))).mode & 0o777).toBe(0o777); // the volume's mode, created for the mount
  });

  it.each([
    [{ name: 'nope', mountPath: '/x' }, 'cannot find volume "nope" to mount into container "main"'],
    [
      { name: 'scratch', mountPath: '/x', subPath: '../escape' },
      'failed to prepare subPath for volumeMount "scratch" of container "main": subPath "../escape" must be a relative path without \'..\'',
    ],
    [{ name: 'scratch', mountPath: '/x', subPath: '/abs' }, 'failed to prepare subPath'],
    [{ name: 'scratch', mountPath: '/x', subPath: 'evil' }, 'resolves outside the volume'],
    [{ name: 'scratch', mountPath: '/x', subPath: 'evil/etc/new' }, 'resolves outside the volume'],
    [{ name: 'scratch', mountPath: '/x', subPath: 'a\0b' }, 'must not contain a NUL byte'],
  ])('refuses the mount %j: %s', async (m, message) => {
    const pod = podSpec({ volumes: [emptyDir('scratch')], containers: [{ name: 'main', image: 'i', volumeMounts: [m] }] });
    await setUpAll(pod);
    // a container wrote a symlink to the host's / into the shared emptyDir
    await symlink('/', path.join(vm.volumeDir(pod.uid, 'scratch'), 'evil'));
    const err = await vm.mounts(pod, pod.containers[0]!).catch((e: unknown) => e);
    expect(isContainerConfigError(err)).toBe(true);
    expect((err as Error).message).toContain(message);
    expect(mounter.binds.size).toBe(0);
    const subPath = (m as { subPath?: string }).subPath;
    const reason = subPath?.startsWith('evil') ? 'outside' : 'invalid';
    if (subPath) expect(await vm.rejectedSubPaths(reason)).toBe(1);
  });

  it('removes the directories of pod UIDs of which nothing remains, unmounting first; keeps the desired and present ones', async () => {
    objects.set('secret', 'creds', { pass: 'pw' });
    const old = podSpec({ name: 'web', volumes: [secretVolume('sec', 'creds'), emptyDir('mem', true)] });
    const next = podSpec({ name: 'web', volumes: [emptyDir('scratch')] });
    await setUpAll(old);
    await setUpAll(next);
    expect(mounter.mounted.size).toBe(2);

    await vm.cleanUp('default/web', next, observed(next, [old.uid, next.uid])); // old still has a sandbox
    expect(await stat(vm.podDir(old.uid)).then(() => true)).toBe(true);
    await vm.cleanUp('default/web', next, observed(next, [next.uid])); // old is gone from the runtime
    await expect(stat(vm.podDir(old.uid))).rejects.toThrow(/ENOENT/);
    expect(mounter.mounted.size).toBe(0);
    expect(await stat(vm.podDir(next.uid)).then(() => true)).toBe(true);

    await vm.cleanUp('default/web', podSpec({ ...next, deleting: true }), observed(next, [next.uid])); // deleting, sandbox left
    expect(vm.keys()).toEqual(['default/web']);
    await vm.cleanUp('default/web', undefined, observed(next)); // tombstoned and gone
    await expect(stat(vm.podDir(next.uid))).rejects.toThrow(/ENOENT/);
    expect(vm.keys()).toEqual([]);
  });

  it('a restarted manager finds the owners of existing directories and cleans them up', async () => {
    const pod = podSpec({ name: 'gone', volumes: [emptyDir('scratch')] });
    await setUpAll(pod);
    await mkdir(path.join(root, 'no-owner'));
    await writeFile(path.join(root, 'no-owner', 'x'), '');
    const restarted = new VolumeManager({ root, mounter, objects, log: silentLogger() });
    await restarted.start();
    expect(restarted.keys()).toEqual(['default/gone']);
    await restarted.cleanUp('default/gone', undefined, observed(pod));
    expect(restarted.keys()).toEqual([]);
    expect(await stat(path.join(root, 'no-owner', 'x')).then(() => true)).toBe(true); // not ours to guess
  });

  it('keeps a directory while something below it stays mounted', async () => {
    const pod = podSpec({ volumes: [emptyDir('mem', true)] });
    await setUpAll(pod);
    mounter.unmount = async () => undefined; // umount "fails" silently
    await vm.cleanUp(`default/${pod.name}`, undefined, observed(pod));
    expect(await stat(vm.volumeDir(pod.uid, 'mem')).then(() => true)).toBe(true);
    expect(vm.keys()).toEqual([`default/${pod.name}`]);
  });
});
