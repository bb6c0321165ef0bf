/**
 * emptyDir sizeLimit against a real containerd: a container that writes more than its disk-backed emptyDir's
 * sizeLimit gets its pod evicted (Failed, Evicted, the kubelet's message, an Event), and stays stopped; a pod within
 * its limit runs on.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Streams, cri, decodeEdgeEvent, edge, parseEventSubject } from '@edgefarm/proto';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';
import { Labels } from '../runtime/labels.js';

const T = 120_000;
let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start({ emptyDirCheckMs: 300 });
}, T);
afterAll(() => bed?.stop(), T);

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);

function writer(name: string, kib: number, sizeLimitBytes: bigint) {
  return podSpec({
    name,
    volumes: [{ name: 'scratch', source: { case: 'emptyDir', value: { sizeLimitBytes } } }],
    containers: [
      {
        name: 'main',
        image: BUSYBOX,
        command: ['sh', '-c', `sleep 1; dd if=/dev/zero of=/scratch/big bs=1024 count=${kib}; exec sleep 3600`],
        volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }],
      },
    ],
  });
}

async function hubEvents(): Promise<edge.EdgeEvent[]> {
  const jsm = await jetstreamManager(bed.site.hubNc);
  const info = await jsm.streams.info(Streams.events).catch(() => undefined);
  const out: edge.EdgeEvent[] = [];
  for (let seq = info?.state.first_seq ?? 1; info && seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(Streams.events, { seq }).catch(() => null);
    if (m && parseEventSubject(m.subject).node === bed.site.node) out.push(decodeEdgeEvent(m.data, m.subject));
  }
  return out;
}

describe('emptyDir sizeLimit eviction with containerd', () => {
  it(
    'evicts the pod whose disk emptyDir exceeds its sizeLimit; a pod within its limit runs on',
    async () => {
      const over = writer('over', 2048, 1024n * 1024n); // 2 MiB into a 1Mi emptyDir
      const within = writer('within', 256, 1024n * 1024n);
      await publishDesired(bed.site.hubNc, bed.site.node, over);
      await publishDesired(bed.site.hubNc, bed.site.node, within);
      const evicted = await bed.watcher.waitFor(over.uid, (r) => r.phase === edge.PodPhase.FAILED, 60_000);
      expect(evicted.report.reason).toBe('Evicted');
      expect(evicted.report.message).toBe('Usage of EmptyDir volume "scratch" exceeds the limit "1Mi".');
      // its containers are stopped and stay stopped
      const live = async (uid: string) =>
        (await bed.site.containerd!.runtime.listContainers({ filter: { labelSelector: { [Labels.podUid]: uid } } })).containers.filter(
          (c) => c.state === cri.ContainerState.CONTAINER_RUNNING,
        );
      await waitFor('the evicted pod to have no running container', async () => (await live(over.uid)).length === 0, 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      expect(await live(over.uid)).toEqual([]);
      expect(bed.watcher.of(over.uid).at(-1)!.phase).toBe(edge.PodPhase.FAILED);

      await bed.watcher.waitFor(within.uid, running, 30_000);
      await new Promise((r) => setTimeout(r, 1000)); // a few checks after its write
      expect(bed.watcher.of(within.uid).at(-1)!.phase).toBe(edge.PodPhase.RUNNING);

      await waitFor(
        'an Evicted event at the hub',
        async () => (await hubEvents()).some((e) => e.reason === 'Evicted' && e.podUid === over.uid),
        30_000,
        200,
      );
      // a restarted agent does not start the evicted pod again
      await bed.agent.stop();
      await bed.startAgent();
      await new Promise((r) => setTimeout(r, 3000)); // its first syncs
      expect(await live(over.uid)).toEqual([]);
      expect(bed.watcher.of(over.uid).at(-1)!).toMatchObject({ phase: edge.PodPhase.FAILED, reason: 'Evicted' });

      for (const p of [over, within]) {
        await publishTombstone(bed.site.hubNc, bed.site.node, p);
        await bed.watcher.waitFor(p.uid, (r) => r.removed, 30_000);
      }
    },
    T,
  );
});
