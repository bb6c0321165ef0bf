/**
 * DeviceTwins: the twin of every device of the node (docs/decisions/0012-devices.md). Mappers at the site report what
 * they read from a device as a MapperReport request on mapperSubjects.report(wireId, protocol, key); the agent merges
 * it into the device's twin and writes the twin as a DeviceStatusReport to the outbox (last value per device, moved
 * to the hub by the forwarder with de-duplication), from where the provider writes the Device's status.
 *
 * - A report is taken only for a device the node's desired state holds, under its own protocol (the subject's
 *   protocol is what a mapper's permission pins it to); anything else is answered with an error text, never merged.
 *   A mapper never creates or changes a device: the desired state does.
 * - Properties merge one by one: a property's value is replaced only by a newer read (reported_at_ms), so reports
 *   that cross never take a value back; a property the device does not declare is refused.
 * - The observed generation only moves forward: a mapper still on an older generation does not make the twin older.
 * - The twin is written when it changed (timestamps aside, a repeated value of a property that was read again is a
 *   change of its read time, written at most every `minWriteMs` per device), with a generation that grows
 *   (max(last + 1, now in µs)), as pod reports do.
 * - A device removed from the desired state forgets its twin.
 */
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import {
  create,
  decodeMapperReport,
  deviceKey,
  edge,
  encode,
  isDecodeError,
  isSubjectError,
  mapperSubjects,
  outboxSubjects,
  parseMapperReportSubject,
} from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { OutboxWriter } from '../bus/outbox.js';
import type { Clock } from '../util/time.js';
import type { DeviceSource } from './board.js';

export interface DeviceTwinsDeps {
  nc: NatsConnection;
  wireId: string;
  devices: DeviceSource;
  outbox: OutboxWriter;
  clock: Clock;
  log: Logger;
  /** Least time between two outbox writes of one device whose values did not change, only their read time (5 s). */
  minWriteMs?: number;
}

interface Twin {
  uid: string;
  namespace: string;
  name: string;
  generation: bigint;
  observedGeneration: bigint;
  connected: boolean;
  message: string;
  lastSeenMs: bigint;
  properties: Map<string, edge.PropertyTwin>;
  /** The values last written (read times aside), and when. */
  lastValues?: string;
  lastWriteMs: number;
  /** The twin's outbox writes, one after the other: the outbox keeps the last one stored, which must be the newest. */
  writes: Promise<void>;
}

/** Why a report was refused (the reply's text). */
export class ReportRefused extends Error {
  override name = 'ReportRefused';
}

export class DeviceTwins {
  private readonly twins = new Map<string, Twin>();
  private sub?: Subscription;
  /** Reports merged, refused, and twins written (tests, metrics). */
  readonly stats = { merged: 0, refused: 0, written: 0 };

  constructor(private readonly deps: DeviceTwinsDeps) {}

  start(): void {
    this.sub = this.deps.nc.subscribe(mapperSubjects.reports(this.deps.wireId), {
      callback: (err, msg) => {
        if (err) return;
        void this.onReport(msg);
      },
    });
  }

  stop(): void {
    this.sub?.unsubscribe();
  }

  /** The twin of a device as last merged (tests). */
  twin(key: string): edge.DeviceStatusReport | undefined {
    const t = this.twins.get(key);
    return t && this.report(t);
  }

  /** The desired store's device changed: a removed device (or one made anew) forgets its twin. */
  deviceChanged(key: string): void {
    const d = this.deps.devices.device(key);
    const t = this.twins.get(key);
    if (t && (!d || d.uid !== t.uid)) this.twins.delete(key);
  }

  private async onReport(msg: Msg): Promise<void> {
    try {
      await this.merge(msg.subject, msg.data);
      this.stats.merged++;
      if (msg.reply) msg.respond(new Uint8Array());
    } catch (err) {
      this.stats.refused++;
      const text = err instanceof Error ? err.message : String(err);
      if (!(err instanceof ReportRefused || isDecodeError(err) || isSubjectError(err)))
        this.deps.log.warn({ subject: msg.subject, err: text }, 'device report not stored');
      else this.deps.log.debug({ subject: msg.subject, err: text }, 'device report refused');
      if (msg.reply) msg.respond(new TextEncoder().encode(text.slice(0, 1024)));
    }
  }

