/**
 * Ephemeral containers (kubectl debug) against a real containerd, as the node conformance specs
 * (test/e2e/common/node/ephemeral_containers.go) and the kubelet see them: added to a running pod, each starts once in
 * its sandbox and is reported in ephemeral_container_statuses; the app container is neither restarted nor replaced;
 * one that exits is never started again; a target container's process namespace is joined.
 */
import { readFile } from 'node:fs/promises';
import { edge } from '@edgefarm/proto';
import { BUSYBOX, fieldsOf, podSpec, publishDesired, StatusWatcher, TestSite } from '@edgefarm/testing';
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

const state = (s: edge.ContainerStatus | undefined) => s?.state?.state.case;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('ephemeral containers with containerd', () => {
  it(
    'debugger then debugger2 added to a running pod: each runs once, is reported, and the app container is untouched',
    async () => {
      const pod = podSpec({ containers: [{ name: 'app', image: BUSYBOX, command: ['sleep', '10000'] }] });
      await publishDesired(site.hubNc, site.node, pod);
      const { report: up } = await watcher.waitFor(pod.uid, (r) => state(r.containerStatuses[0]) === 'running', 60_000);
      const app = up.containerStatuses[0]!;

      // The pods/ephemeralcontainers subresource: a new generation with the debugger (the conformance spec's, here
      // targeting the app container).
      const withDebugger = podSpec({
        ...fieldsOf(pod),
        resourceVersion: '101',
        generation: 2n,
        ephemeralContainers: [
          {
            name: 'debugger',
            image: BUSYBOX,
            command: ['/bin/sh'],
            args: ['-c', 'while true; do echo polo; sleep 2; done'],
            stdin: true,
            tty: true,
            targetContainerName: 'app',
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, withDebugger);
      const { report: debugging } = await watcher.waitFor(pod.uid, (r) => state(r.ephemeralContainerStatuses[0]) === 'running', 60_000);
      const dbg = debugging.ephemeralContainerStatuses[0]!;
      expect(dbg).toMatchObject({ name: 'debugger', image: BUSYBOX, ready: false, restartCount: 0 });
      expect(dbg.containerId).toMatch(/^containerd:\/\//);
      expect(dbg.imageId).not.toBe('');
      expect(debugging.containerStatuses[0]).toMatchObject({ containerId: app.containerId, restartCount: 0 });
      expect(debugging.phase).toBe(edge.PodPhase.RUNNING);

      // exec reaches it; it sees the app container's processes (pid TARGET); its log says polo.
      expect((await bed.exec(dbg.containerId, ['/bin/echo', 'marco'])).out).toBe('marco\n');
      expect((await bed.exec(dbg.containerId, ['cat', '/proc/1/cmdline'])).out).toBe('sleep\u000010000\u0000');
      const id = dbg.containerId.replace(/^containerd:\/\//, '');
      const { status } = await site.containerd!.runtime.containerStatus({ containerId: id });
      let log = '';
      for (let i = 0; i < 50 && !log.includes('polo'); i++) {
        log = await readFile(status!.logPath, 'utf8').catch(() => '');
        if (!log.includes('polo')) await sleep(200);
      }
      expect(log).toContain('polo');

      // debugger2 (default entrypoint in the spec; here one that exits at once): reported beside debugger, and after
      // it exits it is never started again, whatever the pod's restartPolicy (Always).
      const two = podSpec({
        ...fieldsOf(withDebugger),
        resourceVersion: '102',
        generation: 3n,
        ephemeralContainers: [...withDebugger.ephemeralContainers, { name: 'debugger2', image: BUSYBOX, command: ['sh', '-c', 'exit 3'] }],
      });
      await publishDesired(site.hubNc, site.node, two);
      const { report: exited } = await watcher.waitFor(pod.uid, (r) => state(r.ephemeralContainerStatuses[1]) === 'terminated', 60_000);
      expect(exited.ephemeralContainerStatuses.map((s) => [s.name, state(s)])).toEqual([
        ['debugger', 'running'],
        ['debugger2', 'terminated'],
      ]);
      const t = exited.ephemeralContainerStatuses[1]!.state!.state;
      expect(t.case === 'terminated' && [t.value.exitCode, t.value.reason]).toEqual([3, 'Error']);

      await sleep(3000); // past any restart back-off (base 0.5 s, max 2 s)
      const containers = await bed.containers(pod.uid);
      const named = (n: string) => containers.filter((c) => c.metadata?.name === n);
      expect(named('debugger2')).toHaveLength(1);
      expect(named('debugger')).toHaveLength(1);
      expect(named('app').map((c) => `containerd://${c.id}`)).toEqual([app.containerId]);
      const last = watcher.of(pod.uid).at(-1)!;
      expect(last.ephemeralContainerStatuses[1]).toMatchObject({ name: 'debugger2', restartCount: 0, ready: false });
      expect(state(last.ephemeralContainerStatuses[1])).toBe('terminated');
      expect(last.containerStatuses[0]).toMatchObject({ containerId: app.containerId, restartCount: 0 });
      expect(last.phase).toBe(edge.PodPhase.RUNNING);
    },
    T,
  );
});
