/**
 * subPath against a hostile container, on a real disk with real mounts (root): a container that plants a symlink in
 * a shared emptyDir must not make the agent create or chmod anything outside the volume, and the path handed to the
 * runtime is the directory the agent opened, not a path re-resolved after its checks (CVE-2017-1002101,
 * CVE-2021-25741).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { podSpec, silentLogger } from '@edgefarm/testing';
import { isContainerConfigError } from '../runtime/env.js';
import { VolumeManager } from './manager.js';
import { SystemMounter } from './mounter.js';

let tmp: string;
let root: string;
let outside: string;
let vm: VolumeManager;
const mounter = new SystemMounter();

beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ef-subpath-'));
  root = path.join(tmp, 'pods');
  outside = path.join(tmp, 'etc'); // stands for the host's /etc
  await mkdir(outside, { mode: 0o755 });
  await writeFile(path.join(outside, 'shadow'), 'host secret\n');
  vm = new VolumeManager({ root, mounter, objects: { object: () => undefined }, log: silentLogger() });
  await vm.start();
});

afterEach(async () => {
  for (const m of await mounter.mountsUnder(tmp)) await mounter.unmount(m);
  await rm(tmp, { recursive: true, force: true });
});

function podWith(subPath: string) {
  return podSpec({
    volumes: [{ name: 'shared', source: { case: 'emptyDir', value: {} } }],
    containers: [{ name: 'main', image: 'i', volumeMounts: [{ name: 'shared', mountPath: '/data', subPath }] }],
  });
}

describe('subPath with a real volume on disk', () => {
  it('a symlink planted in an emptyDir: creates nothing outside the volume and refuses the mount', async () => {
    const pod = podWith('evil/created-by-root');
    await vm.setUp(pod, pod.volumes[0]!);
    await symlink(outside, path.join(vm.volumeDir(pod.uid, 'shared'), 'evil')); // what the hostile container did
    const err = await vm.mounts(pod, pod.containers[0]!).catch((e: unknown) => e);
    expect(existsSync(path.join(outside, 'created-by-root'))).toBe(false);
    expect((await stat(outside)).mode & 0o7777).toBe(0o755);
    expect(isContainerConfigError(err)).toBe(true);
    expect((err as Error).message).toMatch(/failed to prepare subPath for volumeMount "shared" of container "main": .*outside/);
    expect(await mounter.mountsUnder(tmp)).toEqual([]);
  });

  it('a symlink as the whole subPath, pointing outside: refused, nothing mounted', async () => {
    const pod = podWith('evil');
    await vm.setUp(pod, pod.volumes[0]!);
    await symlink(outside, path.join(vm.volumeDir(pod.uid, 'shared'), 'evil'));
    const err = await vm.mounts(pod, pod.containers[0]!).catch((e: unknown) => e);
    expect(isContainerConfigError(err)).toBe(true);
    expect(await mounter.mountsUnder(tmp)).toEqual([]);
  });

  it('the path handed to the runtime is the directory opened: swapping it for a symlink afterwards changes nothing', async () => {
    const pod = podWith('logs/main');
    await vm.setUp(pod, pod.volumes[0]!);
    const [m] = await vm.mounts(pod, pod.containers[0]!);
    const vol = vm.volumeDir(pod.uid, 'shared');
    await writeFile(path.join(vol, 'logs', 'main', 'marker'), 'inside\n');
    const opened = await stat(path.join(vol, 'logs', 'main'));
    // the container swaps the directory for a symlink to the host (the race of CVE-2017-1002101)
    await rename(path.join(vol, 'logs', 'main'), path.join(vol, 'logs', 'moved'));
    await symlink(outside, path.join(vol, 'logs', 'main'));
    const handed = await stat(m!.hostPath);
    expect([handed.dev, handed.ino]).toEqual([opened.dev, opened.ino]);
    expect(await readFile(path.join(m!.hostPath, 'marker'), 'utf8')).toBe('inside\n');
    expect(existsSync(path.join(m!.hostPath, 'shadow'))).toBe(false);
  });

  it('a symlink inside the volume pointing inside it is followed (as the kubelet does); the mount is the target', async () => {
    const pod = podWith('link/sub');
    await vm.setUp(pod, pod.volumes[0]!);
    const vol = vm.volumeDir(pod.uid, 'shared');
    await mkdir(path.join(vol, 'real'));
    await symlink('real', path.join(vol, 'link'));
    const [m] = await vm.mounts(pod, pod.containers[0]!);
    const created = await stat(path.join(vol, 'real', 'sub'));
    expect((created.mode & 0o777).toString(8)).toBe('777'); // the volume's mode
    const handed = await stat(m!.hostPath);
    expect([handed.dev, handed.ino]).toEqual([created.dev, created.ino]);
  });

  it('the subPath mounts go with the pod directory', async () => {
    const pod = podWith('a/b');
    await vm.setUp(pod, pod.volumes[0]!);
    await vm.mounts(pod, pod.containers[0]!);
    await vm.cleanUp(`default/${pod.name}`, undefined, { key: { namespace: 'default', name: pod.name }, sandboxes: [], containers: [] });
    expect(await mounter.mountsUnder(tmp)).toEqual([]);
    expect(existsSync(vm.podDir(pod.uid))).toBe(false);
  });
});
