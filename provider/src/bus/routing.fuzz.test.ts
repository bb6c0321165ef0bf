// Fuzzing the provider's ingest path from the hub: statusMessage (PodStatusReport, NodeHeartbeat, metrics text,
// DeviceStatusReport) and eventMessage (EdgeEvent) over mutated encodings under valid and hostile subjects. Invariants: nothing is thrown
// (a bad message comes back `dropped`), no input hangs, a pod report is handed on only under its own UID's subject
// and an Event only under its own node's, for a wire id some EdgeNode has; valid messages round-trip.
import { create, equals, toBinary } from '@bufbuild/protobuf';
import { edge, eventSubjects, parseStatusSubject, statusSubjects } from '@edgefarm/proto';
import { fc, fuzzDecoder, fuzzProperty, hostileString, mutatedBytes } from '@edgefarm/testing/fuzz';
import type { WireIds } from '../membership/identities.js';
import { eventMessage, statusMessage } from './routing.js';

/** Two EdgeNodes, known by wire ids other than their names (as once joined). */
const WIRE_IDS: WireIds = {
  wireId: (node) => ({ 'edge-1': 'UAAA1', 'edge-2': 'UAAA2' })[node] ?? node,
  nodeOf: (wireId) => ({ UAAA1: 'edge-1', UAAA2: 'edge-2' })[wireId],
};

const wireId = fc.oneof(fc.constantFrom('UAAA1', 'UAAA2', 'UNKNOWN', 'edge-1'), fc.string({ minLength: 1, maxLength: 12 }));
const uid = fc.oneof(fc.constantFrom('uid-1', 'uid-2'), fc.uuid(), hostileString()).filter((u) => u.length > 0);
const text = fc.string({ maxLength: 40 });
const ms = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

const containerState = fc.oneof(
  fc.constant(undefined),
  fc.record({ startedAtMs: ms }).map((v) => create(edge.ContainerStateSchema, { state: { case: 'running', value: v } })),
  fc
    .record({ exitCode: fc.integer(), reason: text, message: text, startedAtMs: ms, finishedAtMs: ms })
    .map((v) => create(edge.ContainerStateSchema, { state: { case: 'terminated', value: v } })),
  fc.record({ reason: text, message: text }).map((v) => create(edge.ContainerStateSchema, { state: { case: 'waiting', value: v } })),
);
const container = fc
  .record({ name: text, image: text, ready: fc.boolean(), restartCount: fc.integer({ min: 0, max: 2 ** 31 - 1 }), state: containerState })
  .map((c) => create(edge.ContainerStatusSchema, c));

const report = fc
  .record({
    uid,
    namespace: text,
    name: text,
    generation: ms,
    phase: fc.integer({ min: 0, max: 6 }),
    reason: text,
    message: text,
    podIp: text,
    podIps: fc.array(text, { maxLength: 3 }),
    startTimeMs: ms,
    containerStatuses: fc.array(container, { maxLength: 3 }),
    removed: fc.boolean(),
    observedAtMs: ms,
  })
  .map((r) => create(edge.PodStatusReportSchema, r));

const heartbeat = fc
  .record({ nodeName: text, sentAtMs: ms, appliedSequence: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }) })
  .map((h) => create(edge.NodeHeartbeatSchema, h));

const event = fc
  .record({
    id: text,
    key: text,
    podUid: uid,
    podNamespace: text,
    podName: text,
    fieldPath: text,
    type: fc.integer({ min: 0, max: 3 }),
    reason: text,
    message: text,
    firstTimestampMs: ms,
    lastTimestampMs: ms,
    count: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    nodeName: fc.constantFrom('edge-1', 'edge-2', ''),
  })
  .map((e) => create(edge.EdgeEventSchema, e));

const twin = fc
  .record({
    uid,
    namespace: text,
    name: text,
    generation: ms,
    observedGeneration: ms,
    connected: fc.boolean(),
    message: text,
    lastSeenMs: ms,
    twins: fc.array(fc.record({ name: text, reported: text, reportedAtMs: ms }), { maxLength: 3 }),
  })
  .map((t) => create(edge.DeviceStatusReportSchema, t));

