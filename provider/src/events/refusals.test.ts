import { FakeKubeClient } from '../kube/fake.js';
import { RefusalNotices } from './refusals.js';

describe('RefusalNotices', () => {
  it('tells each reporting node at most once an interval, with how many were refused since', async () => {
    const kube = new FakeKubeClient();
    let t = Date.parse('2026-12-01T00:00:00Z');
    const notices = new RefusalNotices({ kube, now: () => new Date(t), intervalMs: 60_000 });
    notices.refused('status', 'edge-2', 'default/web', 'edge-1');
    for (let i = 0; i < 99; i++) notices.refused('status', 'edge-2', 'default/web', 'edge-1');
    notices.refused('event', 'edge-3', 'default/db', 'edge-1');
    t += 60_000;
    notices.refused('status', 'edge-2', 'default/api', 'edge-1');
    await Promise.resolve();
    expect(kube.events.map((e) => `${e.involvedObject.kind} ${e.involvedObject.name} ${e.type} ${e.reason}: ${e.message}`)).toEqual([
      'Node edge-2 Warning ForeignPodDataRefused: refused 1 status reports from this node about pods bound to other nodes (last: pod default/web on edge-1); a node speaks only for its own pods',
      'Node edge-3 Warning ForeignPodDataRefused: refused 1 Events from this node about pods bound to other nodes (last: pod default/db on edge-1); a node speaks only for its own pods',
      'Node edge-2 Warning ForeignPodDataRefused: refused 100 status reports from this node about pods bound to other nodes (last: pod default/api on edge-1); a node speaks only for its own pods',
    ]);
    expect(new Set(kube.events.map((e) => e.metadata.name)).size).toBe(3);
  });
});
