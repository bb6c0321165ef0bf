import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { NodeFacts } from './facts.js';

const heartbeat = (address: string, appliedSequence = 0n) =>
  create(edge.NodeHeartbeatSchema, {
    nodeName: 'edge-1',
    allocatable: { cpu: '2', memory: '1Gi' },
    addresses: [{ type: 'InternalIP', address }],
    appliedSequence,
  });

describe('NodeFacts', () => {
  let clock = 1_000_000;
  const facts = () => new NodeFacts({ now: () => new Date(clock), heartbeatStaleMs: 12_000 });

  it('knows nothing of a node that never beat: disconnected, never heard of', () => {
    const f = facts();
    f.setReserved('edge-1', { cpu: '500m' });
    expect([f.hostIP('edge-1'), f.allocatable('edge-1'), f.connected('edge-1'), f.offlineSince('edge-1')]).toEqual([
      undefined,
      undefined,
      false,
      undefined,
    ]);
  });

  it('keeps the newest heartbeat by hub storage time and derives hostIP, allocatable, connectivity from it', () => {
    const f = facts();
    f.setReserved('edge-1', { cpu: '500m' });
    expect(f.record('edge-1', heartbeat('10.0.0.2', 4n), clock)).toBe(true);
    expect(f.record('edge-1', heartbeat('10.0.0.9'), clock - 1)).toBe(false);
    expect(f.hostIP('edge-1')).toBe('10.0.0.2');
    expect(f.allocatable('edge-1')).toEqual({ cpu: '1500m', memory: '1Gi' });
    expect(f.lastHeartbeat('edge-1')).toEqual({ atMs: clock, appliedSequence: 4 });
    expect([f.connected('edge-1'), f.offlineSince('edge-1')]).toEqual([true, undefined]);
    clock += 12_001;
    expect([f.connected('edge-1'), f.offlineSince('edge-1')]).toEqual([false, new Date(clock - 12_001)]);
    f.forget('edge-1');
    expect(f.lastHeartbeat('edge-1')).toBeUndefined();
  });

  it('tells its listeners of connectivity flips', () => {
    const f = facts();
    const seen: string[] = [];
    f.onConnectivity((node, connected) => seen.push(`${node} ${connected}`));
    f.connectivityChanged('edge-1', true);
    expect(seen).toEqual(['edge-1 true']);
  });
});
