/**
 * The node condition DiskPressure, as the kubelet's eviction manager signals it with its default eviction-hard
 * thresholds: True while the available space of a node filesystem (nodefs: the agent's state directory, the pods'
 * log and volume directories; the site's JetStream store lives beside them) is below nodefsMinFreePercent (10) or
 * that of the image filesystem (containerd's root directory) below imagefsMinFreePercent (15). Available is what an
 * unprivileged writer may still use (statfs bavail), as the kubelet's cadvisor reports it. Beyond the kubelet: the
 * filesystem beside the site's JetStream store must keep the store's reserve (EF_STORE_RESERVE, its max_file_store)
 * available, so pods cannot starve the outbox (docs/site.md#disk).
 *
 * {@link diskPressure} is the pure decision; {@link DiskPressureMonitor} reads the filesystems (a path that does not
 * exist yet is measured at its nearest existing parent), and calls onPressure when pressure starts (the agent runs
 * image GC then, as the kubelet reclaims node-level resources before it evicts).
 */
import { statfs as nodeStatfs } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { errorMessage } from '../util/time.js';

export type FsKind = 'nodefs' | 'imagefs';

export interface FsReading {
  kind: FsKind;
  path: string;
  capacityBytes: number;
  availableBytes: number;
  /** Bytes kept free for the site's JetStream store on this filesystem (0: none). */
  reserveBytes?: number;
}

export interface DiskThresholds {
  /** Pressure below this percentage of a nodefs available (0: never). */
  nodefsMinFreePercent: number;
  /** Pressure below this percentage of the imagefs available (0: never). */
  imagefsMinFreePercent: number;
}

export const DEFAULT_DISK_THRESHOLDS: DiskThresholds = { nodefsMinFreePercent: 10, imagefsMinFreePercent: 15 };

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
}

export function freePercent(r: Pick<FsReading, 'capacityBytes' | 'availableBytes'>): number {
  if (r.capacityBytes <= 0) return 100;
  return (Math.max(0, r.availableBytes) * 100) / r.capacityBytes;
}

/** The DiskPressure condition of the readings (Unknown when there is none). */
export function diskPressure(readings: readonly FsReading[], t: DiskThresholds): NodeCondition {
  if (readings.length === 0)
    return { type: 'DiskPressure', status: 'Unknown', reason: 'EdgeAgentDiskUnknown', message: 'no filesystem could be read' };
  const short = (r: FsReading): boolean => !!r.reserveBytes && Math.max(0, r.availableBytes) < r.reserveBytes;
  const low = readings.filter((r) => {
    const min = r.kind === 'nodefs' ? t.nodefsMinFreePercent : t.imagefsMinFreePercent;
    return (min > 0 && freePercent(r) < min) || short(r);
  });
  if (low.length === 0)
    return { type: 'DiskPressure', status: 'False', reason: 'EdgeAgentHasNoDiskPressure', message: 'edge-agent has no disk pressure' };
  const what = low.map((r) => {
    const min = r.kind === 'nodefs' ? t.nodefsMinFreePercent : t.imagefsMinFreePercent;
    if (short(r))
      return `${r.kind} ${r.path}: ${Math.max(0, r.availableBytes)} bytes available, below the ${r.reserveBytes} reserved for the site's JetStream store`;
    return `${r.kind} ${r.path}: ${freePercent(r).toFixed(1)}% available, below ${min}%`;
  });
  return {
    type: 'DiskPressure',
    status: 'True',
    reason: 'EdgeAgentHasDiskPressure',
    message: `edge-agent has disk pressure: ${what.join('; ')}`,
  };
}

export type StatFs = (p: string) => Promise<{ bsize: number; blocks: number; bavail: number }>;

export interface DiskPressureDeps {
  /** Directories on the node filesystem(s): state, pod logs, volumes. */
  nodefs: string[];
  /**
   * The directory beside the site's JetStream store (the agent's state) and the bytes kept free on its filesystem for
   * the store (its max_file_store): less available is DiskPressure too.
   */
  store?: { path: string; reserveBytes: number };
  /** The image filesystem's directory (containerd's root; '' when unknown: not measured). */
  imagefs: () => Promise<string>;
  log: Logger;
  /** Where the free-space gauge is registered; unset: not exported. */
  registry?: Registry;
  /** Called (not awaited) when pressure starts. */
  onPressure?: (condition: NodeCondition) => void;
  statfs?: StatFs;
}

export class DiskPressureMonitor {
  private readonly statfs: StatFs;
  private pressure = false;
  private last: FsReading[] = [];

  constructor(
    private readonly deps: DiskPressureDeps,
    private readonly thresholds: DiskThresholds = DEFAULT_DISK_THRESHOLDS,
  ) {
    this.statfs = deps.statfs ?? nodeStatfs;
    const self = this;
    new Gauge({
      name: 'edgefarm_agent_filesystem_available_ratio',
      help: 'Available share (0-1) of the node filesystems (nodefs: state, pod logs, volumes) and the image filesystem, as last read for DiskPressure.',
      labelNames: ['fs'],
      registers: deps.registry ? [deps.registry] : [],
      collect(this: Gauge<'fs'>) {
        this.reset();
        for (const kind of ['nodefs', 'imagefs'] as const) {
          const of = self.last.filter((r) => r.kind === kind);
          if (of.length > 0) this.set({ fs: kind }, Math.min(...of.map((r) => freePercent(r) / 100)));
        }
      },
    });
  }

  /** Reads the filesystems and returns the condition. */
  async condition(): Promise<NodeCondition> {
    const readings: FsReading[] = [];
    for (const dir of this.deps.nodefs) {
      const r = await this.read('nodefs', dir);
      if (r) readings.push(r);
    }
    const store = this.deps.store;
    if (store && store.reserveBytes > 0) {
      const r = await this.read('nodefs', store.path);
      if (r) readings.push({ ...r, reserveBytes: store.reserveBytes });
    }
    const image = await this.deps.imagefs().catch(() => '');
    if (image) {
      const r = await this.read('imagefs', image);
      if (r) readings.push(r);
    }
    this.last = readings;
    const c = diskPressure(readings, this.thresholds);
    const now = c.status === 'True';
    if (now && !this.pressure) {
      this.deps.log.warn({ message: c.message }, 'disk pressure');
      this.deps.onPressure?.(c);
    } else if (!now && this.pressure && c.status === 'False') this.deps.log.info('disk pressure over');
    this.pressure = now;
    return c;
  }

  private async read(kind: FsKind, dir: string): Promise<FsReading | undefined> {
    for (let at = path.resolve(dir); ; at = path.dirname(at)) {
      try {
        const s = await this.statfs(at);
        return { kind, path: dir, capacityBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || at === path.dirname(at)) {
          this.deps.log.debug({ dir, err: errorMessage(err) }, 'filesystem not read');
          return undefined;
        }
      }
    }
  }
}
