/**
 * DeviceController: the device publisher (docs/decisions/0012-devices.md, phase 1: the desired path). For every
 * Device whose spec.nodeName is a node this replica serves, keeps an EdgeDevice (the device with its DeviceModel's
 * properties resolved, desired.ts) on the hub at ef.desired.<node>.device.<ns>.<name>, through the same publisher as
 * the pods (DesiredSequences, so the node's desired sequence counts it), and a tombstone once the device is deleted,
 * moves to another node, or its model is gone. Every EdgeDevice is encoded and decoded with the agent's decoder
 * before it is published: what a site would refuse is never sent.
 *
 * Level-triggered, like the pod controller: the queue carries device keys (`ns/name`); `sync` re-reads the Device and
 * its model from the informer caches, builds the EdgeDevice, and publishes it only when it differs from what is on
 * the hub (the fingerprint is the EdgeDevice's encoding, so it covers the generation, the UID and whatever of the
 * model reaches the site: a model change republishes exactly the devices it changes). A model change or deletion
 * queues every device of that model.
 *
 * What the CRD schema cannot judge (a missing model, a property the model lacks, a desired value on a ReadOnly
 * property, one not of the property's type or out of its bounds) is a Warning Event on the Device, recorded once per
 * device and problem while the problem lasts; the bad part is not published.
 *
 * Membership: taking a node over seeds what the hub holds for it (its `device` records), so nothing still wanted is
 * published again and a record whose Device is gone is tombstoned; a node handed over is forgotten without a
 * tombstone (the new owner's now); a deleted EdgeNode's devices are tombstoned; a new wire id publishes everything
 * again under it.
 */
import { createHash } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { decodeEdgeDevice, edge, encode, parsePodKey, podKeyString } from '@edgefarm/proto';
import { WorkQueue } from '@edgefarm/workqueue';
import type { KubeClient, Watcher } from '../kube/client.js';
import type { DesiredPublisher } from '../bus/hub.js';
import type { MembershipListener, ReleaseReason, Rekey, ServedNodes, Takeover } from '../membership/membership.js';
import { desiredDevice, type DeviceProblem } from './desired.js';
import { DEVICES_GROUP, DEVICES_VERSION, type Device, type DeviceModel } from './types.js';

export interface DeviceControllerDeps {
  /** Warning Events on Devices. */
  kube: Pick<KubeClient, 'createEvent'>;
  /** Where desired devices go (the hub, through DesiredSequences). */
  bus: Pick<DesiredPublisher, 'publishDevice' | 'tombstoneDevice'> & {
    /** Drops a device's last twin on the hub once it is off the node (EF_STATUS keeps it otherwise). */
    forgetDeviceStatus(node: string, uid: string): Promise<void>;
  };
  /** Every Device; started and stopped here. */
  devices: Watcher<Device>;
  /** Every DeviceModel; started and stopped here. */
  models: Watcher<DeviceModel>;
  served: ServedNodes;
  log: Logger;
  now?: () => Date;
  /** Devices synced at once (default 4). */
  workers?: number;
}

/** What is on the hub for a device on one node: the UID and the fingerprint of the EdgeDevice published. */
interface OnHub {
  uid: string;
  fingerprint: string;
}

const keyOf = (o: { metadata?: { namespace?: string; name?: string } }) =>
  podKeyString({ namespace: o.metadata!.namespace!, name: o.metadata!.name! });

function fingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('base64');
}

export class DeviceController implements MembershipListener {
  private readonly queue: WorkQueue;
  private readonly now: () => Date;
  /** Per device key, per node: what is on the hub (seeded at takeover, written after every publish, only here). */
  private readonly published = new Map<string, Map<string, OnHub>>();
  /** Per device key: the Device's UID, its node, and the problems recorded as Events (kept while they last). */
  private readonly warned = new Map<string, { uid: string; node: string; problems: Set<string> }>();
  /** Per node, how often its wire id changed: a publish begun before a change is not recorded as on the hub. */
  private readonly rekeys = new Map<string, number>();

