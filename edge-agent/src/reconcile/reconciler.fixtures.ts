/**
 * Fixtures of the Reconciler's unit tests (reconciler.test.ts, reconciler-grace.test.ts). Test code only (not built
 * into dist).
 */
import { decodePodStatusReport, desiredSubjects, edge, encode, podKeyString } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { DesiredStore } from '../desired/store.js';
import { FakeEventSink } from '../events/recorder.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import { StatusReporter } from '../status/reporter.js';
import { ManualClock, silentLogger } from '@edgefarm/testing';
import { Reconciler, type ReconcilerOptions } from './reconciler.js';

const NODE = 'n1';

/** Lets promises and timers run until `cond` holds (fails after `ms` of real time). */
export async function until(what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A reconciler over the in-memory runtime (recording), a real desired store and status reporter, an outbox fake. */
export function setup(options: Partial<ReconcilerOptions> = {}) {
  const clock = new ManualClock();
  const runtime = new MemoryPodRuntime({ clock, recordCalls: true });
  const outbox = new FakeOutbox();
  const log = silentLogger();
  let reconciler: Reconciler | undefined;
  const store = new DesiredStore(NODE, log, (k) => reconciler?.enqueue(k));
  const status = new StatusReporter({ wireId: NODE, outbox, clock, log });
  const events = new FakeEventSink();
  reconciler = new Reconciler(
    { runtime, desired: store, status, clock, log, events },
    { nodeIp: '192.168.0.9', restartBackoffBaseMs: 1000, ...options },
  );
  let seq = 0;
  const put = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: encode(edge.EdgePodSpecSchema, spec) });
  const tombstone = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: new Uint8Array(), operation: 'DEL' });
  const reports = () => outbox.published.map((p) => decodePodStatusReport(p.data));
  const last = () => reports().at(-1)!;
  return { clock, runtime, outbox, store, status, reconciler, put, tombstone, reports, last, events };
}
export const keyOf = (p: edge.EdgePodSpec): string => podKeyString(p);