  /** Merges one report into its device's twin and writes the twin when it changed. Throws why not. */
  async merge(subject: string, data: Uint8Array): Promise<void> {
    const s = parseMapperReportSubject(subject);
    if (s.node !== this.deps.wireId) throw new ReportRefused(`a report for another node`);
    const key = deviceKey(s.key);
    const device = this.deps.devices.device(key);
    if (!device) throw new ReportRefused(`no device ${s.key.namespace}/${s.key.name} on this node`);
    if (device.protocol !== s.protocol)
      throw new ReportRefused(`device ${s.key.namespace}/${s.key.name} is served by protocol ${device.protocol}, not ${s.protocol}`);
    const report = decodeMapperReport(data, subject);
    const declared = new Set(device.properties.map((p) => p.name));
    for (const p of report.twins)
      if (!declared.has(p.name)) throw new ReportRefused(`device ${s.key.namespace}/${s.key.name} has no property ${p.name}`);

    let t = this.twins.get(key);
    if (!t || t.uid !== device.uid) {
      t = {
        uid: device.uid,
        namespace: device.namespace,
        name: device.name,
        generation: 0n,
        observedGeneration: 0n,
        connected: false,
        message: '',
        lastSeenMs: 0n,
        properties: new Map(),
        lastWriteMs: 0,
        writes: Promise.resolve(),
      };
      this.twins.set(key, t);
    }
    const now = this.deps.clock.now();
    if (report.generation > t.observedGeneration) t.observedGeneration = report.generation;
    t.connected = report.connected;
    t.message = report.message;
    if (report.connected) t.lastSeenMs = BigInt(Math.trunc(now));
    for (const p of report.twins) {
      const held = t.properties.get(p.name);
      if (held && held.reportedAtMs > p.reportedAtMs) continue; // an older read never takes a value back
      t.properties.set(
        p.name,
        create(edge.PropertyTwinSchema, {
          ...p,
          observedDesiredGeneration: p.observedDesiredGeneration || held?.observedDesiredGeneration || 0n,
        }),
      );
    }
    const twin = t;
    const done = twin.writes.then(() => this.write(twin, this.deps.clock.now()));
    twin.writes = done.catch(() => undefined);
    await done;
  }

  private report(t: Twin): edge.DeviceStatusReport {
    return create(edge.DeviceStatusReportSchema, {
      uid: t.uid,
      namespace: t.namespace,
      name: t.name,
      generation: t.generation,
      observedGeneration: t.observedGeneration,
      connected: t.connected,
      message: t.message,
      lastSeenMs: t.lastSeenMs,
      twins: [...t.properties.values()].sort((a, b) => a.name.localeCompare(b.name)),
    });
  }

  private async write(t: Twin, now: number): Promise<void> {
    const values = JSON.stringify([
      t.observedGeneration.toString(),
      t.connected,
      t.message,
      [...t.properties.values()].map((p) => [p.name, p.reported, p.observedDesired, p.observedDesiredGeneration.toString()]),
    ]);
    if (values === t.lastValues && now - t.lastWriteMs < (this.deps.minWriteMs ?? 5000)) return;
    const byClock = BigInt(Math.trunc(now)) * 1000n;
    const generation = t.generation + 1n > byClock ? t.generation + 1n : byClock;
    const report = this.report({ ...t, generation });
    await this.deps.outbox.publish(
      outboxSubjects.of(this.deps.wireId, { kind: 'device', uid: t.uid }),
      encode(edge.DeviceStatusReportSchema, report),
    );
    t.generation = generation;
    t.lastValues = values;
    t.lastWriteMs = now;
    this.stats.written++;
  }
}
