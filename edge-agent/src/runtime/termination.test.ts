import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readTerminationMessage, tailCriLog, withTerminationMessage } from './termination.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-term-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (msg: string, tag = 'F', stream = 'stdout') => `2026-01-01T00:00:00.000000000Z ${stream} ${tag} ${msg}\n`;

describe('tailCriLog', () => {
  it('joins partial lines, keeps the last N lines, then the last bytes', () => {
    const log = line('a') + line('b', 'P') + line('c', 'F', 'stderr') + line('') + line('d');
    expect(tailCriLog(log, 80, 2048)).toBe('a\nbc\n\nd\n');
    expect(tailCriLog(log, 2, 2048)).toBe('\nd\n');
    expect(tailCriLog(log, 80, 3)).toBe('\nd\n');
    expect(tailCriLog('garbage\n', 80, 2048)).toBe('');
  });
  it('80 lines at most', () => {
    const log = Array.from({ length: 100 }, (_, i) => line(String(i))).join('');
    const out = tailCriLog(log, 80, 2048);
    expect(out.split('\n').filter(Boolean)).toHaveLength(80);
    expect(out.startsWith('20\n')).toBe(true);
  });
});

describe('readTerminationMessage (kubelet getTerminationMessage)', () => {
  const base = { exitCode: 1, reason: 'Error', path: '/dev/termination-log', policy: 'File', logPath: '' };

  it('the file, its last 4096 bytes', async () => {
    const file = path.join(dir, 'msg');
    await writeFile(file, `${'x'.repeat(5000)}END`);
    const msg = await readTerminationMessage({ ...base, mounts: [{ containerPath: '/dev/termination-log', hostPath: file }] });
    expect(msg).toHaveLength(4096);
    expect(msg.endsWith('END')).toBe(true);
  });

  it('File policy with an empty file: nothing; FallbackToLogsOnError: the log tail, only on a non-zero exit', async () => {
    const file = path.join(dir, 'msg');
    const logPath = path.join(dir, '0.log');
    await writeFile(file, '');
    await writeFile(logPath, line('boom') + line('failed'));
    const mounts = [{ containerPath: '/dev/termination-log', hostPath: file }];
    expect(await readTerminationMessage({ ...base, mounts, logPath })).toBe('');
    expect(await readTerminationMessage({ ...base, mounts, logPath, policy: 'FallbackToLogsOnError' })).toBe('boom\nfailed\n');
    expect(await readTerminationMessage({ ...base, mounts, logPath, policy: 'FallbackToLogsOnError', exitCode: 0 })).toBe('');
    expect(await readTerminationMessage({ ...base, mounts, logPath, policy: 'FallbackToLogsOnError', reason: 'ContainerCannotRun' })).toBe(
      '',
    );
    // a missing file (or no such mount) falls back to the logs too
    expect(await readTerminationMessage({ ...base, mounts: [], logPath, policy: 'FallbackToLogsOnError' })).toBe('boom\nfailed\n');
    await writeFile(file, 'written');
    expect(await readTerminationMessage({ ...base, mounts, logPath, policy: 'FallbackToLogsOnError' })).toBe('written');
  });

  it('unreadable log: the kubelet-style error text', async () => {
    const msg = await readTerminationMessage({ ...base, mounts: [], logPath: path.join(dir, 'none.log'), policy: 'FallbackToLogsOnError' });
    expect(msg).toMatch(/^Error on reading termination message from logs: /);
  });

  it('joins with the runtime message', () => {
    expect(withTerminationMessage('', 'm')).toBe('m');
    expect(withTerminationMessage('r', '')).toBe('r');
    expect(withTerminationMessage('r', 'm')).toBe('r: m');
  });
});
