/**
 * Container log rotation against a real containerd, through the whole agent: a container that writes fast keeps its
 * log directory bounded (at most maxFiles files, each at most maxSize plus what it writes in one check interval), the
 * newest lines are in the current file, and a follow read (`kubectl logs -f`) started before the rotations reads every
 * line across them, in order, without a gap.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { edge } from '@edgefarm/proto';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';
import { podLogDirectory } from '../runtime/cri-config.js';
import { readContainerLog } from '../streaming/logs.js';

const T = 120_000;
const MAX_SIZE = 16 * 1024;
const MAX_FILES = 3;
const INTERVAL_MS = 250;
const CONTENT = 1000; // bytes of padding per line
// Each line waits 10 ms (usleep), so the container writes at most 100 lines a second; a CRI log line is the content,
// its sequence number, a 30-byte time, " stdout F " and a newline.
const LINE_MAX = CONTENT + 10 + 30 + 10 + 1;
const MAX_BYTES_PER_SECOND = 100 * LINE_MAX;
// One check interval's writes, the interval stretched by a loaded machine (a check's own CRI calls, timer delay).
const SLACK = Math.ceil(MAX_BYTES_PER_SECOND * ((INTERVAL_MS + 2000) / 1000));
const WRITER = `pad=$(head -c ${CONTENT} /dev/zero | tr '\\0' x); i=0; while true; do i=$((i+1)); echo "$i $pad"; usleep 10000; done`;

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start({
    containerLogMaxSizeBytes: MAX_SIZE,
    containerLogMaxFiles: MAX_FILES,
    containerLogMonitorIntervalMs: INTERVAL_MS,
  });
}, T);

afterAll(() => bed?.stop(), T);

const seqOf = (line: string): number => Number(line.split(' ')[0]);

async function sizes(dir: string): Promise<{ name: string; bytes: number; logical: number }[]> {
  const out = [];
  for (const name of await readdir(dir)) {
    const file = path.join(dir, name);
    const bytes = (await stat(file)).size;
    const logical = name.endsWith('.gz') ? gunzipSync(await readFile(file)).length : bytes;
    out.push({ name, bytes, logical });
  }
  return out;
}

describe('container log rotation', () => {
  it(
    'keeps a fast writer’s log directory bounded, the newest lines readable, and a follow read whole across rotations',
    async () => {
      const pod = podSpec({
        hostNetwork: true,
        containers: [{ name: 'chatty', image: BUSYBOX, command: ['sh', '-c', WRITER], imagePullPolicy: edge.PullPolicy.NEVER }],
      });
      await publishDesired(bed.site.hubNc, bed.site.node, pod);
      await bed.watcher.waitFor(pod.uid, (r) => r.phase === edge.PodPhase.RUNNING);
      const dir = path.join(podLogDirectory(bed.site.agentConfig(), pod), 'chatty');
      const current = path.join(dir, '0.log');
      await waitFor(
        'the log file',
        () =>
          stat(current).then(
            () => true,
            () => false,
          ),
        30_000,
      );

      // kubectl logs -f from the start, while the file is rotated under it
      const ac = new AbortController();
      const seen: number[] = [];
      let text = '';
      const follow = (async () => {
        const read = readContainerLog(current, { follow: true, timestamps: false }, () => Promise.resolve(true), ac.signal, { pollMs: 20 });
        for await (const chunk of read) {
          text += Buffer.from(chunk).toString('utf8');
          const lines = text.split('\n');
          text = lines.pop()!;
          for (const l of lines) seen.push(seqOf(l));
        }
      })();

      let maxFiles = 0;
      let maxLogical = 0;
      let maxDir = 0;
      const deadline = Date.now() + 12_000;
      while (Date.now() < deadline) {
        const files = await sizes(dir).catch(() => []);
        maxFiles = Math.max(maxFiles, files.length);
        maxLogical = Math.max(maxLogical, ...files.map((f) => f.logical));
        maxDir = Math.max(
          maxDir,
          files.reduce((n, f) => n + f.bytes, 0),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
      const files = await sizes(dir);
      const rotatedNames = files.filter((f) => f.name !== '0.log').map((f) => f.name);
      let newestRotated = 0;
      for (const name of rotatedNames) {
        // the writer still runs: the oldest rotated file may be removed between the listing and the read
        const raw = await readFile(path.join(dir, name)).catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') return undefined;
          throw err;
        });
        if (!raw) continue;
        const lines = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8').trim().split('\n');
        newestRotated = Math.max(newestRotated, seqOf(lines[lines.length - 1]!.split(' ').slice(3).join(' ')));
      }

      // the newest lines are in the current file: a plain read (kubectl logs --tail) finds lines the follow read saw last
      const tail: string[] = [];
      for await (const chunk of readContainerLog(
        current,
        { follow: false, timestamps: false, tailLines: 3 },
        () => Promise.resolve(true),
        new AbortController().signal,
      )) {
        tail.push(Buffer.from(chunk).toString('utf8'));
      }
      const tailSeqs = tail.join('').trim().split('\n').map(seqOf);
      await waitFor(
        'the follow read reaches the tail',
        () => seen.length > 0 && seen[seen.length - 1]! >= tailSeqs[tailSeqs.length - 1]!,
        10_000,
      );
      ac.abort();
      await follow;

      const gaps = seen.filter((s, i) => i > 0 && s !== seen[i - 1]! + 1).length;
      process.stdout.write(
        `log rotation: max ${MAX_SIZE} B x ${MAX_FILES} files, checked every ${INTERVAL_MS} ms; seen: at most ${maxFiles} files, ` +
          `largest ${maxLogical} B (bound ${MAX_SIZE + SLACK}), directory at most ${maxDir} B on disk; ${seen.length} lines followed, ` +
          `${gaps} gaps; tail ${JSON.stringify(tailSeqs)}; now ${JSON.stringify(files)}\n`,
      );
      expect(rotatedNames.length).toBeGreaterThan(0);
      expect(rotatedNames.some((n) => n.endsWith('.gz'))).toBe(true);
      expect(maxFiles).toBeLessThanOrEqual(MAX_FILES);
      expect(maxLogical).toBeLessThanOrEqual(MAX_SIZE + SLACK);
      // the current file may hold fewer than 3 lines right after a rotation (only it is read, as the kubelet does)
      expect(tailSeqs.length).toBeGreaterThan(0);
      expect(tailSeqs).toEqual(tailSeqs.map((_, i) => tailSeqs[0]! + i));
      expect(tailSeqs[0]).toBeGreaterThan(newestRotated);
      expect(seen[0]).toBe(1);
      expect(gaps).toBe(0);
      expect(seen.length).toBeGreaterThan(10 * (MAX_SIZE / LINE_MAX)); // many rotations' worth

      await publishTombstone(bed.site.hubNc, bed.site.node, pod);
    },
    T,
  );
});
