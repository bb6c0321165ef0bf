import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { create, edge, type ObjectKind } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { ObjectSource } from '../runtime/env.js';
import { podSpec } from '@edgefarm/testing';
import { checkHostPath } from './host-path.js';
import { holdsSecrets, isVolumeError, projectedPayload } from './projection.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function objects(list: { kind: ObjectKind; name: string; data: Record<string, string>; podUid?: string }[]): ObjectSource {
  return {
    object(kind, namespace, name) {
      const o = list.find((x) => x.kind === kind && x.name === name && namespace === 'default');
      return o
        ? create(edge.EdgeObjectSchema, {
            namespace,
            name,
            resourceVersion: '1',
            podUid: o.podUid ?? '',
            data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, enc.encode(v)])),
          })
        : undefined;
    },
  };
}

const pod = podSpec({ name: 'web-0', uid: 'uid-web-0' });
const store = objects([
  { kind: 'configmap', name: 'app', data: { greeting: 'hello', 'app.yaml': 'a: 1' } },
  { kind: 'secret', name: 'creds', data: { user: 'admin', pass: 's3cret' } },
  { kind: 'token', name: 'web-0', data: { 'kube-api-access-x': 'jwt-token' }, podUid: 'uid-web-0' },
]);

type Source = MessageInitShape<typeof edge.ProjectionSourceSchema>;
const cm = (name: string, items: { key: string; path: string; mode?: number }[] = [], optional = false): Source => ({
  source: { case: 'configMap', value: { name, items, optional } },
});
const secret = (name: string, items: { key: string; path: string; mode?: number }[] = [], optional = false): Source => ({
  source: { case: 'secret', value: { name, items, optional } },
});
const files = (f: { path: string; content: string; mode?: number }[]): Source => ({
  source: { case: 'files', value: { files: f.map((x) => ({ ...x, content: enc.encode(x.content) })) } },
});
const token = (key: string, p: string, mode = 0): Source => ({ source: { case: 'serviceAccountToken', value: { key, path: p, mode } } });

function volume(sources: Source[], defaultMode = 0): edge.ProjectedVolume {
  return create(edge.ProjectedVolumeSchema, { defaultMode, sources });
}
function files_of(v: edge.ProjectedVolume, src = store, p = pod): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [k, f] of projectedPayload(p, v, src)) out[k] = [dec.decode(f.data), f.mode.toString(8)];
  return out;
}
function errorOf(v: edge.ProjectedVolume, src = store, p = pod): string {
  try {
    projectedPayload(p, v, src);
  } catch (err) {
    expect(isVolumeError(err)).toBe(true);
    return (err as Error).message;
  }
  throw new Error('no error');
}

describe('projectedPayload', () => {
  it.each([
    ['a ConfigMap, every key, default mode 0644', volume([cm('app')]), { greeting: ['hello', '644'], 'app.yaml': ['a: 1', '644'] }],
    [
      'a ConfigMap with items and modes under a default mode',
      volume(
        [
          cm('app', [
            { key: 'greeting', path: 'etc/g.txt', mode: 0o600 },
            { key: 'app.yaml', path: 'app.yaml' },
          ]),
        ],
        0o440,
      ),
      { 'etc/g.txt': ['hello', '600'], 'app.yaml': ['a: 1', '440'] },
    ],
    [
      'a Secret with items',
      volume([secret('creds', [{ key: 'pass', path: 'pw/password', mode: 0o400 }])]),
      { 'pw/password': ['s3cret', '400'] },
    ],
    [
      'downward API files',
      volume(
        [
          files([
            { path: 'labels', content: 'app="web"' },
            { path: 'meta/name', content: 'web-0', mode: 0o444 },
          ]),
        ],
        0o640,
      ),
      { labels: ['app="web"', '640'], 'meta/name': ['web-0', '444'] },
    ],
    ['a token of the pod', volume([token('kube-api-access-x', 'token')]), { token: ['jwt-token', '644'] }],
    [
      'an optional missing ConfigMap contributes nothing',
      volume([cm('nope', [], true), files([{ path: 'x', content: '1' }])]),
      { x: ['1', '644'] },
    ],
    [
      'an optional ConfigMap skips missing items',
      volume([
        cm(
          'app',
          [
            { key: 'nope', path: 'n' },
            { key: 'greeting', path: 'g' },
          ],
          true,
        ),
      ]),
      { g: ['hello', '644'] },
    ],
    [
      'sources combined (the service account volume)',
      volume(
        [
          token('kube-api-access-x', 'token'),
          cm('app', [{ key: 'greeting', path: 'ca.crt' }]),
          files([{ path: 'namespace', content: 'default' }]),
        ],
        0o644,
      ),
      {
        token: ['jwt-token', '644'],
        'ca.crt': ['hello', '644'],
        namespace: ['default', '644'],
      },
    ],
  ] as [string, edge.ProjectedVolume, Record<string, [string, string]>][])('%s', (_what, v, want) => {
    expect(files_of(v)).toEqual(want);
  });

  it.each([
    ['a missing ConfigMap', volume([cm('nope')]), 'configmap "nope" not found'],
    ['a missing Secret', volume([secret('nope')]), 'secret "nope" not found'],
    ['a missing ConfigMap key', volume([cm('app', [{ key: 'nope', path: 'n' }])]), 'configmap references non-existent config key: nope'],
    ['a missing Secret key', volume([secret('creds', [{ key: 'nope', path: 'n' }])]), 'references non-existent secret key: nope'],
    [
      'a missing token',
      volume([token('other-key', 'token')]),
      'failed to fetch token: token "other-key" of pod default/web-0 not delivered to the node',
    ],
    ['several at once (aggregated)', volume([cm('a'), secret('b')]), '[configmap "a" not found, secret "b" not found]'],
  ] as [string, edge.ProjectedVolume, string][])('fails on %s', (_what, v, message) => {
    expect(errorOf(v)).toBe(message);
  });

  it('a token bound to another pod UID (an earlier pod of the same name) counts as missing', () => {
    const reborn = podSpec({ name: 'web-0', uid: 'uid-web-0-new' });
    expect(errorOf(volume([token('kube-api-access-x', 'token')]), store, reborn)).toMatch(/failed to fetch token/);
  });

  it('keeps Secret and token data on a tmpfs, ConfigMaps and downward API on disk', () => {
    expect(holdsSecrets(volume([cm('app'), files([])]))).toBe(false);
    expect(holdsSecrets(volume([cm('app'), secret('creds')]))).toBe(true);
    expect(holdsSecrets(volume([token('k', 't')]))).toBe(true);
  });
});

