/**
 * The shipped manifests' replicas on a pod network (`make e2e-install-ha`, instance ha, EF_CLOUD_NET=pod; skipped
 * elsewhere): the base as it is (manifests/overlays/pod-network only places the pods on the cloud node and makes the
 * two outside Services NodePorts) with kube-proxy and CoreDNS on the cloud node. The hub's 3 servers find each other
 * by their StatefulSet names and form one JetStream cluster whose streams keep 3 replicas; the 2 providers share the
 * edge nodes; the site joins through the registrar's NodePort and dials the hub's. Losing a hub server or the
 * provider serving a node loses nothing: pods are still scheduled, the node stays Ready, its pods are not touched.
 */
import { jest } from '@jest/globals';
import { deleteAndWait, eventually, kubectl, kubectlJson, layout, log } from './stack.js';

jest.setTimeout(10 * 60_000);

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string; hostNetwork?: boolean };
  status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
}
interface List<T> {
  items: T[];
}
/** What /jsz and /routez of a hub server say (nats-server's monitoring, plain HTTP on the pod's port 8222). */
interface Jsz {
  meta_cluster?: { name?: string; leader?: string; cluster_size?: number };
  account_details?: {
    name: string;
    stream_detail?: { name: string; config?: { num_replicas?: number }; cluster?: { leader?: string; replicas?: { name: string }[] } }[];
  }[];
}

const NS = 'edgefarm-system';
const podNetwork = (await layout('echo "$EF_DEPLOY $EF_CLOUD_NET"')) === 'cluster pod';
const describePod = podNetwork ? describe : describe.skip;
const ready = (p: Pod) => p.status.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const named = async (name: string) =>
  (await kubectlJson<List<Pod>>('-n', NS, 'get', 'pods', '-l', `app.kubernetes.io/name=${name}`)).items.sort((a, b) =>
    a.metadata.name.localeCompare(b.metadata.name),
  );
