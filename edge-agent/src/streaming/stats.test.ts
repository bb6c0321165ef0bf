import { CriError } from '@edgefarm/cri';
import { sandboxStatsUnavailable } from './stats.js';

describe('sandboxStatsUnavailable', () => {
  it('works around Unimplemented and a sandbox going away mid-call (NotFound, or its shim closing)', () => {
    expect(sandboxStatsUnavailable(new CriError('ListPodSandboxStats', 12, 'unknown method'))).toBe(true);
    expect(sandboxStatsUnavailable(new CriError('ListPodSandboxStats', 5, 'no running task found'))).toBe(true);
    // seen in CI: containerd 1.6 while a pod was torn down
    expect(
      sandboxStatsUnavailable(
        new CriError('ListPodSandboxStats', 2, 'failed to decode sandbox container metrics for sandbox "0d24": ttrpc: closed: unknown'),
      ),
    ).toBe(true);
  });

  it('is an error otherwise', () => {
    expect(sandboxStatsUnavailable(new CriError('ListPodSandboxStats', 2, 'something else'))).toBe(false);
    expect(sandboxStatsUnavailable(new CriError('ListPodSandboxStats', 14, 'connection refused'))).toBe(false);
    expect(sandboxStatsUnavailable(new Error('ttrpc: closed'))).toBe(false);
  });
});
