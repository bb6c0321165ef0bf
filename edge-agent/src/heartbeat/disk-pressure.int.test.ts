/**
 * DiskPressure through the whole agent on a real filesystem: the agent's state directory on a small tmpfs; filling
 * it past 90 % turns the heartbeat's DiskPressure True (nodefs.available < 10 %), freeing it turns it False again.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 90_000;
let bed: AgentBed;
let stateDir: string;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(os.tmpdir(), 'ef-disk-pressure-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', stateDir]);
  bed = await AgentBed.start({ stateDir });
}, T);

afterAll(async () => {
  await bed?.stop();
  if (stateDir) {
    execFileSync('umount', ['-l', stateDir]);
    await rm(stateDir, { recursive: true, force: true });
  }
}, T);

const diskPressure = () => bed.watcher.heartbeats.at(-1)?.conditions.find((c) => c.type === 'DiskPressure');

describe('DiskPressure', () => {
  it(
    'is True while the filesystem of the state directory has less than 10 % available, False again after',
    async () => {
      await waitFor('DiskPressure False', () => diskPressure()?.status === 'False', 30_000);
      const filler = path.join(stateDir, 'filler');
      await writeFile(filler, Buffer.alloc(960 * 1024));
      const c = await waitFor('DiskPressure True', () => (diskPressure()?.status === 'True' ? diskPressure() : undefined), 30_000);
      expect(c).toMatchObject({ reason: 'EdgeAgentHasDiskPressure' });
      expect(c.message).toContain(`nodefs ${stateDir}:`);
      await rm(filler);
      await waitFor('DiskPressure False again', () => diskPressure()?.status === 'False', 30_000);
    },
    T,
  );
});
