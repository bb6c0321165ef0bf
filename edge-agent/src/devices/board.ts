/**
 * DeviceBoard: the site's device board (docs/decisions/0012-devices.md), a key-value bucket in the site's JetStream
 * (deviceBoard.bucket(wireId)) that holds every desired device of the node as an EdgeDevice, keyed
 * `<protocol>.<namespace>.<name>`, for the mappers at the site. A mapper watches its protocol's keys and gets every
 * device it serves at start and every change after, whatever the order in which devices and mappers came (the board
 * is the desired store's copy, which the site stream replays at every start), and works without the cloud.
 *
 * - {@link changed} gets a device key ({@link deviceKey}) whenever the desired store's device changed; the board
 *   writes its current value (or deletes its entry) one key at a time, in order. A device whose protocol changed
 *   moves: the old entry is deleted.
 * - {@link resync} (after the store synced at start) makes the bucket exactly the store's devices: entries of devices
 *   the store no longer holds (deleted while the agent was down) are deleted, the others written if they differ.
 * - A failed write (the site's JetStream unavailable) is retried after `retryMs`; nothing is lost, the newest value
 *   wins because each write reads the store at that moment.
 * - The bucket is made with the first device: a node without devices (most, and every hollow node of make bench)
 *   keeps no stream for it.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { MAX_PAYLOAD_BYTES, deviceBoard, edge, encode, parseDeviceKey } from '@edgefarm/proto';
import type { Logger } from 'pino';

/** What the board reads: the desired store's devices. */
export interface DeviceSource {
  device(key: string): edge.EdgeDevice | undefined;
  deviceKeys(): string[];
}

export interface DeviceBoardDeps {
  nc: NatsConnection;
  /** The node's wire id: the bucket's name. */
  wireId: string;
  devices: DeviceSource;
  log: Logger;
  /** Delay before a failed write is tried again (default 2 s). */
  retryMs?: number;
}

export class DeviceBoard {
  private kv?: KV;
  /** The board entry each device key was last written under. */
  private readonly written = new Map<string, string>();
  private readonly queue = new Set<string>();
  private draining?: Promise<void>;
  private retry?: NodeJS.Timeout;
  private stopped = false;
  /** Writes and deletes done (tests, metrics). */
  readonly stats = { puts: 0, deletes: 0, failures: 0 };

  constructor(private readonly deps: DeviceBoardDeps) {}

  get bucket(): string {
    return deviceBoard.bucket(this.deps.wireId);
  }

  /** The bucket: made (or opened as it is) when `create`, else only if it exists. One value per key, on disk. */
  private async bucketKv(create: boolean): Promise<KV | undefined> {
    if (this.kv) return this.kv;
    if (!create) {
      const jsm = await jetstreamManager(this.deps.nc);
      const exists = await jsm.streams.info(`KV_${this.bucket}`).then(
        () => true,
        (err: unknown) => {
          if (/stream not found/i.test((err as Error).message)) return false;
          throw err;
        },
      );
      if (!exists) return undefined;
    }
    this.kv = await new Kvm(this.deps.nc).create(this.bucket, {
      history: 1,
      storage: 'file',
      replicas: 1,
      maxValueSize: MAX_PAYLOAD_BYTES,
      description: 'EdgeFarm desired devices of this node, for the mappers at the site (docs/devices.md)',
    });
    return this.kv;
  }

  /** The desired store's device `key` changed (or was removed). */
  changed(key: string): void {
    if (this.stopped) return;
    this.queue.add(key);
    this.kick();
  }

  /** Makes the bucket hold exactly the store's devices (after the store synced). */
  async resync(): Promise<void> {
    const keys = this.deps.devices.deviceKeys();
    const kv = await this.bucketKv(keys.length > 0);
    if (!kv) return;
    const want = new Map<string, string>();
    for (const key of keys) {
      const d = this.deps.devices.device(key);
      if (d) want.set(deviceBoard.key(d.protocol, parseDeviceKey(key)), key);
    }
    const present = await kv.keys();
    for await (const entry of present) {
      if (want.has(entry)) continue;
      await kv.delete(entry);
      this.stats.deletes++;
      this.deps.log.info({ entry }, 'device board: removed the entry of a device no longer desired');
    }
    for (const key of want.values()) this.changed(key);
    await this.idle();
  }

  /** Resolves when every queued key is written. */
  async idle(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retry);
  }

  private kick(): void {
    if (this.draining || this.retry) return;
    this.draining = this.drain().finally(() => (this.draining = undefined));
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.size > 0) {
      const key = this.queue.values().next().value as string;
      this.queue.delete(key);
      try {
        await this.write(key);
      } catch (err) {
        this.stats.failures++;
        this.queue.add(key);
        this.deps.log.warn({ device: key, err: (err as Error).message }, 'device board: write failed; retrying');
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.kick();
        }, this.deps.retryMs ?? 2000);
        return;
      }
    }
  }

  private async write(key: string): Promise<void> {
    const device = this.deps.devices.device(key);
    const kv = await this.bucketKv(device !== undefined);
    if (!kv) return;
    const before = this.written.get(key);
    const entry = device ? deviceBoard.key(device.protocol, parseDeviceKey(key)) : undefined;
    if (before !== undefined && before !== entry) {
      await kv.delete(before);
      this.stats.deletes++;
      this.written.delete(key);
    }
    if (!device || !entry) return;
    const value = encode(edge.EdgeDeviceSchema, device);
    const current = await kv.get(entry);
    if (current && current.operation === 'PUT' && Buffer.from(current.value).equals(Buffer.from(value))) {
      this.written.set(key, entry);
      return;
    }
    await kv.put(entry, value);
    this.stats.puts++;
    this.written.set(key, entry);
    this.deps.log.debug({ device: key, entry, generation: device.generation }, 'device board: desired device');
  }
}
