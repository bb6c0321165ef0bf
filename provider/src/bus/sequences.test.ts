import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { FakeMembership } from '../membership/fake.js';
import { FakeBus } from './fake.js';
import { DesiredSequences } from './sequences.js';

const spec = (name: string) => create(edge.EdgePodSpecSchema, { namespace: 'default', name, uid: `uid-${name}` });

describe('DesiredSequences', () => {
  it('keeps the highest sequence per served node: seeded from the hub at takeover, raised by every publish, forgotten on release', async () => {
    const bus = new FakeBus();
    const membership = new FakeMembership();
    const sequences = new DesiredSequences(bus, membership);
    membership.subscribe(sequences);
    await membership.take(['edge-1'], [{ node: 'edge-1', kind: 'pod', key: { namespace: 'default', name: 'a' }, seq: 7 }]);
    expect(sequences.sequence('edge-1')).toBe(7);
    expect(await sequences.publishPod('edge-1', spec('b'))).toBe(1); // the fake hub's own sequence: lower, kept at 7
    expect(sequences.sequence('edge-1')).toBe(7);
    for (let i = 0; i < 8; i++) await sequences.tombstoneObject('edge-1', 'configmap', { namespace: 'default', name: 'c' });
    expect(sequences.sequence('edge-1')).toBe(9);
    await sequences.publishPod('edge-2', spec('x')); // not served: not kept
    expect(sequences.sequence('edge-2')).toBeUndefined();
    expect(bus.log).toContain('pod edge-2 default/x'); // but published
    await membership.release('edge-1', 'handed-over');
    expect(sequences.sequence('edge-1')).toBeUndefined();
  });
});
