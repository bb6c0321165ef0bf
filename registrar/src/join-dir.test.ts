import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { JoinDirError, dirState, parseNodeJson, replaceFileAtomically, writeJoinDir } from './join-dir.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-joindir-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the join directory', () => {
  it('is written whole with its modes, and replaces an existing one only when asked', async () => {
    const dir = path.join(root, 'etc', 'edgefarm');
    expect(await dirState(dir)).toBe('absent');
    await writeJoinDir(
      dir,
      [
        { name: 'node.json', content: '{}', mode: 0o644 },
        { name: 'node.nk', content: 'S', mode: 0o600 },
      ],
      false,
    );
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(path.join(dir, 'node.nk'))).mode & 0o777).toBe(0o600);
    expect(await dirState(dir)).toBe('joined');
    await expect(writeJoinDir(dir, [{ name: 'node.json', content: '{"b":1}', mode: 0o644 }], false)).rejects.toThrow('exists');
    await writeJoinDir(dir, [{ name: 'node.json', content: '{"b":1}', mode: 0o644 }], true);
    expect(await readdir(dir)).toEqual(['node.json']);
    expect(await readdir(path.dirname(dir))).toEqual(['edgefarm']);
  });

  it('leaves nothing of a failed write and keeps what was there', async () => {
    const dir = path.join(root, 'edgefarm');
    await mkdir(dir);
    await writeFile(path.join(dir, 'node.json'), 'old');
    // the same name twice: the second exclusive create fails half way
    const files = [
      { name: 'node.nk', content: 'S', mode: 0o600 },
      { name: 'node.nk', content: 'S', mode: 0o600 },
    ];
    await expect(writeJoinDir(dir, files, true)).rejects.toThrow();
    expect(await readdir(root)).toEqual(['edgefarm']);
    expect(await readFile(path.join(dir, 'node.json'), 'utf8')).toBe('old');
    expect(await dirState(path.join(root, 'nothing'))).toBe('absent');
    await mkdir(path.join(root, 'empty'));
    expect(await dirState(path.join(root, 'empty'))).toBe('empty');
  });

  it('replaces one file atomically with its mode', async () => {
    const f = path.join(root, 'node.creds');
    await writeFile(f, 'old', { mode: 0o600 });
    await replaceFileAtomically(f, 'new', 0o600);
    expect(await readFile(f, 'utf8')).toBe('new');
    expect((await stat(f)).mode & 0o777).toBe(0o600);
    expect(await readdir(root)).toEqual(['node.creds']);
  });
});

describe('node.json (hostile content, found by join-dir.fuzz.test.ts)', () => {
  const valid = {
    node: 'gw-1',
    wireId: 'UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4',
    registrarUrl: 'https://registrar.example:8443',
    hubLeafUrls: ['tls://hub-0:7422'],
    domain: 'site-gw-1',
    issuedAt: '2026-01-01T00:00:00Z',
    expiresAt: '2026-01-08T00:00:00Z',
  };

  it('reads a valid file and keeps only its fields', () => {
    expect(parseNodeJson(JSON.stringify({ ...valid, extra: 'x' }))).toEqual(valid);
  });

  it('refuses text that is not JSON, a non-object, and wrong fields with JoinDirError (never SyntaxError or a bare Error)', () => {
    for (const text of ['{not json', '', '[]', 'null', '5', JSON.stringify({ ...valid, node: [] })]) {
      expect(() => parseNodeJson(text)).toThrow(JoinDirError);
    }
  });

  it('bounds the hub URLs (1-16 leaf URLs), the domain and the file size', () => {
    expect(() => parseNodeJson(JSON.stringify({ ...valid, hubLeafUrls: [] }))).toThrow(/hubLeafUrls/);
    expect(() => parseNodeJson(JSON.stringify({ ...valid, hubLeafUrls: Array(17).fill('tls://h:1') }))).toThrow(/hubLeafUrls/);
    expect(() => parseNodeJson(JSON.stringify({ ...valid, hubLeafUrls: ['http://x y'] }))).toThrow(/hubLeafUrls/);
    expect(() => parseNodeJson(JSON.stringify({ ...valid, domain: 'd'.repeat(301) }))).toThrow(/domain/);
    expect(() => parseNodeJson(JSON.stringify({ ...valid, issuedAt: 5 }))).toThrow(/issuedAt/);
    expect(() => parseNodeJson(JSON.stringify({ ...valid, pad: 'x'.repeat(70_000) }))).toThrow(JoinDirError);
  });
});
