/**
 * DesiredStore: the agent's cache of its node's desired pods and of the objects they use (ConfigMaps, Secrets, the
 * ServiceAccount tokens of a pod), fed message by message from the site stream (see informer.ts) and read by the
 * reconciler by key. It is the single owner of that state.
 *
 * Rules of apply():
 * - A tombstone (header KV-Operation DEL/PURGE) removes the pod or object.
 * - A spec older than the one held for the same pod UID (resourceVersion) is ignored, and so is a spec that would
 *   take back a deletion of the same UID. An object older than the one held (resourceVersion) is ignored.
 * - An undecodable message, or one whose subject does not belong to this node (its wire id), is logged with its
 *   subject and skipped; it never stops the stream.
 * - The node's NodeConfig is not desired state of a pod: apply() passes it by (the compaction check reads it from the
 *   site stream).
 * - Every change notifies the listener with a pod key; the listener is expected to queue the key, not act inline.
 *   A change of an object notifies the key of every desired pod that uses it (see refs.ts); a token object, the key
 *   of the pod it is named after.
 */
import {
  TOMBSTONE_OPERATIONS,
  allContainers,
  compareResourceVersions,
  decodeEdgeDevice,
  decodeEdgeObject,
  deviceKey,
  decodeEdgePodSpec,
  desiredSubjects,
  edge,
  encode,
  isDecodeError,
  isDnsLabel,
  isSubjectError,
  objectKey,
  parseDesiredSubject,
  parseDeviceKey,
  parseObjectKey,
  parsePodKey,
  podKeyString,
  podUsesObject,
  type ObjectKind,
  type PodKey,
} from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { ObjectSource } from '../runtime/env.js';

/** Read side of the desired state, what the reconciler and heartbeat see. */
export interface DesiredView extends ObjectSource {
  get(key: string): edge.EdgePodSpec | undefined;
  keys(): string[];
  readonly size: number;
  /** True once the initial state of the site stream has been read: only then may absence mean "delete". */
  readonly synced: boolean;
  /** Highest site-stream sequence applied (0 before the first message). */
  readonly appliedSequence: number;
  /**
   * Highest hub-stream sequence applied (from the Nats-Stream-Source header of the sourced messages; 0 before the
   * first): comparable with the sequence the provider published at, so the difference is the cloud-to-edge lag.
   */
  readonly appliedHubSequence: number;
  whenSynced(): Promise<void>;
}

export interface DesiredMessage {
  subject: string;
  /** Stream sequence in the site stream. */
  seq: number;
  /** Sequence in the hub stream the message was sourced from, when known. */
  hubSeq?: number;
  data: Uint8Array;
  /** Value of the KV-Operation header, if any. */
  operation?: string;
}

/** What apply() did; `key` is a pod key (`<ns>/<name>`) or an object key (`<kind>/<ns>/<name>`). */
export type ApplyOutcome =
  | { kind: 'upsert'; key: string }
  | { kind: 'delete'; key: string }
  | { kind: 'unchanged'; key: string }
  | { kind: 'stale'; key: string; reason: string }
  | { kind: 'node-config' }
  | { kind: 'invalid'; error: Error };

// Names end up in CRI names, log paths and cgroup paths: accept only what Kubernetes itself accepts.
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const UID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

/** Why a spec's identity is unusable at the edge, or '' when it is fine. */
export function unsafeIdentity(spec: edge.EdgePodSpec): string {
  if (!isDnsLabel(spec.namespace)) return `namespace "${spec.namespace}" is not a DNS label`;
  if (!DNS_SUBDOMAIN.test(spec.name) || spec.name.length > 253) return `pod name "${spec.name}" is not a DNS subdomain`;
  if (!UID.test(spec.uid)) return `uid "${spec.uid}" has unexpected characters`;
  const names = new Set<string>();
  for (const c of allContainers(spec)) {
    if (!isDnsLabel(c.name)) return `container name "${c.name}" is not a DNS label`;
    if (names.has(c.name)) return `container name "${c.name}" is used twice`;
    names.add(c.name);
  }
  const volumes = new Set<string>();
  for (const v of spec.volumes) {
    // Volume names are directory names under the pod's volume directory.
    if (!isDnsLabel(v.name)) return `volume name "${v.name}" is not a DNS label`;
    if (volumes.has(v.name)) return `volume name "${v.name}" is used twice`;
    volumes.add(v.name);
  }
  return '';
}

