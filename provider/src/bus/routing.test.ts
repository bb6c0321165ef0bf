import { create, edge, encode, eventSubjects, statusSubjects } from '@edgefarm/proto';
import { silentLogger } from '@edgefarm/testing';
import { NodeIdentities } from '../membership/identities.js';
import { eventMessage, statusMessage } from './routing.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
const OLD = 'UBQ5SCOK7A6WL5ERGOBH6IXCQPLLHSSUDHXJ5PQGPM7AAJQ3NLRWUXYN';

/** edge-1 joined with KEY (after OLD), edge-2 never joined. */
function wireIds(): NodeIdentities {
  const ids = new NodeIdentities(silentLogger());
  ids.observe({ metadata: { name: 'edge-1' }, status: { connected: true, identity: { publicKey: OLD } } });
  ids.observe({ metadata: { name: 'edge-1' }, status: { connected: true, identity: { publicKey: KEY } } });
  ids.observe({ metadata: { name: 'edge-2' } });
  return ids;
}

const report = (uid: string) =>
  encode(edge.PodStatusReportSchema, create(edge.PodStatusReportSchema, { uid, namespace: 'default', name: 'p', generation: 1n }));
const heartbeat = (nodeName: string) => encode(edge.NodeHeartbeatSchema, create(edge.NodeHeartbeatSchema, { nodeName }));
const event = (nodeName: string) =>
  encode(
    edge.EdgeEventSchema,
    create(edge.EdgeEventSchema, {
      id: 'e1',
      key: 'k',
      podUid: 'u',
      podNamespace: 'default',
      podName: 'p',
      type: edge.EventType.NORMAL,
      reason: 'Pulled',
      firstTimestampMs: 1n,
      lastTimestampMs: 1n,
      count: 1,
      nodeName,
    }),
  );

describe('statusMessage', () => {
  it("maps the wire id of a report, a heartbeat and a metrics text back to the node's name", () => {
    const ids = wireIds();
    expect(statusMessage(statusSubjects.of(KEY, { kind: 'pod', uid: 'u1' }), report('u1'), ids)).toMatchObject({
      kind: 'pod',
      node: 'edge-1',
    });
    expect(statusMessage(statusSubjects.of(KEY, { kind: 'node' }), heartbeat('edge-1'), ids)).toMatchObject({
      kind: 'heartbeat',
      node: 'edge-1',
    });
    expect(statusMessage(statusSubjects.of(KEY, { kind: 'metrics' }), new TextEncoder().encode('up 1\n'), ids)).toEqual({
      kind: 'metrics',
      node: 'edge-1',
      text: 'up 1\n',
    });
    expect(statusMessage(statusSubjects.of('edge-2', { kind: 'node' }), heartbeat('edge-2'), ids)).toMatchObject({
      kind: 'heartbeat',
      node: 'edge-2',
    });
  });

  it("drops a message under a wire id no EdgeNode has: an old key, a joined node's name, a stranger", () => {
    const ids = wireIds();
    for (const wireId of [OLD, 'edge-1', 'edge-9']) {
      expect(statusMessage(statusSubjects.of(wireId, { kind: 'node' }), heartbeat('edge-1'), ids)).toMatchObject({
        kind: 'dropped',
        reason: 'unknown-node',
        wireId,
      });
    }
  });

  it("drops malformed messages and a report whose UID is not its subject's", () => {
    const ids = wireIds();
    expect(statusMessage('ef.status.x', report('u1'), ids)).toMatchObject({ kind: 'dropped', reason: 'malformed' });
    expect(statusMessage(statusSubjects.of(KEY, { kind: 'pod', uid: 'u1' }), new Uint8Array([0xff, 0xff]), ids)).toMatchObject({
      kind: 'dropped',
      reason: 'malformed',
    });
    expect(statusMessage(statusSubjects.of(KEY, { kind: 'pod', uid: 'u1' }), report('u2'), ids)).toMatchObject({
      kind: 'dropped',
      reason: 'malformed',
      detail: 'report of UID u2 on the subject of UID u1',
    });
  });
});

describe('eventMessage', () => {
  it("maps the wire id back to the node's name, which the Event must name", () => {
    const ids = wireIds();
    expect(eventMessage(eventSubjects.of(KEY, 'e1'), event('edge-1'), ids)).toMatchObject({ kind: 'event', node: 'edge-1' });
    expect(eventMessage(eventSubjects.of(KEY, 'e1'), event('edge-2'), ids)).toMatchObject({ kind: 'dropped', reason: 'malformed' });
    expect(eventMessage(eventSubjects.of(OLD, 'e1'), event('edge-1'), ids)).toMatchObject({
      kind: 'dropped',
      reason: 'unknown-node',
      wireId: OLD,
    });
    expect(eventMessage(eventSubjects.of(KEY, 'e1'), new Uint8Array([1]), ids)).toMatchObject({ kind: 'dropped', reason: 'malformed' });
  });
});