  constructor(private readonly deps: DeviceControllerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.queue = new WorkQueue((key) => this.sync(key), {
      workers: deps.workers ?? 4,
      onError: (key, err, attempt) =>
        deps.log.warn({ device: key, attempt, err: (err as Error).message }, 'device sync failed; will retry'),
    });
  }

  /** Starts the DeviceModel and Device watches (models first, so the first devices find theirs). */
  async start(): Promise<void> {
    await this.deps.models.start({
      changed: (m) => this.modelChanged(m),
      deleted: (m) => this.modelChanged(m),
      error: (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'device model watch failed; restarting'),
    });
    await this.deps.devices.start({
      changed: (d) => this.queue.add(keyOf(d)),
      deleted: (d) => this.queue.add(keyOf(d)),
      error: (err) => this.deps.log.warn({ err: (err as Error)?.message }, 'device watch failed; restarting'),
    });
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await this.deps.devices.stop();
    await this.deps.models.stop();
  }

  /** Resolves once no sync is queued or running (tests). */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  /** Membership: starts serving nodes, with the hub's desired state for them as read back. */
  taking({ nodes, desired }: Takeover): void {
    const added = new Set(nodes.map((n) => n.name));
    for (const r of desired) {
      if (r.kind !== 'device' || !r.device || !added.has(r.node)) continue;
      this.onHub(podKeyString(r.key)).set(r.node, { uid: r.device.uid, fingerprint: fingerprint(encode(edge.EdgeDeviceSchema, r.device)) });
    }
    // Records on the hub whose Device is gone (deleted while nobody served the node) get tombstones; the rest are
    // compared with what the API has now.
    for (const [key, on] of this.published) for (const n of on.keys()) if (added.has(n)) this.queue.add(key);
    for (const d of this.deps.devices.list()) if (added.has(d.spec?.nodeName ?? '')) this.queue.add(keyOf(d));
  }

  /**
   * Membership: the node is no longer served. Handed over: forgotten without a tombstone (the new owner takes its
   * devices over from the hub). Deleted (its EdgeNode is gone): every device published to it gets a tombstone.
   */
  released(node: string, reason: ReleaseReason): void {
    if (reason === 'deleted') {
      for (const [key, on] of this.published) if (on.has(node)) this.queue.add(key);
      return;
    }
    for (const [key, on] of this.published) {
      on.delete(node);
      if (on.size === 0) this.published.delete(key);
    }
    for (const [key, w] of this.warned) if (w.node === node) this.warned.delete(key);
    this.rekeys.delete(node);
  }

  /** Membership: the node's wire id changed (the bus names it by the new one already): publish its devices again. */
  rekeyed(node: string, change: Rekey): void {
    this.rekeys.set(node, (this.rekeys.get(node) ?? 0) + 1);
    for (const [key, on] of this.published) {
      on.delete(node);
      if (on.size === 0) this.published.delete(key);
    }
    this.deps.log.info({ node, from: change.from, to: change.to }, 'publishing the devices again under the new wire id');
    for (const d of this.deps.devices.list()) if (d.spec?.nodeName === node) this.queue.add(keyOf(d));
  }

  /** A DeviceModel changed or is gone: every device of it is synced (those whose EdgeDevice changes are published). */
  private modelChanged(m: DeviceModel): void {
    const { namespace, name } = m.metadata ?? {};
    for (const d of this.deps.devices.list())
      if (d.metadata?.namespace === namespace && d.spec?.deviceModelRef?.name === name) this.queue.add(keyOf(d));
  }

  private onHub(key: string): Map<string, OnHub> {
    let on = this.published.get(key);
    if (!on) this.published.set(key, (on = new Map<string, OnHub>()));
    return on;
  }

