/**
 * StatusReporter: owns what has been reported per pod UID. After each sync of a key it builds the reports for every
 * UID the key touches (the desired one, and earlier ones still present or just gone), and writes a report to the
 * outbox only when it differs from the last one written (observed_at and generation aside).
 *
 * Generations are per-pod and monotonic across agent restarts without stored state: max(last + 1, now_ms * 1000).
 * A failed write changes nothing but the generation counter, so the next sync writes again.
 */
import { fromBinary } from '@bufbuild/protobuf';
import { encode, edge, outboxSubjects, podKeyString, type PodKey } from '@edgefarm/proto';
import type { Logger } from 'pino';
import type { OutboxWriter } from '../bus/outbox.js';
import type { ObservedPod } from '../runtime/types.js';
import type { Clock } from '../util/time.js';
import { buildPodStatus, buildRemovedStatus, type PodRef, type StatusContext } from './build.js';

interface Tracked {
  key: string;
  ref: PodRef;
  resourceVersion: string;
  generation: bigint;
  /** Normalized bytes of the last report written (generation and observed_at zeroed). */
  last?: Uint8Array;
  lastPhase: edge.PodPhase;
  removed: boolean;
}

export interface StatusReporterDeps {
  /** The node's wire id (its outbox subjects name it). */
  wireId: string;
  outbox: OutboxWriter;
  clock: Clock;
  log: Logger;
}

function normalized(report: edge.PodStatusReport): Uint8Array {
  const generation = report.generation;
  const observedAtMs = report.observedAtMs;
  report.generation = 0n;
  report.observedAtMs = 0n;
  const bytes = encode(edge.PodStatusReportSchema, report);
  report.generation = generation;
  report.observedAtMs = observedAtMs;
  return bytes;
}

export class StatusReporter {
  private readonly pods = new Map<string, Tracked>();

  constructor(private readonly deps: StatusReporterDeps) {}

  /** Keys with a UID whose final report is still owed (so a resync retries it even when nothing else is left). */
  pendingKeys(): string[] {
    return [...new Set([...this.pods.values()].filter((t) => !t.removed).map((t) => t.key))];
  }

  /** The last report written for a UID (normalized), for tests and diagnostics. */
  lastWritten(uid: string): edge.PodStatusReport | undefined {
    const last = this.pods.get(uid)?.last;
    return last ? fromBinary(edge.PodStatusReportSchema, last) : undefined;
  }

  /** Writes the key's reports that changed; false when one could not be written (the next sync of the key retries it). */
  async sync(key: PodKey, desired: edge.EdgePodSpec | undefined, observed: ObservedPod, ctx: StatusContext): Promise<boolean> {
    const k = podKeyString(key);
    const present = new Set(observed.sandboxes.map((s) => s.uid));
    for (const s of observed.sandboxes) {
      if (!this.pods.has(s.uid)) this.track(k, { uid: s.uid, namespace: s.namespace, name: s.name }, s.resourceVersion);
    }
    const reports: edge.PodStatusReport[] = [];
    if (desired) {
      const t = this.pods.get(desired.uid) ?? this.track(k, desired, desired.resourceVersion);
      t.resourceVersion = desired.resourceVersion;
      if (!desired.deleting || present.has(desired.uid)) reports.push(buildPodStatus(desired, observed, ctx));
      else reports.push(buildRemovedStatus(desired, desired.resourceVersion, t.lastPhase));
    }
    for (const [uid, t] of this.pods) {
      if (t.key !== k || uid === desired?.uid || present.has(uid)) continue;
      if (t.removed) this.pods.delete(uid);
      else reports.push(buildRemovedStatus(t.ref, t.resourceVersion, t.lastPhase));
    }
    let written = true;
    for (const r of reports) if (!(await this.write(k, r, desired?.uid))) written = false;
    return written;
  }

  private track(key: string, ref: PodRef, resourceVersion: string): Tracked {
    const t: Tracked = {
      key,
      ref: { uid: ref.uid, namespace: ref.namespace, name: ref.name },
      resourceVersion,
      generation: 0n,
      lastPhase: edge.PodPhase.UNSPECIFIED,
      removed: false,
    };
    this.pods.set(ref.uid, t);
    return t;
  }

  private async write(key: string, report: edge.PodStatusReport, desiredUid: string | undefined): Promise<boolean> {
    const t = this.pods.get(report.uid) ?? this.track(key, report, report.observedResourceVersion);
    const bytes = normalized(report);
    if (t.last && Buffer.compare(t.last, bytes) === 0) return true;
    const now = this.deps.clock.now();
    const byClock = BigInt(Math.trunc(now)) * 1000n;
    t.generation = t.generation + 1n > byClock ? t.generation + 1n : byClock;
    report.generation = t.generation;
    report.observedAtMs = BigInt(Math.trunc(now));
    const subject = outboxSubjects.of(this.deps.wireId, { kind: 'pod', uid: report.uid });
    try {
      await this.deps.outbox.publish(subject, encode(edge.PodStatusReportSchema, report));
    } catch (err) {
      this.deps.log.warn({ err, key, uid: report.uid }, 'could not write pod status to the outbox; retrying on the next sync');
      return false;
    }
    this.deps.log.debug(
      { key, uid: report.uid, phase: edge.PodPhase[report.phase], removed: report.removed, generation: String(t.generation) },
      'pod status written',
    );
    t.last = bytes;
    t.lastPhase = report.phase === edge.PodPhase.UNSPECIFIED ? t.lastPhase : report.phase;
    t.removed = report.removed;
    if (report.removed && report.uid !== desiredUid) this.pods.delete(report.uid);
    return true;
  }
}
