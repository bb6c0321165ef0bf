/**
 * DeviceStatusWriter (docs/decisions/0012-devices.md, phase 2): a device's twin, as its site last reported it
 * (DeviceStatusReport from ef.status.<node>.device.<uid>), into the Device's status subresource — at a bounded rate,
 * never from a site that does not own the device, never backwards.
 *
 * - A twin is taken only from the node the Device is on (spec.nodeName) and for the Device's UID: a site cannot write
 *   the status of another node's device, nor of a device made anew under the same name.
 * - A twin older than one written (the agent's per-device generation) is dropped; twins that arrive while a write is
 *   due are coalesced, the newest wins.
 * - One status write per device per `intervalMs` at most, and `qps` writes a second for all devices together (a
 *   token bucket, as Events): the API sees a bounded rate whatever the sample rate at the sites (KubeEdge#5892).
 * - The status: twins (reported value and read time, the desired value the mapper last wrote with its generation),
 *   state online/offline, lastOnlineTime, observedGeneration, and two conditions: Connected (the mapper reaches the
 *   device) and Synced (every ReadWrite property with a desired value reports it, written at the Device's current
 *   generation). A condition keeps its lastTransitionTime while its status stays.
 */
import type { Logger } from 'pino';
import type { edge } from '@edgefarm/proto';
import { RateLimiter } from '../events/rate.js';
import type { KubeClient, Watcher } from '../kube/client.js';
import type { Device, DeviceStatus } from './types.js';

export interface DeviceStatusWriterDeps {
  kube: Pick<KubeClient, 'patchDeviceStatus'>;
  devices: Pick<Watcher<Device>, 'get'>;
  log: Logger;
  /** Least time between two status writes of one device (ms). */
  intervalMs: number;
  /** Status writes per second for all devices (burst twice that). */
  qps: number;
  now?: () => number;
  /** What happened to each twin (metrics). */
  outcome?: (result: 'written' | 'coalesced' | 'stale' | 'foreign' | 'unknown' | 'failed') => void;
}

type Condition = NonNullable<DeviceStatus['conditions']>[number];

interface Pending {
  node: string;
  report: edge.DeviceStatusReport;
}

interface Written {
  uid: string;
  generation: bigint;
  atMs: number;
}

export class DeviceStatusWriter {
  private readonly pending = new Map<string, Pending>();
  private readonly written = new Map<string, Written>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly limiter: RateLimiter;
  private readonly now: () => number;
  private stopped = false;

  constructor(private readonly deps: DeviceStatusWriterDeps) {
    this.now = deps.now ?? Date.now;
    this.limiter = new RateLimiter(deps.qps, deps.qps * 2, { now: this.now });
  }

