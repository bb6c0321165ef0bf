import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { firstOutput, readContainerLog, type LogReadOptions } from './logs.js';

let dir: string;
let file: string;
const line = (s: string, tag = 'F', t = '2026-11-23T10:00:00Z') => `${t} stdout ${tag} ${s}\n`;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-logs-'));
  file = path.join(dir, '0.log');
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function readAll(opts: Partial<LogReadOptions>, running = async () => false, signal = new AbortController().signal): Promise<string> {
  let out = '';
  for await (const c of readContainerLog(file, { follow: false, timestamps: false, ...opts }, running, signal, {
    pollMs: 5,
    stateCheckMs: 20,
  })) {
    out += Buffer.from(c).toString();
  }
  return out;
}

/** Reads a followed log until `until` matches, doing `step` once along the way. */
async function follow(until: RegExp, steps: (() => Promise<void>)[]): Promise<string> {
  const ac = new AbortController();
  const guard = setTimeout(() => ac.abort(), 10_000);
  let out = '';
  const reading = (async () => {
    for await (const c of readContainerLog(file, { follow: true, timestamps: false }, async () => true, ac.signal, {
      pollMs: 5,
      stateCheckMs: 1000,
    })) {
      out += Buffer.from(c).toString();
      if (until.test(out)) ac.abort();
    }
  })();
  for (const step of steps) {
    await new Promise((r) => setTimeout(r, 30));
    await step();
  }
  await reading;
  clearTimeout(guard);
  return out;
}

describe('readContainerLog', () => {
  it('renders a file with garbage and partial lines, and its tail', async () => {
    await writeFile(
      file,
      line('one') + 'garbage line\n' + line('tw', 'P') + line('o') + line('three') + '2026-11-23T10:00:00Z stdout F unterminated',
    );
    expect(await readAll({})).toBe('one\ntwo\nthree\nunterminated\n');
    expect(await readAll({ tailLines: 2 })).toBe('three\nunterminated\n');
    expect(await readAll({ tailLines: 0 })).toBe('');
  });

  it('without follow, answers the file as it was at the request: lines appended during the read are not in it', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => line(`early ${i} ${'x'.repeat(30)}`)).join(''); // ~120 KB rendered: several chunks
    await writeFile(file, many);
    let out = '';
    let appended = false;
    for await (const c of readContainerLog(file, { follow: false, timestamps: false }, async () => true, new AbortController().signal)) {
      out += Buffer.from(c).toString();
      if (!appended) {
        appended = true; // the first chunk is out, most of the file is still to read
        await appendFile(file, line('late'));
      }
    }
    expect(appended).toBe(true);
    expect(out.split('\n')).toHaveLength(3001);
    expect(out).toContain(`early 2999 ${'x'.repeat(30)}\n`);
    expect(out).not.toContain('late');
  });

  it('follows appends, a rotation (rename + new file) and a truncation', async () => {
    await writeFile(file, line('a'));
    const out = await follow(/d\n$/, [
      () => appendFile(file, line('b')),
      async () => {
        await rename(file, `${file}.1`);
        await writeFile(file, line('c'));
      },
      async () => {
        // a truncation is seen when the file is shorter than what was read (as tail -F does)
        await truncate(file, 0);
      },
      () => appendFile(file, line('d')),
    ]);
    expect(out).toBe('a\nb\nc\nd\n');
  });

  it('reads what containerd wrote to a rotated file between its end and the reopen before it follows the new file', async () => {
    await writeFile(file, line('a'));
    const ac = new AbortController();
    const read = readContainerLog(file, { follow: true, timestamps: false }, async () => true, ac.signal, {
      pollMs: 5,
      stateCheckMs: 1000,
    });
    // The reader found the end of the file and hands over what it read: it stops here until the next call.
    expect(Buffer.from((await read.next()).value as Uint8Array).toString()).toBe('a\n');
    // Meanwhile: containerd writes one more line into the file, the rotation renames it, containerd reopens.
    await appendFile(file, line('b'));
    await rename(file, `${file}.1`);
    await writeFile(file, line('c'));
    let out = '';
    for await (const c of { [Symbol.asyncIterator]: () => read }) {
      out += Buffer.from(c).toString();
      if (out.includes('c\n')) ac.abort();
    }
    expect(out).toBe('b\nc\n');
  });

  it('ends a follow once the container stopped and the file is read', async () => {
    await writeFile(file, line('last'));
    let running = true;
    setTimeout(() => (running = false), 30);
    expect(await readAll({ follow: true }, async () => running)).toBe('last\n');
  });
});

describe('firstOutput (a container that started a moment ago)', () => {
  const nowNs = () => BigInt(Date.now()) * 1_000_000n;
  // A grace of a minute: a call that waited it out would fail the test by its timeout, whatever the machine's load.
  const MINUTE = 60_000;

  it('waits for the first bytes of a container that just started, and no longer', async () => {
    await writeFile(file, '');
    let written = false;
    setTimeout(() => void appendFile(file, line('container is alive')).then(() => (written = true)), 150);
    await firstOutput(file, nowNs(), MINUTE);
    expect(written).toBe(true);
  });

  it('does not wait for a container that started long ago, nor for one that wrote already', async () => {
    await writeFile(file, '');
    await firstOutput(file, nowNs() - BigInt(MINUTE) * 2_000_000n, MINUTE);
    await writeFile(file, line('x'));
    await firstOutput(file, nowNs(), MINUTE);
  });

  it('gives up at the end of the grace: an empty log is then read as empty', async () => {
    await writeFile(file, '');
    const t0 = Date.now();
    await firstOutput(file, nowNs(), 200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150); // it waited (a lower bound only: a slow machine waits longer)
  });
});
