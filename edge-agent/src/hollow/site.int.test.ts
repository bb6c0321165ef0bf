/**
 * A hollow site against real NATS: a hub + leaf pair (TestSite without containerd), three hollow nodes in one
 * HollowSite, each with its own site streams on the one leaf server. The test plays the provider: it publishes pods
 * to the hub's EF_DESIRED and reads the nodes' reports and heartbeats from the hub's EF_STATUS.
 */
import { edge } from '@edgefarm/proto';
import { podSpec, publishDesired, silentLogger, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';
import { HollowSite } from './site.js';

const T = 60_000;
const NODES = ['hollow-0001', 'hollow-0002', 'hollow-0003'];
let site: TestSite;
let hollow: HollowSite;
const watchers = new Map<string, StatusWatcher>();

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);

beforeAll(async () => {
  site = await TestSite.start({ containerd: false, site: 'hollow-int' });
  await site.nats.waitLinked();
  for (const node of NODES) watchers.set(node, await new StatusWatcher(site.hubNc, node).start());
  hollow = new HollowSite({
    configs: NODES.map((node) => ({
      ...site.agentConfig({ nodeName: node, metricsAddr: undefined, metricsPublishSeconds: 0 }),
      volumeRoot: `${site.dir}/volumes/${node}`,
    })),
    log: silentLogger(),
    startConcurrency: 2,
  });
  await hollow.start();
}, T);

afterAll(async () => {
  await hollow?.stop();
  for (const w of watchers.values()) await w.stop();
  await site?.stop();
}, T);

describe('hollow site', () => {
  it(
    'runs each node its own pods published on the hub and reports them Running, with heartbeats',
    async () => {
      const pods = NODES.map((node) => ({ node, pod: podSpec({ name: `p-${node}` }) }));
      for (const { node, pod } of pods) await publishDesired(site.hubNc, node, pod);
      for (const { node, pod } of pods) {
        const got = await watchers.get(node)!.waitFor(pod.uid, running);
        expect(got.report.containerStatuses[0]!.containerId).toMatch(/^hollow:\/\//);
        expect(watchers.get(node)!.heartbeats.at(-1)?.nodeName).toBe(node);
      }
      // Each node ran only its own pod.
      for (const { node, pod } of pods)
        expect(await hollow.runtime(node).listPodKeys()).toEqual([{ namespace: pod.namespace, name: pod.name }]);
    },
    T,
  );

  it(
    'restarts a container that exits, and a restarted agent re-adopts its running pod',
    async () => {
      const node = NODES[0]!;
      const pod = podSpec({ name: 'crashy' });
      const w = watchers.get(node)!;
      await publishDesired(site.hubNc, node, pod);
      await w.waitFor(pod.uid, running);
      const rt = hollow.runtime(node);
      const [first] = rt.containerIds(pod);
      rt.exit(first!, 3);
      await w.waitFor(pod.uid, (r) => running(r) && r.containerStatuses[0]!.restartCount === 1);

      const before = rt.containerIds(pod);
      await hollow.restartAgent(node);
      const reports = w.of(pod.uid).length;
      await waitFor('a report from the restarted agent', () => w.of(pod.uid).length > reports || undefined, 20_000);
      expect(w.of(pod.uid).at(-1)).toMatchObject({ phase: edge.PodPhase.RUNNING });
      expect(w.of(pod.uid).at(-1)!.containerStatuses[0]!.restartCount).toBe(1);
      expect(rt.containerIds(pod)).toEqual(before);
    },
    T,
  );
});
