import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { podKeyString, type edge } from '@edgefarm/proto';
import { podSpec, silentLogger } from '@edgefarm/testing';
import { Registry } from 'prom-client';
import type { EventKind, EventRef, EventSink } from '../events/recorder.js';
import { EmptyDirEviction, emptyDirMessage, formatQuantity, limitedEmptyDirs } from './emptydir.js';

type VolumeInit = MessageInitShape<typeof edge.EdgeVolumeSchema>;
const emptyDir = (name: string, sizeLimitBytes = 0n, memory = false): VolumeInit => ({
  name,
  source: { case: 'emptyDir', value: { memory, sizeLimitBytes } },
});
const MiB = 1024n * 1024n;

class Events implements EventSink {
  readonly seen: { ref: EventRef; type: EventKind; reason: string; message: string }[] = [];
  event(ref: EventRef, type: EventKind, reason: string, message: string): void {
    this.seen.push({ ref, type, reason, message });
  }
}

let root: string;
let pods: Map<string, edge.EdgePodSpec>;
let synced: boolean;
let queued: string[];
let events: Events;
let registry: Registry;
const volumeDir = (uid: string, v: string) => path.join(root, uid, 'volumes', v);

function monitor(): EmptyDirEviction {
  return new EmptyDirEviction(
    {
      desired: {
        keys: () => [...pods.keys()],
        get: (k) => pods.get(k),
        get synced() {
          return synced;
        },
      },
      volumeDir,
      podDir: (uid) => path.join(root, uid),
      podUids: () => [...pods.values()].map((p) => p.uid),
      onEvict: (k) => queued.push(k),
      events,
      registry,
      log: silentLogger(),
    },
    { periodMs: 0 },
  );
}
async function place(pod: edge.EdgePodSpec): Promise<edge.EdgePodSpec> {
  pods.set(podKeyString(pod), pod);
  for (const v of pod.volumes) await mkdir(volumeDir(pod.uid, v.name), { recursive: true });
  return pod;
}

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-evict-'));
  pods = new Map();
  synced = true;
  queued = [];
  events = new Events();
  registry = new Registry();
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('emptyDir sizeLimit eviction', () => {
  it('formats limits as Kubernetes quantities, in the kubelet message', () => {
    expect(formatQuantity(MiB)).toBe('1Mi');
    expect(formatQuantity(1536n * 1024n)).toBe('1536Ki');
    expect(formatQuantity(500n * 1000n * 1000n)).toBe('500M');
    expect(formatQuantity(1001n)).toBe('1001');
    expect(emptyDirMessage('x', MiB)).toBe('Usage of EmptyDir volume "x" exceeds the limit "1Mi".');
  });

  it('measures only disk emptyDirs with a sizeLimit', () => {
    const pod = podSpec({ volumes: [emptyDir('a', MiB), emptyDir('b'), emptyDir('m', MiB, true)] });
    expect(limitedEmptyDirs(pod)).toEqual([{ name: 'a', limitBytes: MiB }]);
  });

  it('evicts the pod over its limit: mark, Event, metric, sync queued; a pod within its limit is left alone', async () => {
    const over = await place(podSpec({ name: 'over', volumes: [emptyDir('ok', 10n * MiB), emptyDir('scratch', MiB)] }));
    const within = await place(podSpec({ name: 'within', volumes: [emptyDir('scratch', MiB)] }));
    const unlimited = await place(podSpec({ name: 'unlimited', volumes: [emptyDir('scratch')] }));
    await writeFile(path.join(volumeDir(over.uid, 'scratch'), 'big'), Buffer.alloc(2 * 1024 * 1024, 1));
    await writeFile(path.join(volumeDir(within.uid, 'scratch'), 'small'), Buffer.alloc(256 * 1024, 1));
    await writeFile(path.join(volumeDir(unlimited.uid, 'scratch'), 'big'), Buffer.alloc(2 * 1024 * 1024, 1));
    const m = monitor();
    await m.start();
    await m.check();
    const eviction = { reason: 'Evicted', message: 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".' };
    expect(m.evicted(over.uid)).toEqual(eviction);
    expect(m.evicted(within.uid)).toBeUndefined();
    expect(m.evicted(unlimited.uid)).toBeUndefined();
    expect(queued).toEqual(['default/over']);
    expect(events.seen).toEqual([{ ref: { uid: over.uid, namespace: 'default', name: 'over' }, type: 'Warning', ...eviction }]);
    expect(await registry.getSingleMetricAsString('edgefarm_agent_evictions_total')).toContain(
      'edgefarm_agent_evictions_total{reason="emptydir-size-limit"} 1',
    );
    await m.check(); // once evicted, not again
    expect(events.seen).toHaveLength(1);
    expect(JSON.parse(await readFile(path.join(root, over.uid, 'evicted.json'), 'utf8'))).toEqual(eviction);
  });

  it('a restarted agent reads the marks before measuring anything', async () => {
    const over = await place(podSpec({ name: 'over', volumes: [emptyDir('scratch', MiB)] }));
    await writeFile(path.join(volumeDir(over.uid, 'scratch'), 'big'), Buffer.alloc(2 * 1024 * 1024, 1));
    await monitor().check();
    await rm(path.join(volumeDir(over.uid, 'scratch'), 'big')); // even if the usage went down since
    registry = new Registry(); // a new agent, a new registry
    const again = monitor();
    await again.start();
    expect(again.evicted(over.uid)?.reason).toBe('Evicted');
  });

  it('forgets a mark once the pod is gone from a synced desired state, not before', async () => {
    const over = await place(podSpec({ name: 'over', volumes: [emptyDir('scratch', MiB)] }));
    await writeFile(path.join(volumeDir(over.uid, 'scratch'), 'big'), Buffer.alloc(2 * 1024 * 1024, 1));
    const m = monitor();
    await m.check();
    pods.clear();
    synced = false;
    await m.check();
    expect(m.evicted(over.uid)).toBeDefined();
    synced = true;
    await m.check();
    expect(m.evicted(over.uid)).toBeUndefined();
  });

  it('a deleting pod or a missing volume directory is not measured', async () => {
    const deleting = await place(podSpec({ name: 'd', deleting: true, volumes: [emptyDir('scratch', 1n)] }));
    await writeFile(path.join(volumeDir(deleting.uid, 'scratch'), 'f'), 'x');
    pods.set('default/nodir', podSpec({ name: 'nodir', volumes: [emptyDir('scratch', 1n)] }));
    const m = monitor();
    await m.check();
    expect(events.seen).toEqual([]);
  });
});
