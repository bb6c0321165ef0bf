import { chmod, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create, edge } from '@edgefarm/proto';
import { podSpec, silentLogger } from '@edgefarm/testing';
import type { ObjectSource } from '../runtime/env.js';
import { VolumeManager } from './manager.js';
import { FakeMounter } from './mounter.js';
import { setVolumeOwnership } from './ownership.js';

// lchown to another group needs root: the agent runs as root, and so do these tests (and CI).
const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-ownership-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (p: string): Promise<number> => (await lstat(p)).mode & 0o7777;
const gid = async (p: string): Promise<number> => (await lstat(p)).gid;

asRoot("setVolumeOwnership (the kubelet's SetVolumeOwnership)", () => {
  it('read-write: group set, group rw on files, rwx and setgid on directories; symlinks get the group and are not followed', async () => {
    const outside = await mkdtemp(path.join(os.tmpdir(), 'ef-ownership-outside-'));
    try {
      await writeFile(path.join(outside, 'node-file'), 'x', { mode: 0o600 });
      await mkdir(path.join(dir, 'sub'), { mode: 0o700 });
      await chmod(path.join(dir, 'sub'), 0o700);
      await writeFile(path.join(dir, 'sub', 'f'), 'x');
      await chmod(path.join(dir, 'sub', 'f'), 0o600);
      await symlink(path.join(outside, 'node-file'), path.join(dir, 'link'));
      await symlink(outside, path.join(dir, 'dirlink'));

      const n = await setVolumeOwnership(dir, { fsGroup: 1001, readOnly: false });

      expect(n).toBe(5);
      expect(await gid(path.join(dir, 'sub', 'f'))).toBe(1001);
      expect(await mode(path.join(dir, 'sub', 'f'))).toBe(0o660);
      expect(await mode(path.join(dir, 'sub'))).toBe(0o2770);
      expect(await gid(path.join(dir, 'link'))).toBe(1001);
      // The walk went neither through the file link nor into the directory link.
      expect(await gid(path.join(outside, 'node-file'))).toBe(0);
      expect(await mode(path.join(outside, 'node-file'))).toBe(0o600);
      expect(await gid(outside)).toBe(0);
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });

  it('read-only: group read only (a 0440 secret stays 0440, now readable by the group)', async () => {
    await writeFile(path.join(dir, 'data-1'), 'value-1');
    await chmod(path.join(dir, 'data-1'), 0o440);
    await writeFile(path.join(dir, 'data-2'), 'value-2');
    await chmod(path.join(dir, 'data-2'), 0o400);
    await setVolumeOwnership(dir, { fsGroup: 1001, readOnly: true });
    expect(await mode(path.join(dir, 'data-1'))).toBe(0o440);
    expect(await mode(path.join(dir, 'data-2'))).toBe(0o440);
    expect(await gid(path.join(dir, 'data-1'))).toBe(1001);
  });

  it('OnRootMismatch skips a volume whose root matches already; Always walks it', async () => {
    await writeFile(path.join(dir, 'f'), 'x');
    await chmod(path.join(dir, 'f'), 0o600);
    await chmod(dir, 0o2770);
    const { lchown } = await import('node:fs/promises');
    await lchown(dir, -1, 1001);
    expect(await setVolumeOwnership(dir, { fsGroup: 1001, readOnly: false, policy: 'OnRootMismatch' })).toBe(0);
    expect(await gid(path.join(dir, 'f'))).toBe(0);
    expect(await setVolumeOwnership(dir, { fsGroup: 1001, readOnly: false, policy: 'Always' })).toBe(2);
    expect(await gid(path.join(dir, 'f'))).toBe(1001);
  });

  it('refuses a group id that is not one', async () => {
    await expect(setVolumeOwnership(dir, { fsGroup: -1, readOnly: false })).rejects.toThrow('not a valid group id');
    await expect(setVolumeOwnership(dir, { fsGroup: 2 ** 40, readOnly: false })).rejects.toThrow('not a valid group id');
  });
});

asRoot('VolumeManager with a pod fsGroup (node conformance: secret volume as non-root with defaultMode and fsGroup)', () => {
  it('a secret volume with defaultMode 0440 and an emptyDir belong to the fsGroup', async () => {
    const objects: ObjectSource = {
      object: (kind, _ns, name) =>
        kind === 'secret' && name === 's'
          ? create(edge.EdgeObjectSchema, {
              namespace: 'default',
              name: 's',
              resourceVersion: '1',
              data: { 'data-1': new TextEncoder().encode('value-1') },
            })
          : undefined,
    };
    const vm = new VolumeManager({ root: dir, mounter: new FakeMounter(), objects, log: silentLogger() });
    await vm.start();
    const pod = podSpec({
      uid: 'u1',
      fsGroup: 1001n,
      volumes: [
        {
          name: 'sec',
          source: { case: 'projected', value: { defaultMode: 0o440, sources: [{ source: { case: 'secret', value: { name: 's' } } }] } },
        },
        { name: 'scratch', source: { case: 'emptyDir', value: {} } },
      ],
    });
    for (const v of pod.volumes) await vm.setUp(pod, v);
    const sec = vm.volumeDir('u1', 'sec');
    expect(await gid(path.join(sec, '..data', 'data-1'))).toBe(1001);
    expect(await mode(path.join(sec, '..data', 'data-1'))).toBe(0o440);
    const scratch = vm.volumeDir('u1', 'scratch');
    expect(await gid(scratch)).toBe(1001);
    expect(await mode(scratch)).toBe(0o2777);
    await vm.cleanUp('default/p', undefined, { sandboxes: [], containers: [] } as never);
  });

  it('without fsGroup nothing changes group', async () => {
    const vm = new VolumeManager({ root: dir, mounter: new FakeMounter(), objects: { object: () => undefined }, log: silentLogger() });
    await vm.start();
    const pod = podSpec({ uid: 'u2', volumes: [{ name: 'scratch', source: { case: 'emptyDir', value: {} } }] });
    await vm.setUp(pod, pod.volumes[0]!);
    expect(await gid(vm.volumeDir('u2', 'scratch'))).toBe(0);
    expect(await mode(vm.volumeDir('u2', 'scratch'))).toBe(0o777);
  });
});
