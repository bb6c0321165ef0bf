import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { rejectUnsupported } from './reject.js';
import { pod } from './testing.js';
import { PodWarnings } from './warnings.js';

const log = pino({ level: 'silent' });

describe('rejectUnsupported', () => {
  it('fails the pod once with the reasons and one Event; a rejected pod being deleted is deleted at once', async () => {
    const kube = new FakeKubeClient();
    const deps = { kube, warnings: new PodWarnings(kube, () => new Date()) };
    await rejectUnsupported(deps, kube.emitPod(pod()), ['volumes[d]: persistentVolumeClaim is not supported'], log);
    const failed = kube.pods.get('default/web-1')!;
    expect(failed.status).toMatchObject({ phase: 'Failed', reason: 'EdgeUnsupported', message: expect.stringMatching(/volumes\[d\]/) });
    await rejectUnsupported(deps, failed, ['volumes[d]: persistentVolumeClaim is not supported'], log);
    expect(kube.calls.filter((c) => c.startsWith('replacePodStatus'))).toHaveLength(1);
    expect(kube.events.map((e) => e.reason)).toEqual(['EdgeUnsupported']);
    await rejectUnsupported(deps, kube.emitPod({ ...failed, metadata: { ...failed.metadata, deletionTimestamp: new Date() } }), ['x'], log);
    expect(kube.calls).toContain('deletePod default/web-1 grace=0');
    expect(kube.pods.has('default/web-1')).toBe(false);
  });
});