  /** A twin from a node's site (StatusHandlers.device). */
  onReport(node: string, report: edge.DeviceStatusReport): void {
    if (this.stopped) return;
    const key = `${report.namespace}/${report.name}`;
    const d = this.deps.devices.get(report.namespace, report.name);
    if (!d || d.metadata?.uid !== report.uid) return this.outcome('unknown');
    if (d.spec?.nodeName !== node) {
      this.deps.log.warn({ device: key, node, on: d.spec?.nodeName }, "a device's twin from a node it is not on: dropped");
      return this.outcome('foreign');
    }
    const w = this.written.get(key);
    if (w && w.uid === report.uid && report.generation <= w.generation) return this.outcome('stale');
    const held = this.pending.get(key);
    if (held && held.report.uid === report.uid && report.generation <= held.report.generation) return this.outcome('stale');
    if (held) this.outcome('coalesced');
    this.pending.set(key, { node, report });
    this.schedule(key);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Writes every pending twin now, as far as the rate allows (tests). */
  async flush(): Promise<void> {
    for (const key of [...this.pending.keys()]) await this.write(key);
  }

  private schedule(key: string): void {
    if (this.timers.has(key)) return;
    const w = this.written.get(key);
    const due = w ? Math.max(0, w.atMs + this.deps.intervalMs - this.now()) : 0;
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        void this.write(key);
      }, due),
    );
  }

  private async write(key: string): Promise<void> {
    const p = this.pending.get(key);
    if (!p || this.stopped) return;
    this.pending.delete(key);
    await this.limiter.take();
    const d = this.deps.devices.get(p.report.namespace, p.report.name);
    if (!d || d.metadata?.uid !== p.report.uid || d.spec?.nodeName !== p.node) return this.outcome('unknown');
    const status = deviceStatus(d, p.report, new Date(this.now()));
    try {
      const found = await this.deps.kube.patchDeviceStatus(p.report.namespace, p.report.name, status);
      this.written.set(key, { uid: p.report.uid, generation: p.report.generation, atMs: this.now() });
      this.outcome(found ? 'written' : 'unknown');
    } catch (err) {
      this.outcome('failed');
      this.deps.log.warn({ device: key, err: (err as Error).message }, 'device status write failed; the next twin writes again');
      // The twin goes back to pending (unless a newer one came meanwhile) and is tried again one interval later: the
      // write time moves on as back-off, the generation written does not (of this UID only: a device made anew under
      // the same name starts from none).
      if (!this.pending.has(key)) this.pending.set(key, p);
      const w = this.written.get(key);
      this.written.set(key, { uid: p.report.uid, generation: w?.uid === p.report.uid ? w.generation : 0n, atMs: this.now() });
      this.schedule(key);
    }
  }

  private outcome(result: Parameters<NonNullable<DeviceStatusWriterDeps['outcome']>>[0]): void {
    this.deps.outcome?.(result);
  }
}

/** The status subresource of `d` for its site's twin `r`. */
export function deviceStatus(d: Device, r: edge.DeviceStatusReport, now: Date): DeviceStatus {
  const generation = d.metadata?.generation ?? 0;
  const twins = r.twins.map((t) => ({
    propertyName: t.name,
    reported: { value: t.reported, metadata: { timestamp: t.reportedAtMs.toString() } },
    observedDesired: { value: t.observedDesired, metadata: { generation: t.observedDesiredGeneration.toString() } },
  }));
  const byName = new Map(r.twins.map((t) => [t.name, t]));
  const unsynced: string[] = [];
  for (const p of d.spec?.properties ?? []) {
    const want = p.desired?.value;
    if (want === undefined) continue;
    const t = byName.get(p.name);
    if (!t || t.observedDesired !== want || t.reported !== want || t.observedDesiredGeneration < BigInt(generation)) unsynced.push(p.name);
  }
  const old = new Map((d.status?.conditions ?? []).map((c) => [c.type, c]));
  const condition = (type: string, ok: boolean, reason: string, message: string): Condition => {
    const status = ok ? 'True' : 'False';
    const was = old.get(type);
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: was && was.status === status && was.lastTransitionTime ? was.lastTransitionTime : now.toISOString(),
      observedGeneration: generation,
    };
  };
  return {
    observedGeneration: Number(r.observedGeneration),
    state: r.connected ? 'online' : 'offline',
    ...(r.lastSeenMs > 0n ? { lastOnlineTime: new Date(Number(r.lastSeenMs)).toISOString() } : {}),
    twins,
    conditions: [
      condition(
        'Connected',
        r.connected,
        r.connected ? 'MapperConnected' : 'DeviceUnreachable',
        r.message || (r.connected ? 'the mapper reaches the device' : 'the mapper does not reach the device'),
      ),
      condition(
        'Synced',
        unsynced.length === 0,
        unsynced.length === 0 ? 'InSync' : 'Pending',
        unsynced.length === 0
          ? 'every desired value is reported by the device'
          : `not yet reported at generation ${generation}: ${unsynced.slice(0, 16).join(', ')}`,
      ),
    ],
  };
}
