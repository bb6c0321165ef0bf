/**
 * SnapshotFile: the agent's desired state at one applied site-stream sequence, on the site's disk, so a restarted
 * agent resumes from that sequence instead of reading its whole stream again (like an informer resuming a watch from
 * its last resourceVersion).
 *
 * - Written atomically: a temporary file, fsync, rename, fsync of the directory. A crash leaves the old or the new
 *   snapshot, never a torn one. Mode 0600 (it holds Secrets, as the site's JetStream store does).
 * - Bound to one incarnation of the site stream (its name and creation time): a stream deleted and created again
 *   has new sequences, and the snapshot is then ignored.
 * - Also records when the agent last heard from the hub, so a restarted agent knows how long its site was out of
 *   touch (see compaction-check.ts).
 * - A missing, unreadable or malformed file is not an error: load() says why and the agent lists the stream.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { decodeEdgeDevice, decodeEdgeObject, decodeEdgePodSpec, edge, encode } from '@edgefarm/proto';
import type { DesiredSnapshot } from './store.js';

const VERSION = 1;
const FILE = 'desired-snapshot.json';

/** What a snapshot file holds beside the store's state. */
export interface SnapshotMeta {
  node: string;
  /** Name and creation time (ISO) of the site stream the sequences belong to. */
  stream: { name: string; created: string };
  /** Wall-clock ms of the last hub acknowledgement before the snapshot was written (0: never). */
  lastHubContactMs: number;
}

export interface StoredSnapshot extends SnapshotMeta {
  state: DesiredSnapshot;
}

interface FileForm {
  version: number;
  node: string;
  stream: { name: string; created: string };
  lastHubContactMs: number;
  seq: number;
  hubSeq: number;
  pods: { key: string; seq: number; spec: string }[];
  objects: { key: string; seq: number; object: string }[];
  /** Absent in snapshots written before devices existed. */
  devices?: { key: string; seq: number; device: string }[];
}

export type LoadResult = { ok: true; snapshot: StoredSnapshot } | { ok: false; reason: string };

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

export class SnapshotFile {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = path.join(dir, FILE);
  }

  async save(meta: SnapshotMeta, state: DesiredSnapshot): Promise<void> {
    const form: FileForm = {
      version: VERSION,
      node: meta.node,
      stream: meta.stream,
      lastHubContactMs: meta.lastHubContactMs,
      seq: state.seq,
      hubSeq: state.hubSeq,
      pods: state.pods.map((p) => ({ key: p.key, seq: p.seq, spec: b64(encode(edge.EdgePodSpecSchema, p.spec)) })),
      objects: state.objects.map((o) => ({ key: o.key, seq: o.seq, object: b64(encode(edge.EdgeObjectSchema, o.object)) })),
      devices: state.devices.map((d) => ({ key: d.key, seq: d.seq, device: b64(encode(edge.EdgeDeviceSchema, d.device)) })),
    };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(form));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.path);
    const dir = await open(this.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async load(node: string): Promise<LoadResult> {
    let raw: string;
    try {
      raw = await readFile(this.path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      return { ok: false, reason: code === 'ENOENT' ? 'no snapshot' : `snapshot unreadable (${code ?? String(err)})` };
    }
    try {
      const f = JSON.parse(raw) as FileForm;
      if (f.version !== VERSION) return { ok: false, reason: `snapshot version ${String(f.version)}, not ${VERSION}` };
      if (f.node !== node) return { ok: false, reason: `snapshot of node "${String(f.node)}", not "${node}"` };
      if (!f.stream || typeof f.stream.name !== 'string' || typeof f.stream.created !== 'string') throw new TypeError('no stream identity');
      for (const n of [f.seq, f.hubSeq, f.lastHubContactMs])
        if (!Number.isSafeInteger(n) || n < 0) throw new TypeError('bad sequence or time');
      const state: DesiredSnapshot = {
        seq: f.seq,
        hubSeq: f.hubSeq,
        pods: f.pods.map((p) => ({ key: String(p.key), seq: Number(p.seq), spec: decodeEdgePodSpec(unb64(p.spec)) })),
        objects: f.objects.map((o) => ({ key: String(o.key), seq: Number(o.seq), object: decodeEdgeObject(unb64(o.object)) })),
        devices: (f.devices ?? []).map((d) => ({ key: String(d.key), seq: Number(d.seq), device: decodeEdgeDevice(unb64(d.device)) })),
      };
      return { ok: true, snapshot: { node, stream: f.stream, lastHubContactMs: f.lastHubContactMs, state } };
    } catch (err) {
      return { ok: false, reason: `snapshot malformed: ${(err as Error).message}` };
    }
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}
