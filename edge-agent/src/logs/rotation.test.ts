import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { create, cri } from '@edgefarm/proto';
import { CriError } from '@edgefarm/cri';
import { ManualClock, silentLogger } from '@edgefarm/testing';
import { Registry } from 'prom-client';
import { ContainerLogRotator, LogRotationError, planRotation, rotatedName, type RotationRuntime } from './rotation.js';

/** One running container whose log lives at `logPath`; reopen makes a fresh empty file there, as containerd does. */
class FakeRuntime implements RotationRuntime {
  reopens = 0;
  reopenError: Error | undefined;
  state = cri.ContainerState.CONTAINER_RUNNING;
  constructor(readonly logPath: string) {}

  listContainers: RotationRuntime['listContainers'] = () =>
    Promise.resolve(
      create(cri.ListContainersResponseSchema, { containers: this.state === cri.ContainerState.CONTAINER_RUNNING ? [{ id: 'c1' }] : [] }),
    );

  containerStatus: RotationRuntime['containerStatus'] = () =>
    Promise.resolve(create(cri.ContainerStatusResponseSchema, { status: { id: 'c1', state: this.state, logPath: this.logPath } }));

  reopenContainerLog: RotationRuntime['reopenContainerLog'] = async () => {
    if (this.reopenError) throw this.reopenError;
    this.reopens++;
    await writeFile(this.logPath, '');
    return create(cri.ReopenContainerLogResponseSchema, {});
  };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-rotation-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('planRotation', () => {
  const log = '/l/0.log';
  it('removes temporaries, uncompressed copies of compressed files, and the oldest beyond maxFiles - 2', () => {
    const plan = planRotation(
      [
        `${log}.20260101-000003.000`,
        `${log}.20260101-000001.000.gz`,
        `${log}.20260101-000002.000.gz`,
        `${log}.20260101-000002.000`,
        `${log}.20260101-000004.000.gz.tmp`,
      ],
      { maxSizeBytes: 1, maxFiles: 4 },
    );
    expect([...plan.remove].sort()).toEqual([
      `${log}.20260101-000001.000.gz`,
      `${log}.20260101-000002.000`,
      `${log}.20260101-000004.000.gz.tmp`,
    ]);
    expect(plan.compress).toEqual([`${log}.20260101-000003.000`]);
  });

  it('keeps no rotated file with maxFiles 2 (the current file and the one rotated now)', () => {
    expect(planRotation([`${log}.20260101-000001.000`], { maxSizeBytes: 1, maxFiles: 2 }).remove).toEqual([`${log}.20260101-000001.000`]);
  });

  it('names rotated files by UTC time, fixed width', () => {
    expect(rotatedName(log, Date.UTC(2026, 11, 7, 5, 1, 2, 345))).toBe(`${log}.20261207-050102.345`);
  });
});

describe('ContainerLogRotator', () => {
  const line = (i: number) => `2026-01-01T00:00:00.000000000Z stdout F line ${i}\n`;

  it('refuses a policy it cannot keep', () => {
    const runtime = new FakeRuntime('/x');
    expect(() => new ContainerLogRotator({ runtime, clock: new ManualClock(), log: silentLogger() }, { maxFiles: 1 })).toThrow(
      LogRotationError,
    );
    expect(() => new ContainerLogRotator({ runtime, clock: new ManualClock(), log: silentLogger() }, { maxSizeBytes: 0 })).toThrow(
      LogRotationError,
    );
  });

  it('rotates a file at the maximum size: renamed, reopened, older ones gzipped, at most maxFiles kept', async () => {
    const logPath = path.join(dir, '0.log');
    const runtime = new FakeRuntime(logPath);
    const clock = new ManualClock();
    const registry = new Registry();
    const rotator = new ContainerLogRotator({ runtime, clock, log: silentLogger(), registry }, { maxSizeBytes: 100, maxFiles: 3 });
    await writeFile(logPath, line(0));
    expect(await rotator.runOnce()).toMatchObject({ checked: 1, rotated: 0 });
    for (let i = 1; i <= 6; i++) {
      await writeFile(logPath, line(i).repeat(3)); // above 100 bytes
      clock.advance(1000);
      expect(await rotator.runOnce()).toMatchObject({ checked: 1, rotated: 1, failed: 0 });
      const names = (await readdir(dir)).sort();
      expect(names.length).toBeLessThanOrEqual(3);
      expect(names).toContain('0.log');
      expect(await readFile(logPath, 'utf8')).toBe('');
    }
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['0.log', `0.log.${stamp(clock.ms - 1000)}.gz`, `0.log.${stamp(clock.ms)}`]);
    expect(gunzipSync(await readFile(path.join(dir, names[1]!))).toString()).toBe(line(5).repeat(3));
    expect(await readFile(path.join(dir, names[2]!), 'utf8')).toBe(line(6).repeat(3));
    expect(runtime.reopens).toBe(6);
    expect(await registry.getSingleMetricAsString('edgefarm_agent_container_log_rotations_total')).toContain('result="rotated"} 6');
  });

  it('undoes the rename when containerd cannot reopen the log, and counts the error', async () => {
    const logPath = path.join(dir, '0.log');
    const runtime = new FakeRuntime(logPath);
    runtime.reopenError = new CriError('ReopenContainerLog', 9, 'container is not running');
    const registry = new Registry();
    const rotator = new ContainerLogRotator(
      { runtime, clock: new ManualClock(), log: silentLogger(), registry },
      { maxSizeBytes: 10, maxFiles: 3 },
    );
    await writeFile(logPath, line(1));
    expect(await rotator.runOnce()).toMatchObject({ rotated: 0, failed: 1 });
    expect(await readdir(dir)).toEqual(['0.log']);
    expect(await readFile(logPath, 'utf8')).toBe(line(1));
    expect(await registry.getSingleMetricAsString('edgefarm_agent_container_log_rotations_total')).toContain('result="error"} 1');
  });

  it('reopens a log file missing at its path (renamed before a restart, never reopened)', async () => {
    const logPath = path.join(dir, '0.log');
    const runtime = new FakeRuntime(logPath);
    const rotator = new ContainerLogRotator({ runtime, clock: new ManualClock(), log: silentLogger() }, { maxSizeBytes: 10, maxFiles: 3 });
    expect(await rotator.runOnce()).toMatchObject({ checked: 1, rotated: 0 });
    expect(runtime.reopens).toBe(1);
    expect(await readdir(dir)).toEqual(['0.log']);
  });

  it('leaves containers that do not run alone', async () => {
    const logPath = path.join(dir, '0.log');
    const runtime = new FakeRuntime(logPath);
    runtime.state = cri.ContainerState.CONTAINER_EXITED;
    await writeFile(logPath, line(1).repeat(10));
    const rotator = new ContainerLogRotator({ runtime, clock: new ManualClock(), log: silentLogger() }, { maxSizeBytes: 10, maxFiles: 3 });
    expect(await rotator.runOnce()).toMatchObject({ checked: 0, rotated: 0 });
    expect(await readdir(dir)).toEqual(['0.log']);
  });

  it('stops its timer', async () => {
    const runtime = new FakeRuntime(path.join(dir, '0.log'));
    const rotator = new ContainerLogRotator({ runtime, clock: new ManualClock(), log: silentLogger() }, { intervalMs: 5 });
    rotator.start();
    await new Promise((r) => setTimeout(r, 30));
    await rotator.stop();
    const reopens = runtime.reopens;
    await new Promise((r) => setTimeout(r, 30));
    expect(runtime.reopens).toBe(reopens);
  });
});

function stamp(ms: number): string {
  return rotatedName('', ms).slice(1);
}