/** A status subject: a valid one of any kind, or hostile text behind the status prefix. */
const statusSubject = fc.oneof(
  fc.tuple(wireId, uid).map(([w, u]) => statusSubjects.of(w, { kind: 'pod', uid: u })),
  wireId.map((w) => statusSubjects.of(w, { kind: 'node' })),
  wireId.map((w) => statusSubjects.of(w, { kind: 'metrics' })),
  fc.tuple(wireId, uid).map(([w, u]) => statusSubjects.of(w, { kind: 'device', uid: u })),
  hostileString().map((s) => `ef.status.${s}`),
);
const statusPayload = mutatedBytes(
  fc.oneof(
    report.map((r) => toBinary(edge.PodStatusReportSchema, r)),
    heartbeat.map((h) => toBinary(edge.NodeHeartbeatSchema, h)),
    twin.map((t) => toBinary(edge.DeviceStatusReportSchema, t)),
  ),
);

describe('the ingest path from the hub', () => {
  it('statusMessage: any bytes under any subject are handed on or dropped, never thrown; a report only under its own UID', () => {
    const r = fuzzDecoder('provider statusMessage', {
      inputs: fc.tuple(statusSubject, statusPayload),
      decode: ([subject, data]) => statusMessage(subject, data, WIRE_IDS),
      check: ([subject], out) => {
        const msg = out as ReturnType<typeof statusMessage>;
        if (msg.kind === 'dropped') return msg.reason === 'malformed' || msg.reason === 'unknown-node';
        const parsed = parseStatusSubject(subject);
        if (WIRE_IDS.nodeOf(parsed.node) !== msg.node) return false;
        if (msg.kind === 'pod') return parsed.key.kind === 'pod' && parsed.key.uid === msg.report.uid;
        if (msg.kind === 'device') return parsed.key.kind === 'device' && parsed.key.uid === msg.report.uid;
        return parsed.key.kind === (msg.kind === 'heartbeat' ? 'node' : 'metrics');
      },
    });
    expect(r.failures).toBe(0);
  });

  it('eventMessage: any bytes under any subject are handed on or dropped, never thrown; an Event only under its own node', () => {
    const subject = fc.oneof(
      fc.tuple(wireId, text).map(([w, id]) => eventSubjects.of(w, id || 'x')),
      hostileString().map((s) => `ef.events.${s}`),
    );
    const r = fuzzDecoder('provider eventMessage', {
      inputs: fc.tuple(subject, mutatedBytes(event.map((e) => toBinary(edge.EdgeEventSchema, e)))),
      decode: ([s, data]) => eventMessage(s, data, WIRE_IDS),
      check: (_, out) => {
        const msg = out as ReturnType<typeof eventMessage>;
        if (msg.kind === 'dropped') return msg.reason === 'malformed' || msg.reason === 'unknown-node';
        return msg.event.nodeName === msg.node && (msg.node === 'edge-1' || msg.node === 'edge-2');
      },
    });
    expect(r.failures).toBe(0);
  });

  it('a valid report and Event of a known node round-trip unchanged', () => {
    const validReport = report.map((r) =>
      create(edge.PodStatusReportSchema, {
        ...r,
        namespace: r.namespace || 'ns',
        name: r.name || 'n',
        generation: r.generation > 0n ? r.generation : 1n,
      }),
    );
    const first = fc.bigInt({ min: 1n, max: 2n ** 62n });
    const validEvent = fc.tuple(event, first, fc.bigInt({ min: 0n, max: 2n ** 62n })).map(([e, f, d]) =>
      create(edge.EdgeEventSchema, {
        ...e,
        id: e.id || 'i',
        key: e.key || 'k',
        podNamespace: e.podNamespace || 'ns',
        podName: e.podName || 'n',
        reason: e.reason || 'R',
        type: e.type % 2 ? edge.EventType.NORMAL : edge.EventType.WARNING,
        count: Math.max(1, e.count),
        firstTimestampMs: f,
        lastTimestampMs: f + d,
      }),
    );
    const r = fuzzProperty('provider ingest round trip', [validReport, validEvent], (rep, ev) => {
      const s = statusMessage(
        statusSubjects.of('UAAA1', { kind: 'pod', uid: rep.uid }),
        toBinary(edge.PodStatusReportSchema, rep),
        WIRE_IDS,
      );
      if (s.kind !== 'pod' || s.node !== 'edge-1' || !equals(edge.PodStatusReportSchema, s.report, rep)) return false;
      const e = eventMessage(eventSubjects.of('UAAA2', 'e1'), toBinary(edge.EdgeEventSchema, { ...ev, nodeName: 'edge-2' }), WIRE_IDS);
      return e.kind === 'event' && e.node === 'edge-2' && equals(edge.EdgeEventSchema, e.event, { ...ev, nodeName: 'edge-2' });
    });
    expect(r.failures).toBe(0);
  });
});