const monitor = async <T>(pod: Pod, what: string): Promise<T> => {
  const res = await fetch(`http://${pod.status.podIP}:8222/${what}`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`${pod.metadata.name} /${what}: HTTP ${res.status}`);
  return (await res.json()) as T;
};
const nodeReady = async (node: string) =>
  (await kubectl('get', 'node', node, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')) === 'True';
const nodeAddress = (node: string) => kubectl('get', 'node', node, '-o', 'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}');
const WORKLOAD = 'ha-check';

/** Runs a pod on edge-1 and waits until it is Running; resolves with its UID. */
async function runOnEdge(name: string): Promise<string> {
  await kubectl(
    'run',
    name,
    '--image=docker.io/edgefarm/busybox:1.35',
    '--image-pull-policy=IfNotPresent',
    `--labels=app=${WORKLOAD}`,
    '--overrides={"spec":{"nodeSelector":{"kubernetes.io/hostname":"edge-1"},"tolerations":[{"key":"edgefarm.io/edge","operator":"Exists"}]}}',
    '--',
    'sh',
    '-c',
    `echo ${name}-started; trap "exit 0" TERM; while true; do sleep 1; done`,
  );
  await eventually(`pod ${name} Running`, 90_000, async () =>
    (await kubectl('get', 'pod', name, '-o', 'jsonpath={.status.phase}')) === 'Running' ? true : undefined,
  );
  return kubectl('get', 'pod', name, '-o', 'jsonpath={.metadata.uid}');
}

describePod("the base's replicas on a pod network: 3 hub servers, 2 providers, 2 registrars", () => {
  afterAll(async () => {
    await deleteAndWait(`app=${WORKLOAD}`, ['pod/ha-first', 'pod/ha-during-hub', 'pod/ha-after-provider']);
  });

  it('runs every replica of the base as a Ready pod with its own address on the pod network', async () => {
    const cidr = await layout('ef_cloud_pod_cidr');
    const prefix = cidr.replace(/\.0\/24$/, '.');
    for (const [name, replicas] of [
      ['edgefarm-hub', 3],
      ['edgefarm-provider', 2],
      ['edgefarm-registrar', 2],
    ] as const) {
      const pods = await eventually(`${replicas} ${name} pods Ready`, 180_000, async () => {
        const p = await named(name);
        return p.length === replicas && p.every(ready) ? p : undefined;
      });
      for (const p of pods) {
        expect(p.spec.hostNetwork).toBeFalsy();
        expect(p.status.podIP?.startsWith(prefix)).toBe(true);
      }
    }
    // The hub's volumes: the claims of the StatefulSet bound to the PersistentVolumes made for them.
    const claims = await kubectlJson<List<{ metadata: { name: string }; status: { phase: string } }>>('-n', NS, 'get', 'pvc');
    expect(claims.items.map((c) => `${c.metadata.name}=${c.status.phase}`).sort()).toEqual([
      'data-edgefarm-hub-0=Bound',
      'data-edgefarm-hub-1=Bound',
      'data-edgefarm-hub-2=Bound',
    ]);
  });

  it('forms one JetStream cluster of the 3 hub servers, routed by their StatefulSet names, with R3 hub streams', async () => {
    const hub = await named('edgefarm-hub');
    const names = hub.map((p) => p.metadata.name);
    for (const member of hub) {
      const routes = await monitor<{ routes?: { remote_name?: string }[] }>(member, 'routez');
      expect([...new Set(routes.routes?.map((r) => r.remote_name))].sort()).toEqual(names.filter((n) => n !== member.metadata.name));
    }
    const jsz = await eventually('a meta leader', 60_000, async () => {
      const j = await monitor<Jsz>(hub[0]!, 'jsz?accounts=true&streams=true&config=true');
      return j.meta_cluster?.leader ? j : undefined;
    });
    expect(jsz.meta_cluster?.cluster_size).toBe(3);
    expect(names).toContain(jsz.meta_cluster?.leader);
    // Every hub stream the provider made (EF_DESIRED, EF_STATUS, EF_EVENTS) keeps 3 replicas, one per server.
    const leader = hub.find((p) => p.metadata.name === jsz.meta_cluster?.leader)!;
    const full = await monitor<Jsz>(leader, 'jsz?accounts=true&streams=true&config=true');
    const streams = (full.account_details ?? []).flatMap((a) => a.stream_detail ?? []);
    expect(streams.map((s) => s.name).sort()).toEqual(expect.arrayContaining(['EF_DESIRED', 'EF_EVENTS', 'EF_STATUS']));
    for (const s of streams.filter((x) => x.name.startsWith('EF_'))) expect(s.config?.num_replicas).toBe(3);
  });

  it('joins edge-1 through the NodePorts: served by one provider pod, its leaf on a hub server', async () => {
    await eventually('node edge-1 Ready', 120_000, async () => ((await nodeReady('edge-1')) ? true : undefined));
    const providers = await named('edgefarm-provider');
    expect(providers.map((p) => p.status.podIP)).toContain(await nodeAddress('edge-1'));
    const hub = await named('edgefarm-hub');
    const leafs = await Promise.all(hub.map((p) => monitor<{ leafs?: { name?: string }[] }>(p, 'leafz')));
    expect(leafs.flatMap((l) => l.leafs?.map((x) => x.name) ?? [])).toContain('edge-1');
    const svc = await kubectlJson<{ spec: { type: string; ports: { nodePort?: number }[] } }>('-n', NS, 'get', 'svc', 'edgefarm-hub-leaf');
    expect(svc.spec.type).toBe('NodePort');
    expect(svc.spec.ports[0]?.nodePort).toBe(Number(await layout('echo "$EF_HUB_LEAF_PORT"')));
    await runOnEdge('ha-first');
  });

  it('loses no pod and no node when the hub server leading the JetStream cluster is deleted', async () => {
    const hub = await named('edgefarm-hub');
    const leader = (await monitor<Jsz>(hub[0]!, 'jsz')).meta_cluster?.leader;
    expect(leader).toBeDefined();
    const victim = hub.find((p) => p.metadata.name === leader)!;
    const t0 = Date.now();
    await kubectl('-n', NS, 'delete', 'pod', victim.metadata.name, '--wait=false');
    // While it is gone and comes back: a new pod is scheduled to edge-1 and runs (the stream keeps 2 of 3 replicas).
    await runOnEdge('ha-during-hub');
    log(`[e2e] hub leader ${victim.metadata.name} deleted: a new pod Running on edge-1 after ${Date.now() - t0} ms`);
    const back = await eventually(`${victim.metadata.name} back and Ready`, 180_000, async () => {
      const p = (await named('edgefarm-hub')).find((x) => x.metadata.name === victim.metadata.name);
      return p && p.metadata.uid !== victim.metadata.uid && ready(p) ? p : undefined;
    });
    // It rejoins: routes to both others, a meta leader again.
    await eventually(`${back.metadata.name} routed to both others`, 60_000, async () => {
      const r = await monitor<{ routes?: { remote_name?: string }[] }>(back, 'routez');
      return new Set(r.routes?.map((x) => x.remote_name)).size === 2 ? true : undefined;
    });
    expect(await nodeReady('edge-1')).toBe(true);
    expect(await kubectl('get', 'pod', 'ha-first', '-o', 'jsonpath={.status.containerStatuses[0].restartCount}')).toBe('0');
  });

  it("hands edge-1 to the other provider replica when the pod serving it is deleted; edge-1's pods are not touched", async () => {
    const first = await kubectl('get', 'pod', 'ha-first', '-o', 'jsonpath={.metadata.uid}');
    const address = await nodeAddress('edge-1');
    const serving = (await named('edgefarm-provider')).find((p) => p.status.podIP === address)!;
    const t0 = Date.now();
    await kubectl('-n', NS, 'delete', 'pod', serving.metadata.name, '--wait=false');
    const now = await eventually('edge-1 served from another provider pod', 180_000, async () => {
      const a = await nodeAddress('edge-1');
      return a && a !== address && (await nodeReady('edge-1')) ? a : undefined;
    });
    log(`[e2e] provider ${serving.metadata.name} deleted: edge-1 served from ${now} and Ready after ${Date.now() - t0} ms`);
    const logs = await eventually('logs of ha-first through the new serving provider', 60_000, async () => {
      const l = await kubectl('logs', 'ha-first').catch(() => '');
      return l.includes('ha-first-started') ? l : undefined;
    });
    expect(logs).toContain('ha-first-started');
    expect(await kubectl('get', 'pod', 'ha-first', '-o', 'jsonpath={.metadata.uid}')).toBe(first);
    expect(await kubectl('get', 'pod', 'ha-first', '-o', 'jsonpath={.status.containerStatuses[0].restartCount}')).toBe('0');
    await runOnEdge('ha-after-provider');
  });
});