  /** Tombstones the device on every node it is on but `keep`. */
  private async tombstone(key: string, keep?: string): Promise<void> {
    const on = this.published.get(key);
    if (!on) return;
    for (const node of [...on.keys()]) {
      if (node === keep) continue;
      await this.deps.bus.tombstoneDevice(node, parsePodKey(key));
      await this.deps.bus.forgetDeviceStatus(node, on.get(node)!.uid);
      on.delete(node);
      this.deps.log.info({ device: key, node }, 'device no longer desired on the node: tombstone published');
    }
    if (on.size === 0) this.published.delete(key);
  }

  private async sync(key: string): Promise<void> {
    const { namespace, name } = parsePodKey(key);
    const d = this.deps.devices.get(namespace, name);
    const node = d?.spec?.nodeName;
    if (!d || !node || !this.deps.served.serves(node)) {
      this.warned.delete(key); // gone, or another replica's (or nobody's) now
      await this.tombstone(key);
      return;
    }
    // Moved from another node this replica serves: off that one first.
    await this.tombstone(key, node);

    const model = this.deps.models.get(namespace, d.spec!.deviceModelRef?.name ?? '');
    const built = desiredDevice(d, model);
    let device = built.device;
    const problems = [...built.problems];
    let bytes: Uint8Array | undefined;
    if (device) {
      try {
        bytes = encode(edge.EdgeDeviceSchema, device);
        device = decodeEdgeDevice(bytes);
      } catch (err) {
        problems.push({ reason: 'InvalidDevice', message: `not sent to node ${node}: ${(err as Error).message}` });
        device = undefined;
      }
    }
    await this.warn(d, node, problems);

    if (!device || !bytes) {
      await this.tombstone(key);
      return;
    }
    const fp = fingerprint(bytes);
    const had = this.published.get(key)?.get(node);
    if (had?.fingerprint === fp && had.uid === device.uid) return;
    const rekeys = this.rekeys.get(node);
    const seq = await this.deps.bus.publishDevice(node, device);
    if (this.rekeys.get(node) !== rekeys) {
      this.queue.add(key); // published under the wire id before the change: again under the new one
      return;
    }
    this.onHub(key).set(node, { uid: device.uid, fingerprint: fp });
    this.deps.log.debug({ device: key, node, seq, generation: String(device.generation) }, 'desired device published');
  }

  /**
   * Records a Warning Event on the Device for each problem not recorded already for this Device (its UID); problems
   * no longer found are forgotten, so one that comes back is recorded again. A failed Event is logged and tried again
   * at the next sync.
   */
  private async warn(d: Device, node: string, problems: readonly DeviceProblem[]): Promise<void> {
    const key = keyOf(d);
    const uid = d.metadata!.uid ?? '';
    let w = this.warned.get(key);
    if (!w || w.uid !== uid) this.warned.set(key, (w = { uid, node, problems: new Set() }));
    w.node = node;
    const now = new Set(problems.map((p) => `${p.reason}: ${p.message}`));
    for (const p of w.problems) if (!now.has(p)) w.problems.delete(p);
    for (const p of problems) {
      const id = `${p.reason}: ${p.message}`;
      if (w.problems.has(id)) continue;
      try {
        await this.deps.kube.createEvent(deviceEvent(d, 'Warning', p.reason, p.message, this.now()));
        w.problems.add(id);
        this.deps.log.warn({ device: key, node, reason: p.reason }, p.message);
      } catch (err) {
        this.deps.log.warn({ device: key, reason: p.reason, err: (err as Error).message }, 'recording a device Event failed');
      }
    }
  }
}

export function deviceEvent(d: Device, type: 'Normal' | 'Warning', reason: string, message: string, now: Date): CoreV1Event {
  const meta = d.metadata!;
  return {
    metadata: { generateName: `${meta.name}.`, namespace: meta.namespace },
    involvedObject: {
      kind: 'Device',
      apiVersion: `${DEVICES_GROUP}/${DEVICES_VERSION}`,
      namespace: meta.namespace,
      name: meta.name,
      uid: meta.uid,
      resourceVersion: meta.resourceVersion,
    },
    type,
    reason,
    message,
    source: { component: 'edgefarm-provider', host: d.spec?.nodeName },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}
