import { FakeKubeClient } from '../kube/fake.js';
import { pod } from './testing.js';
import { PodWarnings } from './warnings.js';

describe('PodWarnings', () => {
  it('records a Warning Event once per pod and problem, afresh for a new pod of the same name, and forgets', async () => {
    const kube = new FakeKubeClient();
    const w = new PodWarnings(kube, () => new Date('2026-11-23T10:00:00Z'));
    expect(await w.warn(pod(), 'configmap/default/app@5', 'EdgeObjectTooLarge', 'too large')).toBe(true);
    expect(await w.warn(pod(), 'configmap/default/app@5', 'EdgeObjectTooLarge', 'too large')).toBe(false);
    expect(await w.warn(pod(), 'configmap/default/app@6', 'EdgeObjectTooLarge', 'too large')).toBe(true); // a new version
    expect(await w.warn(pod({}, { uid: 'uid-2' }), 'configmap/default/app@6', 'EdgeObjectTooLarge', 'too large')).toBe(true);
    expect(kube.events.map((e) => [e.type, e.reason, e.involvedObject.uid, e.source?.host])).toEqual([
      ['Warning', 'EdgeObjectTooLarge', 'uid-1', 'edge-1'],
      ['Warning', 'EdgeObjectTooLarge', 'uid-1', 'edge-1'],
      ['Warning', 'EdgeObjectTooLarge', 'uid-2', 'edge-1'],
    ]);
    expect(w.size).toBe(1);
    w.forget('default/web-1');
    expect(w.size).toBe(0);
    await w.warn(pod(), 'x', 'R', 'm');
    await w.warn(pod({ nodeName: 'edge-2' }, { name: 'other' }), 'x', 'R', 'm');
    w.forgetNode('edge-1');
    expect(w.size).toBe(1);
  });
});
