/**
 * MapperRuntime: what every mapper does (docs/devices.md, docs/decisions/0012-devices.md), so that a mapper for a
 * protocol is only a {@link Driver}:
 *
 * - watches the site's device board (deviceBoard.bucket(wireId)) for its protocol's keys: every device it serves at
 *   start, whatever was created first, and every change after — the board exists once the node has a device, so the
 *   runtime waits for it;
 * - runs one {@link DeviceWorker} per device: connects the driver (again after a failure, with back-off), reads every
 *   property at its collect cycle, writes a ReadWrite property's desired value once per generation (a newer
 *   generation, or a changed value, writes again; a stale generation never does), and reports what it read to the
 *   agent as a MapperReport request at the report cycle (or at once when a value changed);
 * - stops a device's worker when its board entry is deleted, and restarts it when its connection settings change.
 *
 * It never creates, changes or deletes a device: the desired state does.
 */
import { Kvm, type KV, type KvEntry, type KvWatchOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { create, decodeEdgeDevice, deviceBoard, edge, encode, mapperSubjects } from '@edgefarm/proto';
import type { Logger } from 'pino';

/** A protocol's access to one device. Every call may throw: the runtime reconnects and reports the error. */
export interface Driver {
  connect(): Promise<void>;
  /** The property's current value, as its type's text (INT: an integer, BOOLEAN: true/false, ...). */
  read(property: edge.DeviceProperty): Promise<string>;
  /** Writes a desired value (a ReadWrite property's). */
  write(property: edge.DeviceProperty, value: string): Promise<void>;
  close(): Promise<void>;
}

/** Makes the driver of one device from its protocol configuration (throws when the configuration is unusable). */
export type DriverFactory = (device: edge.EdgeDevice) => Driver;

export interface MapperRuntimeOptions {
  nc: NatsConnection;
  /** The node's wire id (the board's and the report subjects' name). */
  wireId: string;
  protocol: string;
  driver: DriverFactory;
  log: Logger;
  /** Collect cycle of a property that sets none (ms, default 1000). */
  defaultCollectMs?: number;
  /** Least time between two reports of a device whose values did not change (ms, default 5000; 0: every read). */
  defaultReportMs?: number;
  /** Back-off of a failed connection: first delay and cap (ms, default 500 and 10000). */
  retryMs?: { first: number; max: number };
  now?: () => number;
}

export class MapperRuntime {
  private readonly workers = new Map<string, DeviceWorker>();
  private stopped = false;
  private watching?: Promise<void>;
  private stopWatch?: () => void;

  constructor(private readonly o: MapperRuntimeOptions) {}

  /** Starts watching the board (waits for it to exist in the background). */
  start(): void {
    this.watching = this.watch();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopWatch?.();
    await this.watching?.catch(() => undefined);
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
    this.workers.clear();
  }

  /** The workers by board key (tests). */
  get devices(): ReadonlyMap<string, DeviceWorker> {
    return this.workers;
  }

  private async board(): Promise<KV> {
    const kvm = new Kvm(this.o.nc);
    for (let delay = 200; ; delay = Math.min(delay * 2, 5000)) {
      try {
        const kv = await kvm.open(deviceBoard.bucket(this.o.wireId));
        await kv.status(); // open() does not look: this fails while the bucket does not exist
        return kv;
      } catch (err) {
        if (this.stopped) throw err;
        this.o.log.debug({ err: (err as Error).message }, 'device board not there yet (no device on this node): waiting');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Watches the board for as long as the runtime runs: a watch that fails or ends is opened again. */
  private async watch(): Promise<void> {
    while (!this.stopped) {
      try {
        const kv = await this.board();
        const opts: KvWatchOptions = { key: deviceBoard.protocol(this.o.protocol) };
        const iter = await kv.watch(opts);
        this.stopWatch = () => iter.stop();
        if (this.stopped) iter.stop();
        for await (const e of iter as AsyncIterable<KvEntry>) {
          if (this.stopped) break;
          this.entry(e);
        }
      } catch (err) {
        if (this.stopped) return;
        this.o.log.warn({ err: (err as Error).message }, 'device board watch failed; watching again');
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private entry(e: KvEntry): void {
    const held = this.workers.get(e.key);
    if (e.operation !== 'PUT') {
      if (held) {
        this.workers.delete(e.key);
        void held.stop();
        this.o.log.info({ device: e.key }, 'device no longer on the board: stopped');
      }
      return;
    }
    let device: edge.EdgeDevice;
    try {
      device = decodeEdgeDevice(e.value, e.key);
    } catch (err) {
      this.o.log.error({ device: e.key, err: (err as Error).message }, 'undecodable board entry: skipped');
      return;
    }
    if (device.protocol !== this.o.protocol) return;
    if (held && held.sameConnection(device)) {
      held.update(device);
      return;
    }
    if (held) void held.stop();
    const w = new DeviceWorker(device, this.o);
    this.workers.set(e.key, w);
    w.start();
    this.o.log.info({ device: e.key, generation: String(device.generation) }, held ? 'device reconfigured: restarted' : 'serving device');
  }
}

interface PropertyState {
  reported?: string;
  readAtMs: bigint;
  /** The desired value written, and the generation it came with. */
  written?: string;
  writtenGeneration: bigint;
  nextReadMs: number;
}

/** One device: its driver, its properties' cycles, its desired writes and its reports. */
export class DeviceWorker {
  private driver?: Driver;
  private connected = false;
  private message = '';
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private running?: Promise<void>;
  private retryDelay: number;
  private nextConnectMs = 0;
  private lastReportMs = 0;
  private lastReported = '';
  private readonly props = new Map<string, PropertyState>();
  /** Reports answered by the agent, refused by it, and driver errors (tests, metrics). */
  readonly stats = { reports: 0, refused: 0, errors: 0, writes: 0 };
  private readonly now: () => number;

  constructor(
    private device: edge.EdgeDevice,
    private readonly o: MapperRuntimeOptions,
  ) {
    this.now = o.now ?? Date.now;
    this.retryDelay = o.retryMs?.first ?? 500;
  }

  /** The same device, with the same connection settings (only desired values or cycles may differ). */
  sameConnection(d: edge.EdgeDevice): boolean {
    return d.uid === this.device.uid && d.protocolConfigJson === this.device.protocolConfigJson;
  }

  update(d: edge.EdgeDevice): void {
    this.device = d;
    this.kick(0);
  }

  start(): void {
    this.kick(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
    await this.driver?.close().catch(() => undefined);
  }

  private kick(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.running) return this.kick(50);
      this.running = this.tick().finally(() => (this.running = undefined));
    }, ms);
  }

  private async tick(): Promise<void> {
    let wait: number;
    try {
      wait = await this.step();
    } catch (err) {
      this.stats.errors++;
      this.fail(err);
      wait = this.backoff();
    }
    this.kick(wait);
  }

  private fail(err: unknown): void {
    const text = err instanceof Error ? err.message : String(err);
    if (this.connected || this.message !== text) this.o.log.warn({ device: this.key(), err: text }, 'device unreachable');
    this.connected = false;
    this.message = text;
    const d = this.driver;
    this.driver = undefined;
    void d?.close().catch(() => undefined);
  }

  private backoff(): number {
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, this.o.retryMs?.max ?? 10_000);
    this.nextConnectMs = this.now() + delay;
    return delay;
  }

  private key(): string {
    return `${this.device.namespace}/${this.device.name}`;
  }

  /** One pass: connect if needed, write what is due, read what is due, report; resolves the ms to the next pass. */
  private async step(): Promise<number> {
    if (!this.driver) {
      if (this.now() < this.nextConnectMs) {
        await this.report(true);
        return this.nextConnectMs - this.now();
      }
      const driver = this.o.driver(this.device);
      await driver.connect();
      this.driver = driver;
      this.connected = true;
      this.message = '';
      this.retryDelay = this.o.retryMs?.first ?? 500;
      this.o.log.info({ device: this.key() }, 'device connected');
    }
    const driver = this.driver;
    const now = this.now();
    let changed = false;
    for (const p of this.device.properties) {
      let s = this.props.get(p.name);
      if (!s) this.props.set(p.name, (s = { readAtMs: 0n, writtenGeneration: 0n, nextReadMs: 0 }));
      if (p.writable && p.desired !== undefined && (s.writtenGeneration < this.device.generation || s.written !== p.desired)) {
        await driver.write(p, p.desired);
        s.written = p.desired;
        s.writtenGeneration = this.device.generation;
        s.nextReadMs = 0; // read it back now
        this.stats.writes++;
        changed = true;
      }
    }
    let next = Number.POSITIVE_INFINITY;
    for (const p of this.device.properties) {
      const s = this.props.get(p.name)!;
      if (s.nextReadMs <= now) {
        const value = await driver.read(p);
        if (value !== s.reported) changed = true;
        s.reported = value;
        s.readAtMs = BigInt(this.now());
        s.nextReadMs = now + (Number(p.collectCycleMs) || this.o.defaultCollectMs || 1000);
      }
      next = Math.min(next, s.nextReadMs);
    }
    await this.report(changed);
    return Math.max(10, Math.min(next - this.now(), this.reportDueInMs()));
  }

  private reportEveryMs(): number {
    const cycles = this.device.properties.map((p) => Number(p.reportCycleMs)).filter((n) => n > 0);
    return cycles.length > 0 ? Math.min(...cycles) : (this.o.defaultReportMs ?? 5000);
  }

  private reportDueInMs(): number {
    return Math.max(0, this.lastReportMs + this.reportEveryMs() - this.now());
  }

  /** Reports the device's state when something changed or a report is due; the agent's answer is logged if it refuses. */
  private async report(changed: boolean): Promise<void> {
    const twins = [...this.props.entries()]
      .filter(([name]) => this.device.properties.some((p) => p.name === name))
      .map(([name, s]) =>
        create(edge.PropertyTwinSchema, {
          name,
          reported: s.reported ?? '',
          reportedAtMs: s.readAtMs,
          observedDesired: s.written ?? '',
          observedDesiredGeneration: s.writtenGeneration,
        }),
      );
    const state = JSON.stringify([this.connected, this.message, twins.map((t) => [t.name, t.reported, t.observedDesired])]);
    if (!changed && state === this.lastReported && this.reportDueInMs() > 0) return;
    const report = create(edge.MapperReportSchema, {
      generation: this.device.generation,
      connected: this.connected,
      message: this.message.slice(0, 1024),
      twins,
    });
    const subject = mapperSubjects.report(this.o.wireId, this.o.protocol, { namespace: this.device.namespace, name: this.device.name });
    try {
      const reply = await this.o.nc.request(subject, encode(edge.MapperReportSchema, report), { timeout: 5000 });
      if (reply.data.length > 0) {
        this.stats.refused++;
        this.o.log.warn({ device: this.key(), refused: new TextDecoder().decode(reply.data) }, 'the agent refused a report');
      } else this.stats.reports++;
      this.lastReportMs = this.now();
      this.lastReported = state;
    } catch (err) {
      // the agent is not there (restarting): the next pass reports again
      this.o.log.debug({ device: this.key(), err: (err as Error).message }, 'report not answered');
    }
  }
}