/** The state of a {@link DesiredStore} at one applied sequence (see snapshot.ts for its file form). */
export interface DesiredSnapshot {
  seq: number;
  hubSeq: number;
  pods: { key: string; seq: number; spec: edge.EdgePodSpec }[];
  objects: { key: string; seq: number; object: edge.EdgeObject }[];
  devices: { key: string; seq: number; device: edge.EdgeDevice }[];
}

export class DesiredStore implements DesiredView {
  private readonly pods = new Map<string, edge.EdgePodSpec>();
  private readonly objects = new Map<string, edge.EdgeObject>();
  /** Desired devices by {@link deviceKey} (docs/decisions/0012-devices.md). */
  private readonly devices = new Map<string, edge.EdgeDevice>();
  /** Site-stream sequence of the message each held pod or object came from (bounds a purge of it, see forget()). */
  private readonly seqs = new Map<string, number>();
  private seq = 0;
  private hubSeq = 0;
  private isSynced = false;
  private syncedWaiters: (() => void)[] = [];

  /**
   * `wireId`: the node's wire id, the node named in its desired subjects. `onChange` gets the key of a pod whose
   * desired state changed, `onDevice` the {@link deviceKey} of a device whose did.
   */
  constructor(
    private readonly wireId: string,
    private readonly log: Logger,
    private readonly onChange: (key: string) => void,
    private readonly onDevice: (key: string) => void = () => undefined,
  ) {}

  get(key: string): edge.EdgePodSpec | undefined {
    return this.pods.get(key);
  }
  keys(): string[] {
    return [...this.pods.keys()];
  }
  get size(): number {
    return this.pods.size;
  }
  object(kind: ObjectKind, namespace: string, name: string): edge.EdgeObject | undefined {
    return this.objects.get(objectKey(kind, { namespace, name }));
  }
  /** Number of delivered objects held. */
  get objectCount(): number {
    return this.objects.size;
  }
  device(key: string): edge.EdgeDevice | undefined {
    return this.devices.get(key);
  }
  deviceKeys(): string[] {
    return [...this.devices.keys()];
  }
  get synced(): boolean {
    return this.isSynced;
  }
  get appliedSequence(): number {
    return this.seq;
  }
  get appliedHubSequence(): number {
    return this.hubSeq;
  }

