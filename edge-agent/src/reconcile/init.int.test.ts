/**
 * Init containers against a real containerd, as the kubelet runs them: one at a time in order, each to completion
 * before the next, the app containers only after the last; a failing init container is retried under Always (with
 * the crash-loop back-off) and fails the pod under Never, and the app containers never start.
 */
import { edge } from '@edgefarm/proto';
import { BUSYBOX, podSpec, publishDesired, StatusWatcher, TestSite } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let watcher: StatusWatcher;

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start({ restartBackoffBaseMs: 500, restartBackoffMaxMs: 2000 });
  ({ site, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

const shared = { name: 'work', source: { case: 'emptyDir' as const, value: {} } };
const mount = [{ name: 'work', mountPath: '/work' }];
const step = (name: string, script: string) => ({ name, image: BUSYBOX, command: ['sh', '-c', script], volumeMounts: mount });

async function execOut(containerId: string, cmd: string[]): Promise<string> {
  return (await bed.exec(containerId, cmd)).out;
}

describe('init containers with containerd', () => {
  it('run one at a time in order, to completion, before the app container', async () => {
    const spec = podSpec({
      volumes: [shared],
      // Each step records when it started and finished; init1 takes a second, so an overlap would show.
      initContainers: [
        step(
          'init1',
          'echo "init1 start $(cut -d" " -f1 /proc/uptime)" >> /work/log; sleep 1; echo "init1 end $(cut -d" " -f1 /proc/uptime)" >> /work/log',
        ),
        step('init2', 'echo "init2 start $(cut -d" " -f1 /proc/uptime)" >> /work/log'),
      ],
      containers: [step('app', 'echo "app start $(cut -d" " -f1 /proc/uptime)" >> /work/log; while true; do sleep 1; done')],
    });
    await publishDesired(site.hubNc, site.node, spec);
    const { report: up } = await watcher.waitFor(
      spec.uid,
      (r) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses[0]?.ready === true,
      60_000,
    );
    expect(
      up.initContainerStatuses.map((s) => [
        s.name,
        s.state?.state.case,
        s.state?.state.case === 'terminated' ? s.state.state.value.reason : '',
      ]),
    ).toEqual([
      ['init1', 'terminated', 'Completed'],
      ['init2', 'terminated', 'Completed'],
    ]);
    const log = (await execOut(up.containerStatuses[0]!.containerId, ['cat', '/work/log'])).trim().split('\n');
    expect(log.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['init1 start', 'init1 end', 'init2 start', 'app start']);
    const times = log.map((l) => Number(l.split(' ')[2]));
    expect([...times].sort((a, b) => (a < b ? -1 : 1))).toEqual(times);
  });

  it('a failing init container is retried under Always; the app never starts until it succeeds', async () => {
    // Fails twice (counted in the shared emptyDir), then succeeds.
    const spec = podSpec({
      volumes: [shared],
      initContainers: [step('flaky', 'n=$(cat /work/n 2>/dev/null || echo 0); echo $((n+1)) > /work/n; [ "$n" -ge 2 ]')],
      containers: [step('app', 'while true; do sleep 1; done')],
    });
    await publishDesired(site.hubNc, site.node, spec);
    const { report: failing } = await watcher.waitFor(spec.uid, (r) => (r.initContainerStatuses[0]?.restartCount ?? 0) >= 1, 60_000);
    expect(failing.phase).toBe(edge.PodPhase.PENDING);
    expect(failing.containerStatuses[0]?.state?.state.case).toBe('waiting');
    const { report: up } = await watcher.waitFor(spec.uid, (r) => r.phase === edge.PodPhase.RUNNING, 60_000);
    expect(up.initContainerStatuses[0]!.restartCount).toBe(2);
    expect(await execOut(up.containerStatuses[0]!.containerId, ['cat', '/work/n'])).toBe('3\n');
  });

  it('as the conformance spec under Always: init1 fails and restarts with back-off, init2 and app wait PodInitializing', async () => {
    const spec = podSpec({
      initContainers: [
        { name: 'init1', image: BUSYBOX, command: ['/bin/false'] },
        { name: 'init2', image: BUSYBOX, command: ['/bin/true'] },
      ],
      containers: [{ name: 'run1', image: BUSYBOX, command: ['sh', '-c', 'sleep 3600'] }],
    });
    await publishDesired(site.hubNc, site.node, spec);
    const { report } = await watcher.waitFor(spec.uid, (r) => (r.initContainerStatuses[0]?.restartCount ?? 0) >= 3, 90_000);
    const reason = (s: edge.ContainerStatus | undefined) =>
      s?.state?.state.case === 'waiting' ? s.state.state.value.reason : s?.state?.state.case;
    expect(report.phase).toBe(edge.PodPhase.PENDING);
    expect(report.initContainerStatuses.map((s) => s.name)).toEqual(['init1', 'init2']);
    expect(report.initContainerStatuses[0]!.ready).toBe(false);
    expect(reason(report.initContainerStatuses[1])).toBe('PodInitializing');
    expect(reason(report.containerStatuses[0])).toBe('PodInitializing');
    for (const r of watcher.of(spec.uid)) expect(reason(r.containerStatuses[0])).toBe('PodInitializing');
  });

  it('as the conformance spec under Never: init2 fails, the pod is Failed, init1 Ready, run1 waits', async () => {
    const spec = podSpec({
      restartPolicy: edge.RestartPolicy.NEVER,
      initContainers: [
        { name: 'init1', image: BUSYBOX, command: ['/bin/true'] },
        { name: 'init2', image: BUSYBOX, command: ['/bin/false'] },
      ],
      containers: [{ name: 'run1', image: BUSYBOX, command: ['/bin/true'] }],
    });
    await publishDesired(site.hubNc, site.node, spec);
    const { report } = await watcher.waitFor(spec.uid, (r) => r.phase === edge.PodPhase.FAILED, 60_000);
    expect(report.initContainerStatuses.map((s) => [s.name, s.ready, s.state?.state.case])).toEqual([
      ['init1', true, 'terminated'],
      ['init2', false, 'terminated'],
    ]);
    expect(report.containerStatuses[0]!.state?.state).toMatchObject({ case: 'waiting', value: { reason: 'PodInitializing' } });
  });

  it('a failing init container fails the pod under Never; the app container never starts', async () => {
    const spec = podSpec({
      restartPolicy: edge.RestartPolicy.NEVER,
      initContainers: [{ name: 'broken', image: BUSYBOX, command: ['sh', '-c', 'exit 7'] }],
      containers: [{ name: 'app', image: BUSYBOX, command: ['sh', '-c', 'while true; do sleep 1; done'] }],
    });
    await publishDesired(site.hubNc, site.node, spec);
    const { report: failed } = await watcher.waitFor(spec.uid, (r) => r.phase === edge.PodPhase.FAILED, 60_000);
    const init = failed.initContainerStatuses[0]!.state?.state;
    expect(init?.case === 'terminated' && [init.value.exitCode, init.value.reason]).toEqual([7, 'Error']);
    expect(failed.containerStatuses[0]?.containerId ?? '').toBe('');
    const { containers } = await site.containerd!.runtime.listContainers({
      filter: { labelSelector: { 'io.kubernetes.pod.uid': spec.uid, 'io.kubernetes.container.name': 'app' } },
    });
    expect(containers).toEqual([]);
  });
});