describe('checkHostPath (the kubelet hostPath types)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'ef-hostpath-'));
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'f'), 'x');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const hp = (p: string, type: string) => create(edge.HostPathVolumeSchema, { path: path.isAbsolute(p) ? p : path.join(dir, p), type });

  it.each([
    ['d', ''],
    ['missing', ''],
    ['d', 'Directory'],
    ['f', 'File'],
    ['d', 'DirectoryOrCreate'],
    ['f', 'FileOrCreate'],
    ['/dev/null', 'CharDevice'],
  ])('%s as %s passes', async (p, type) => {
    await expect(checkHostPath(hp(p, type))).resolves.toBeUndefined();
  });

  it.each([
    ['missing', 'Directory', 'is not a directory'],
    ['f', 'Directory', 'is not a directory'],
    ['d', 'File', 'is not a file'],
    ['missing', 'File', 'is not a file'],
    ['f', 'Socket', 'is not a socket file'],
    ['f', 'CharDevice', 'is not a character device'],
    ['f', 'BlockDevice', 'is not a block device'],
    ['f', 'DirectoryOrCreate', 'is not a directory'],
    ['d', 'FileOrCreate', 'is not a file'],
  ])('%s as %s fails: %s', async (p, type, what) => {
    const v = hp(p, type);
    await expect(checkHostPath(v)).rejects.toThrow(`hostPath type check failed: ${v.path} ${what}`);
  });

  it('DirectoryOrCreate creates the directory (and parents), FileOrCreate an empty 0644 file', async () => {
    await checkHostPath(hp('new/sub/dir', 'DirectoryOrCreate'));
    expect((await stat(path.join(dir, 'new/sub/dir'))).isDirectory()).toBe(true);
    await checkHostPath(hp('new/file', 'FileOrCreate'));
    const st = await stat(path.join(dir, 'new/file'));
    expect(st.isFile() && st.size === 0).toBe(true);
    expect(st.mode & 0o777).toBe(0o644 & ~process.umask());
  });

  it('FileOrCreate does not create the file directory, as in Kubernetes', async () => {
    await expect(checkHostPath(hp('nodir/file', 'FileOrCreate'))).rejects.toThrow(/hostPath type check failed/);
  });

  it('Socket passes for a unix socket', async () => {
    const sock = path.join(dir, 's.sock');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(sock, r));
    try {
      await expect(checkHostPath(hp(sock, 'Socket'))).resolves.toBeUndefined();
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('refuses an unknown type and a relative path', async () => {
    await expect(checkHostPath(hp('d', 'Bogus'))).rejects.toThrow('Bogus is an invalid volume type');
    await expect(checkHostPath(create(edge.HostPathVolumeSchema, { path: 'rel', type: '' }))).rejects.toThrow(/not an absolute path/);
  });
});
