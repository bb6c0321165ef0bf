/**
 * The edge-agent against real processes: a NATS hub + site leaf pair and a containerd, all started by the test.
 * The test plays the provider: it publishes EdgePodSpecs to the hub's EF_DESIRED and reads EF_STATUS.
 */
import { existsSync } from 'node:fs';
import { cri, edge } from '@edgefarm/proto';
import { headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { desiredSubjects } from '@edgefarm/proto';
import type { Agent } from './agent.js';
import { Labels } from './runtime/labels.js';
import { podLogDirectory } from './runtime/cri-config.js';
import { fieldsOf, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 90_000;
let site: TestSite;
let agent: Agent;
let watcher: StatusWatcher;

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);

let bed: AgentBed;
const containersOf = (uid: string) => bed.containers(uid);
const sandboxesOf = (uid: string) => bed.sandboxes(uid);
async function startAgent(): Promise<void> {
  agent = await bed.startAgent();
}

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, agent, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('edge-agent with NATS and containerd', () => {
  it(
    'runs a hostNetwork pod published on the hub and reports it Running',
    async () => {
      const pod = podSpec({ hostNetwork: true, labels: { app: 'hn' } });
      await publishDesired(site.hubNc, site.node, pod);
      const got = await watcher.waitFor(pod.uid, running);
      expect(got.report.podIp).toBe('127.0.0.1');
      expect(got.report.startTimeMs).toBeGreaterThan(0n);

      const [sb] = await sandboxesOf(pod.uid);
      expect(sb!.state).toBe(cri.PodSandboxState.SANDBOX_READY);
      expect(sb!.labels).toMatchObject({
        [Labels.podNamespace]: 'default',
        [Labels.podName]: pod.name,
        [Labels.managed]: 'true',
        app: 'hn',
      });
      const status = await site.containerd!.runtime.podSandboxStatus({ podSandboxId: sb!.id, verbose: true });
      expect(status.status?.linux?.namespaces?.options?.network).toBe(cri.NamespaceMode.NODE);
      const [c] = await containersOf(pod.uid);
      expect(c!.state).toBe(cri.ContainerState.CONTAINER_RUNNING);
      expect(c!.labels[Labels.containerName]).toBe('main');
      expect(got.report.containerStatuses[0]!.containerId).toBe(`containerd://${c!.id}`);
      const log = `${podLogDirectory(site.agentConfig(), pod)}/main/0.log`;
      expect(existsSync(log)).toBe(true);
    },
    T,
  );

  it(
    'runs a pod on the CNI bridge and reports its pod IP',
    async () => {
      const pod = podSpec({
        containers: [{ name: 'web', image: 'docker.io/edgefarm/busybox:1.35', command: ['sh', '-c', 'echo hello; exec sleep 3600'] }],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const got = await watcher.waitFor(pod.uid, running);
      expect(got.report.podIp).toMatch(/^10\.250\.\d+\.\d+$/);
      await waitFor('container log line', async () => {
        const { readFile } = await import('node:fs/promises');
        return (await readFile(`${podLogDirectory(site.agentConfig(), pod)}/web/0.log`, 'utf8').catch(() => '')).includes('stdout F hello');
      });
    },
    T,
  );

  it(
    'replaces the container when its spec changes, counting a restart',
    async () => {
      const pod = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      const [before] = await containersOf(pod.uid);
      const next = podSpec({
        ...fieldsOf(pod),
        resourceVersion: '101',
        containers: [{ ...pod.containers[0]!, command: ['sleep', '7200'] }],
      });
      await publishDesired(site.hubNc, site.node, next);
      const got = await watcher.waitFor(pod.uid, (r) => running(r) && r.observedResourceVersion === '101');
      expect(got.report.containerStatuses[0]!.restartCount).toBe(1);
      const live = (await containersOf(pod.uid)).filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING);
      expect(live).toHaveLength(1);
      expect(live[0]!.id).not.toBe(before!.id);
    },
    T,
  );

  it(
    'restarts an exiting container under Always, and lets it complete under Never',
    async () => {
      const crashing = podSpec({
        hostNetwork: true,
        containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35', command: ['sh', '-c', 'sleep 0.2; exit 3'] }],
      });
      const once = podSpec({
        hostNetwork: true,
        restartPolicy: edge.RestartPolicy.NEVER,
        containers: [{ name: 'c', image: 'docker.io/edgefarm/busybox:1.35', command: ['true'] }],
      });
      await publishDesired(site.hubNc, site.node, crashing);
      await publishDesired(site.hubNc, site.node, once);
      const restarted = await watcher.waitFor(crashing.uid, (r) => (r.containerStatuses[0]?.restartCount ?? 0) >= 1, 30_000);
      expect(restarted.report.containerStatuses[0]!.lastState?.state).toMatchObject({ case: 'terminated', value: { exitCode: 3 } });
      const done = await watcher.waitFor(once.uid, (r) => r.phase === edge.PodPhase.SUCCEEDED);
      expect(done.report.containerStatuses[0]!.state?.state).toMatchObject({ case: 'terminated', value: { exitCode: 0 } });
      await publishTombstone(site.hubNc, site.node, crashing);
      await publishTombstone(site.hubNc, site.node, once);
      await watcher.waitFor(crashing.uid, (r) => r.removed);
      await watcher.waitFor(once.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'deletes a pod marked deleting: removed report, nothing left in containerd',
    async () => {
      const pod = podSpec({ terminationGracePeriodSeconds: 30n });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      const t0 = Date.now();
      await publishDesired(
        site.hubNc,
        site.node,
        podSpec({ ...fieldsOf(pod), resourceVersion: '200', deleting: true, deletionGracePeriodSeconds: 1n }),
      );
      const removed = await watcher.waitFor(pod.uid, (r) => r.removed);
      expect(Date.now() - t0).toBeLessThan(10_000); // the 1 s deletion grace, not the 30 s spec one (sleep ignores TERM)
      expect(removed.report.observedResourceVersion).toBe('200');
      expect(await sandboxesOf(pod.uid)).toHaveLength(0);
      expect(await containersOf(pod.uid)).toHaveLength(0);
      const cgroup = `/sys/fs/cgroup/pids${site.agentConfig().cgroupParent}/pod${pod.uid}`;
      expect(existsSync(cgroup)).toBe(false);
      expect(existsSync(podLogDirectory(site.agentConfig(), pod))).toBe(false);
    },
    T,
  );

  it(
    'removes everything of a pod on a tombstone',
    async () => {
      const pod = podSpec({ hostNetwork: true, terminationGracePeriodSeconds: 0n });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
      expect(await sandboxesOf(pod.uid)).toHaveLength(0);
    },
    T,
  );

  it(
    'skips an undecodable desired message and keeps going',
    async () => {
      const h = headers();
      await jetstream(site.hubNc).publish(
        desiredSubjects.pod(site.node, { namespace: 'default', name: 'garbage' }),
        new Uint8Array([1, 2, 3, 0xff]),
        { headers: h },
      );
      const pod = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
    },
    T,
  );

  it(
    're-adopts running pods after an agent restart: same containers, nothing restarted',
    async () => {
      const pod = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      const before = (await containersOf(pod.uid)).map((c) => c.id).sort();
      const reportsBefore = watcher.of(pod.uid).length;

      await agent.stop();
      // changes while the agent is down are applied when it is back
      const gone = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, gone);
      await startAgent();
      await watcher.waitFor(gone.uid, running);
      await publishTombstone(site.hubNc, site.node, gone);
      await watcher.waitFor(gone.uid, (r) => r.removed);
      await new Promise((r) => setTimeout(r, 2000)); // several resyncs

      const after = (await containersOf(pod.uid)).map((c) => c.id).sort();
      expect(after).toEqual(before);
      const status = await site.containerd!.runtime.containerStatus({ containerId: after[0]! });
      expect(status.status?.state).toBe(cri.ContainerState.CONTAINER_RUNNING);
      expect(agent.parts.reconciler.lastSync(`default/${pod.name}`)?.actions.startContainers).toEqual([]);
      // a restarted agent may report once more (new generation), but the pod stayed the same
      const reports = watcher.of(pod.uid).slice(reportsBefore);
      for (const r of reports) expect(r.containerStatuses[0]!.restartCount).toBe(0);
    },
    T,
  );

  it(
    'reports what happened while the leaf link was cut once it is back',
    async () => {
      const pod = podSpec({ hostNetwork: true, terminationGracePeriodSeconds: 0n });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, running);
      site.nats.proxy.sever();
      try {
        const [c] = await containersOf(pod.uid);
        await site.containerd!.runtime.stopContainer({ containerId: c!.id, timeout: 0n }); // the workload dies offline
        await waitFor(
          'restart at the edge',
          async () => (await containersOf(pod.uid)).some((x) => x.state === cri.ContainerState.CONTAINER_RUNNING && x.id !== c!.id),
          20_000,
        );
        await new Promise((r) => setTimeout(r, 1000));
        expect(watcher.of(pod.uid).some((r) => r.containerStatuses[0]!.restartCount > 0)).toBe(false);
      } finally {
        site.nats.proxy.heal();
      }
      const got = await watcher.waitFor(pod.uid, (r) => running(r) && r.containerStatuses[0]!.restartCount === 1, 30_000);
      expect(got.report.containerStatuses[0]!.lastState?.state.case).toBe('terminated');
    },
    T,
  );

  it(
    'removes managed sandboxes no desired pod owns and leaves unmanaged ones alone',
    async () => {
      const rt = site.containerd!.runtime;
      const mk = (name: string, labels: Record<string, string>) =>
        rt.runPodSandbox({
          config: {
            metadata: { name, namespace: 'default', uid: `uid-${name}`, attempt: 0 },
            logDirectory: `${site.dir}/foreign`,
            labels,
            linux: { securityContext: { namespaceOptions: { network: cri.NamespaceMode.NODE } } },
          },
        });
      const orphan = await mk('orphan', {
        [Labels.managed]: 'true',
        [Labels.podUid]: 'uid-orphan',
        [Labels.podNamespace]: 'default',
        [Labels.podName]: 'orphan',
      });
      const foreign = await mk('foreign', { app: 'not-ours' });
      await waitFor(
        'orphan removed',
        async () => (await rt.listPodSandbox({ filter: { id: orphan.podSandboxId } })).items.length === 0,
        20_000,
      );
      expect((await rt.listPodSandbox({ filter: { id: foreign.podSandboxId } })).items).toHaveLength(1);
      await rt.stopPodSandbox({ podSandboxId: foreign.podSandboxId });
      await rt.removePodSandbox({ podSandboxId: foreign.podSandboxId });
    },
    T,
  );

  it(
    'keeps following desired state across a crash of the site nats-server',
    async () => {
      const before = podSpec({ hostNetwork: true });
      await publishDesired(site.hubNc, site.node, before);
      await watcher.waitFor(before.uid, running);
      await site.nats.stopSite(true);
      await new Promise((r) => setTimeout(r, 500));
      await site.nats.startSite();
      await site.nats.waitLinked();
      const after = podSpec({ hostNetwork: true });
      const t0 = Date.now();
      await publishDesired(site.hubNc, site.node, after);
      await watcher.waitFor(after.uid, running, 60_000);
      process.stdout.write(`agent: pod published ${Date.now() - t0} ms after the site server came back was running\n`);
      expect((await containersOf(before.uid)).filter((c) => c.state === cri.ContainerState.CONTAINER_RUNNING)).toHaveLength(1);
    },
    T,
  );

  it(
    'sends heartbeats with the node facts',
    async () => {
      await waitFor('heartbeat', () => watcher.heartbeats.length > 0);
      const hb = watcher.heartbeats.at(-1)!;
      expect(hb.nodeName).toBe(site.node);
      expect(hb.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
      expect(hb.systemInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
      expect(hb.images.some((i) => i.names.includes('docker.io/edgefarm/busybox:1.35'))).toBe(true);
      expect(hb.appliedSequence).toBeGreaterThan(0n);
    },
    T,
  );
});