  whenSynced(): Promise<void> {
    if (this.isSynced) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  markSynced(): void {
    if (this.isSynced) return;
    this.isSynced = true;
    this.log.info({ pods: this.pods.size, appliedSequence: this.seq }, 'desired state synced');
    const waiters = this.syncedWaiters;
    this.syncedWaiters = [];
    for (const w of waiters) w();
  }

  apply(msg: DesiredMessage): ApplyOutcome {
    if (msg.seq > this.seq) this.seq = msg.seq;
    if (msg.hubSeq !== undefined && msg.hubSeq > this.hubSeq) this.hubSeq = msg.hubSeq;
    let key: string;
    try {
      const parsed = parseDesiredSubject(msg.subject);
      if (parsed.node !== this.wireId) throw new RangeError(`subject of node "${parsed.node}", not "${this.wireId}"`);
      if (parsed.kind === 'node') return { kind: 'node-config' };
      if (parsed.kind === 'device') return this.applyDevice(parsed.key, msg);
      if (parsed.kind !== 'pod') return this.applyObject(parsed.kind, parsed.key, msg);
      key = podKeyString(parsed.key);
    } catch (err) {
      return this.invalid(msg, err as Error);
    }

    if (msg.operation && TOMBSTONE_OPERATIONS.includes(msg.operation)) {
      const had = this.pods.delete(key);
      this.seqs.delete(key);
      this.log.debug({ key, seq: msg.seq, had }, 'desired pod tombstone');
      this.onChange(key);
      return { kind: 'delete', key };
    }

    let spec: edge.EdgePodSpec;
    try {
      spec = decodeEdgePodSpec(msg.data, msg.subject);
    } catch (err) {
      return this.invalid(msg, err as Error);
    }
    if (podKeyString(spec) !== key) {
      return this.invalid(msg, new RangeError(`payload names pod ${podKeyString(spec)}, subject names ${key}`));
    }
    const unsafe = unsafeIdentity(spec);
    if (unsafe) return this.invalid(msg, new RangeError(unsafe));

    const held = this.pods.get(key);
    if (held && held.uid === spec.uid) {
      const cmp = compareResourceVersions(spec.resourceVersion, held.resourceVersion);
      if (cmp < 0) return this.stale(key, msg, `resourceVersion ${spec.resourceVersion} older than ${held.resourceVersion}`);
      if (held.deleting && !spec.deleting) return this.stale(key, msg, 'would take back a deletion');
      if (cmp === 0 && held.deleting === spec.deleting) return { kind: 'unchanged', key };
    }
    this.pods.set(key, spec);
    this.seqs.set(key, msg.seq);
    this.log.debug({ key, uid: spec.uid, resourceVersion: spec.resourceVersion, deleting: spec.deleting, seq: msg.seq }, 'desired pod');
    this.onChange(key);
    return { kind: 'upsert', key };
  }

  private applyObject(kind: ObjectKind, subjectKey: PodKey, msg: DesiredMessage): ApplyOutcome {
    const key = objectKey(kind, subjectKey);
    if (msg.operation && TOMBSTONE_OPERATIONS.includes(msg.operation)) {
      const had = this.objects.delete(key);
      this.seqs.delete(key);
      this.log.debug({ object: key, seq: msg.seq, had }, 'desired object tombstone');
      if (had) this.notifyUsers(kind, subjectKey);
      return { kind: 'delete', key };
    }
    let obj: edge.EdgeObject;
    try {
      obj = decodeEdgeObject(msg.data, msg.subject);
    } catch (err) {
      return this.invalid(msg, err as Error);
    }
    if (obj.namespace !== subjectKey.namespace || obj.name !== subjectKey.name) {
      return this.invalid(
        msg,
        new RangeError(`payload names ${kind} ${obj.namespace}/${obj.name}, subject names ${podKeyString(subjectKey)}`),
      );
    }
    const held = this.objects.get(key);
    if (held) {
      const cmp = compareResourceVersions(obj.resourceVersion, held.resourceVersion);
      if (cmp < 0) {
        this.log.info(
          { object: key, seq: msg.seq, resourceVersion: obj.resourceVersion, held: held.resourceVersion },
          'ignoring stale desired object',
        );
        return { kind: 'stale', key, reason: `resourceVersion ${obj.resourceVersion} older than ${held.resourceVersion}` };
      }
      if (cmp === 0) return { kind: 'unchanged', key };
    }
    this.objects.set(key, obj);
    this.seqs.set(key, msg.seq);
    this.log.debug(
      { object: key, resourceVersion: obj.resourceVersion, keys: Object.keys(obj.data).length, seq: msg.seq },
      'desired object',
    );
    this.notifyUsers(kind, subjectKey);
    return { kind: 'upsert', key };
  }

  /**
   * A desired device: the newest generation of a device of one UID wins (a stale write never does); the same
   * generation with other content (a changed model) replaces it; a device made anew (another UID) replaces the old one.
   */
  private applyDevice(subjectKey: PodKey, msg: DesiredMessage): ApplyOutcome {
    const key = deviceKey(subjectKey);
    if (msg.operation && TOMBSTONE_OPERATIONS.includes(msg.operation)) {
      const had = this.devices.delete(key);
      this.seqs.delete(key);
      this.log.debug({ device: key, seq: msg.seq, had }, 'desired device tombstone');
      if (had) this.onDevice(key);
      return { kind: 'delete', key };
    }
    let device: edge.EdgeDevice;
    try {
      device = decodeEdgeDevice(msg.data, msg.subject);
    } catch (err) {
      return this.invalid(msg, err as Error);
    }
    if (device.namespace !== subjectKey.namespace || device.name !== subjectKey.name) {
      return this.invalid(
        msg,
        new RangeError(`payload names device ${device.namespace}/${device.name}, subject names ${podKeyString(subjectKey)}`),
      );
    }
    const held = this.devices.get(key);
    if (held && held.uid === device.uid) {
      if (device.generation < held.generation) {
        this.log.info({ device: key, seq: msg.seq, generation: device.generation, held: held.generation }, 'ignoring stale desired device');
        return { kind: 'stale', key, reason: `generation ${device.generation} older than ${held.generation}` };
      }
      // The same generation with other content: its model changed (which the Device's generation does not count);
      // the stream's order makes it the newer one.
      if (
        device.generation === held.generation &&
        Buffer.from(encode(edge.EdgeDeviceSchema, held)).equals(Buffer.from(encode(edge.EdgeDeviceSchema, device)))
      )
        return { kind: 'unchanged', key };
    }
    this.devices.set(key, device);
    this.seqs.set(key, msg.seq);
    this.log.debug({ device: key, uid: device.uid, generation: device.generation, seq: msg.seq }, 'desired device');
    this.onDevice(key);
    return { kind: 'upsert', key };
  }

  /**
   * What the store holds, for a snapshot: every pod and object with the site-stream sequence it came from, and the
   * applied sequences. restore() of it gives back the same store.
   */
  snapshot(): DesiredSnapshot {
    return {
      seq: this.seq,
      hubSeq: this.hubSeq,
      pods: [...this.pods].map(([key, spec]) => ({ key, seq: this.seqs.get(key) ?? 0, spec })),
      objects: [...this.objects].map(([key, object]) => ({ key, seq: this.seqs.get(key) ?? 0, object })),
      devices: [...this.devices].map(([key, device]) => ({ key, seq: this.seqs.get(key) ?? 0, device })),
    };
  }

  /** Loads a snapshot into an empty store (before the first apply); notifies every pod key. */
  restore(snap: DesiredSnapshot): void {
    if (this.seq !== 0 || this.pods.size > 0 || this.objects.size > 0 || this.devices.size > 0)
      throw new Error('restore() needs an empty store');
    for (const d of snap.devices) {
      this.devices.set(d.key, d.device);
      this.seqs.set(d.key, d.seq);
    }
    for (const o of snap.objects) {
      this.objects.set(o.key, o.object);
      this.seqs.set(o.key, o.seq);
    }
    for (const p of snap.pods) {
      this.pods.set(p.key, p.spec);
      this.seqs.set(p.key, p.seq);
    }
    this.seq = snap.seq;
    this.hubSeq = snap.hubSeq;
    for (const p of snap.pods) this.onChange(p.key);
    for (const d of snap.devices) this.onDevice(d.key);
  }

  /**
   * Every held pod and object as its desired-state subject with the site sequence it came from (what the compaction
   * check compares with the hub's subjects).
   */
  heldSubjects(): { key: string; subject: string; seq: number }[] {
    const out: { key: string; subject: string; seq: number }[] = [];
    for (const key of this.pods.keys()) {
      out.push({ key, subject: desiredSubjects.pod(this.wireId, parsePodKey(key)), seq: this.seqs.get(key) ?? 0 });
    }
    for (const key of this.objects.keys()) {
      const { kind, key: objKey } = parseObjectKey(key);
      out.push({ key, subject: desiredSubjects.of(this.wireId, kind, objKey), seq: this.seqs.get(key) ?? 0 });
    }
    for (const key of this.devices.keys()) {
      out.push({ key, subject: desiredSubjects.device(this.wireId, parseDeviceKey(key)), seq: this.seqs.get(key) ?? 0 });
    }
    return out;
  }

  /**
   * Removes a pod or object whose delete the store never saw because its tombstone was compacted away (found by the
   * compaction check): the same effect as its tombstone.
   */
  forget(key: string): void {
    this.seqs.delete(key);
    if (this.pods.delete(key)) {
      this.onChange(key);
      return;
    }
    if (this.devices.delete(key)) {
      this.onDevice(key);
      return;
    }
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    this.notifyUsers(parseObjectKey(key).kind, { namespace: obj.namespace, name: obj.name });
  }

  /** Notifies the key of every desired pod that uses the object (a token object: the pod it is named after). */
  private notifyUsers(kind: ObjectKind, key: PodKey): void {
    if (kind === 'token') {
      this.onChange(podKeyString(key));
      return;
    }
    for (const [podKey, spec] of this.pods) {
      if (podUsesObject(spec, kind, key)) this.onChange(podKey);
    }
  }

  private stale(key: string, msg: DesiredMessage, reason: string): ApplyOutcome {
    this.log.info({ key, seq: msg.seq, reason }, 'ignoring stale desired pod');
    return { kind: 'stale', key, reason };
  }

  private invalid(msg: DesiredMessage, error: Error): ApplyOutcome {
    const kind = isDecodeError(error) ? 'undecodable' : isSubjectError(error) ? 'bad subject' : 'inconsistent';
    this.log.error({ subject: msg.subject, seq: msg.seq, err: error }, `skipping ${kind} desired-state message`);
    return { kind: 'invalid', error };
  }
}
