/**
 * Measures pod start latency at the edge: desired spec published on the hub -> container RUNNING in containerd
 * (and -> Running report back on the hub), against the floor of the raw CRI calls (RunPodSandbox, CreateContainer,
 * StartContainer) made directly. hostNetwork pods, busybox sleep; medians printed as a table.
 */
import { DeliverPolicy, jetstream, type ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { cri, edge, Streams } from '@edgefarm/proto';
import { Agent } from './agent.js';
import { Labels } from './runtime/labels.js';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';

const T = 180_000;
const N = 7;
let site: TestSite;
let agent: Agent;
let watcher: StatusWatcher;
let siteNc: NatsConnection;
let siteMessages: ConsumerMessages;
const arrivals = new Map<string, number>();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

beforeAll(async () => {
  site = await TestSite.start();
  agent = new Agent(site.agentConfig({ logLevel: 'info' }), site.logger('agent'));
  await agent.start();
  watcher = await new StatusWatcher(site.hubNc, site.node).start();
  siteNc = await site.nats.connectSite();
  const c = await jetstream(siteNc).consumers.get(Streams.siteDesired(site.node), { deliver_policy: DeliverPolicy.New });
  siteMessages = await c.consume();
  void (async () => {
    for await (const m of siteMessages) arrivals.set(m.subject, performance.now());
  })();
}, T);

afterAll(async () => {
  await siteMessages?.close();
  await siteNc?.close();
  await watcher?.stop();
  await agent?.stop();
  await site?.stop();
}, T);

it(
  'desired -> RUNNING through the agent vs raw CRI',
  async () => {
    const rt = site.containerd!.runtime;
    const raw: { sandbox: number; create: number; start: number; total: number }[] = [];
    for (let i = 0; i < N; i++) {
      const uid = `raw-${i}`;
      const meta = { name: `raw-${i}`, namespace: 'bench', uid, attempt: 0 };
      const config = {
        metadata: meta,
        hostname: '',
        logDirectory: `${site.dir}/raw/${uid}`,
        linux: { securityContext: { namespaceOptions: { network: cri.NamespaceMode.NODE, pid: cri.NamespaceMode.CONTAINER } } },
      };
      const t0 = performance.now();
      const { podSandboxId } = await rt.runPodSandbox({ config });
      const t1 = performance.now();
      const { containerId } = await rt.createContainer({
        podSandboxId,
        config: {
          metadata: { name: 'main', attempt: 0 },
          image: { image: BUSYBOX },
          command: ['sleep', '3600'],
          logPath: 'main.log',
          linux: { securityContext: { namespaceOptions: { network: cri.NamespaceMode.NODE, pid: cri.NamespaceMode.CONTAINER } } },
        },
        sandboxConfig: config,
      });
      const t2 = performance.now();
      await rt.startContainer({ containerId });
      const t3 = performance.now();
      raw.push({ sandbox: t1 - t0, create: t2 - t1, start: t3 - t2, total: t3 - t0 });
      await rt.stopPodSandbox({ podSandboxId });
      await rt.removePodSandbox({ podSandboxId });
    }

    const viaAgent: { toSite: number; toRunning: number; toReport: number }[] = [];
    for (let i = 0; i < N; i++) {
      const pod = podSpec({ namespace: 'bench', hostNetwork: true, terminationGracePeriodSeconds: 0n });
      const t0 = performance.now();
      await publishDesired(site.hubNc, site.node, pod);
      const running = await waitFor(
        'container running',
        async () => {
          const res = await rt.listContainers({
            filter: { labelSelector: { [Labels.podUid]: pod.uid }, state: { state: cri.ContainerState.CONTAINER_RUNNING } },
          });
          return res.containers.length > 0 ? performance.now() : undefined;
        },
        20_000,
        2,
      );
      const report = await watcher.waitFor(pod.uid, (r) => r.phase === edge.PodPhase.RUNNING);
      const site_ = [...arrivals].find(([s]) => s.endsWith(`.${pod.name}`))?.[1] ?? NaN;
      viaAgent.push({ toSite: site_ - t0, toRunning: running - t0, toReport: report.at - t0 });
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    }

    const row = (name: string, xs: number[]) =>
      `${name.padEnd(44)} ${median(xs).toFixed(1).padStart(8)} ms  (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
    const lines = [
      `pod start latency, hostNetwork busybox, median of ${N}`,
      row(
        'raw CRI RunPodSandbox',
        raw.map((r) => r.sandbox),
      ),
      row(
        'raw CRI CreateContainer',
        raw.map((r) => r.create),
      ),
      row(
        'raw CRI StartContainer',
        raw.map((r) => r.start),
      ),
      row(
        'raw CRI sandbox -> container RUNNING',
        raw.map((r) => r.total),
      ),
      row(
        'agent: hub publish -> in site stream',
        viaAgent.map((r) => r.toSite),
      ),
      row(
        'agent: hub publish -> container RUNNING',
        viaAgent.map((r) => r.toRunning),
      ),
      row(
        'agent: hub publish -> Running report on hub',
        viaAgent.map((r) => r.toReport),
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    expect(median(viaAgent.map((r) => r.toRunning))).toBeLessThan(5000);
  },
  T,
);
