/** The reconciler with volumes and env references: in-memory runtime, real desired store and VolumeManager (temp dir). */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { create, decodePodStatusReport, desiredSubjects, edge, encode, type ObjectKind } from '@edgefarm/proto';
import { FakeOutbox } from '../bus/outbox.js';
import { DesiredStore } from '../desired/store.js';
import { MemoryPodRuntime } from '../runtime/memory.js';
import type { ContainerCreateOptions } from '../runtime/types.js';
import { StatusReporter } from '../status/reporter.js';
import { ManualClock, podSpec, silentLogger } from '@edgefarm/testing';
import { VolumeManager } from '../volumes/manager.js';
import { FakeMounter } from '../volumes/mounter.js';
import { Reconciler } from './reconciler.js';

const NODE = 'n1';
const enc = new TextEncoder();
let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ef-recvol-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function setup() {
  const clock = new ManualClock();
  const runtime = new MemoryPodRuntime({ clock, recordCalls: true });
  const outbox = new FakeOutbox();
  const log = silentLogger();
  let reconciler: Reconciler | undefined;
  const changes: string[] = [];
  const store = new DesiredStore(NODE, log, (k) => {
    changes.push(k);
    reconciler?.enqueue(k);
  });
  const mounter = new FakeMounter();
  const volumes = new VolumeManager({ root, mounter, objects: store, log });
  await volumes.start();
  const status = new StatusReporter({ wireId: NODE, outbox, clock, log });
  reconciler = new Reconciler(
    { runtime, desired: store, status, clock, log, volumes },
    { nodeIp: '192.168.0.9', restartBackoffBaseMs: 1000 },
  );
  store.markSynced();
  let seq = 0;
  const put = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: encode(edge.EdgePodSpecSchema, spec) });
  const tombstone = (spec: edge.EdgePodSpec) =>
    store.apply({ subject: desiredSubjects.pod(NODE, spec), seq: ++seq, data: new Uint8Array(), operation: 'DEL' });
  const putObject = (kind: ObjectKind, name: string, resourceVersion: string, data: Record<string, string>) => {
    const obj = create(edge.EdgeObjectSchema, {
      namespace: 'default',
      name,
      resourceVersion,
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, enc.encode(v)])),
    });
    return store.apply({ subject: desiredSubjects.of(NODE, kind, obj), seq: ++seq, data: encode(edge.EdgeObjectSchema, obj) });
  };
  const reports = () => outbox.published.map((p) => decodePodStatusReport(p.data));
  const last = () => reports().at(-1)!;
  const creates = () =>
    runtime.calls
      .filter((c) => c.method === 'createContainer')
      .map((c) => ({ name: c.args[1] as string, options: c.args[2] as ContainerCreateOptions }));
  const envOf = (o: ContainerCreateOptions) => Object.fromEntries((o.env ?? []).map((e) => [e.name, e.value]));
  return { clock, runtime, store, volumes, mounter, reconciler, changes, put, tombstone, putObject, reports, last, creates, envOf };
}
const keyOf = (p: edge.EdgePodSpec) => `${p.namespace}/${p.name}`;
const waiting = (r: edge.PodStatusReport, i = 0) => r.containerStatuses[i]!.state?.state;

function appPod() {
  return podSpec({
    volumes: [
      { name: 'cfg', source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: 'app' } } }] } } },
      { name: 'scratch', source: { case: 'emptyDir', value: {} } },
    ],
    containers: [
      {
        name: 'main',
        image: 'docker.io/edgefarm/busybox:1.35',
        command: ['sh', '-c', 'echo $(GREETING)'],
        env: [
          { name: 'GREETING', configMapKeyRef: { name: 'app', key: 'greeting' } },
          { name: 'IP', fieldPath: 'status.podIP' },
        ],
        envFrom: [{ configMap: 'app', prefix: 'CFG_' }],
        volumeMounts: [
          { name: 'cfg', mountPath: '/etc/cfg' },
          { name: 'scratch', mountPath: '/scratch' },
        ],
      },
    ],
  });
}

describe('Reconciler: volumes and env references', () => {
  it('holds a pod whose ConfigMap volume is missing in ContainerCreating, and starts it when the object arrives', async () => {
    const t = await setup();
    const pod = appPod();
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).not.toContain('runSandbox');
    const steps = t.reconciler.lastSync(keyOf(pod))!.result!.steps.map((s) => `${s.step} ${s.op} ${s.target} ${s.outcome}`);
    expect(steps).toEqual([
      '1 setup-volume cfg failed',
      '2 setup-volume scratch ok',
      '3 create-sandbox attempt 0 skipped',
      '4 start-container main skipped',
    ]);
    expect(t.last().phase).toBe(edge.PodPhase.PENDING);
    expect(waiting(t.last())).toEqual({
      case: 'waiting',
      value: expect.objectContaining({
        reason: 'ContainerCreating',
        message: 'MountVolume.SetUp failed for volume "cfg" : configmap "app" not found',
      }),
    });

    t.changes.length = 0;
    t.putObject('configmap', 'app', '10', { greeting: 'hello', 'bad key': 'x' });
    expect(t.changes).toEqual([keyOf(pod)]);
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
    expect(await readFile(path.join(t.volumes.volumeDir(pod.uid, 'cfg'), 'greeting'), 'utf8')).toBe('hello');
    const [c] = t.creates();
    const sbIp = [...t.runtime.sandboxes.values()][0]!.ip;
    expect(t.envOf(c!.options)).toEqual({ CFG_greeting: 'hello', GREETING: 'hello', IP: sbIp });
    expect(c!.options.command).toEqual(['sh', '-c', 'echo hello']);
    expect(c!.options.mounts).toEqual([
      { containerPath: '/etc/cfg', hostPath: t.volumes.volumeDir(pod.uid, 'cfg'), readOnly: true },
      { containerPath: '/scratch', hostPath: t.volumes.volumeDir(pod.uid, 'scratch'), readOnly: false },
      // the kubelet's termination-log file: <pod dir>/containers/<name>/<random>, read-write
      {
        containerPath: '/dev/termination-log',
        hostPath: expect.stringMatching(new RegExp(`^${t.volumes.podDir(pod.uid)}/containers/main/[0-9a-f]{8}$`)),
        readOnly: false,
      },
      // the kubelet's managed /etc/hosts (hosts/hosts.ts)
      { containerPath: '/etc/hosts', hostPath: `${t.volumes.podDir(pod.uid)}/etc-hosts`, readOnly: false },
    ]);
  });

  it('a quick container started after a volume failure reports its own end, not the old failure', async () => {
    const t = await setup();
    const pod = podSpec({
      restartPolicy: edge.RestartPolicy.NEVER,
      volumes: [
        { name: 'cfg', source: { case: 'projected', value: { sources: [{ source: { case: 'configMap', value: { name: 'app' } } }] } } },
      ],
      containers: [
        {
          name: 'job',
          image: 'docker.io/edgefarm/busybox:1.35',
          command: ['cat', '/cfg/greeting'],
          volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }],
        },
      ],
    });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(waiting(t.last())?.value).toMatchObject({ reason: 'ContainerCreating' });
    const start = t.runtime.startContainer.bind(t.runtime);
    t.runtime.startContainer = async (id: string) => {
      await start(id);
      t.runtime.exit(id, 0); // done before the agent looks again
    };
    t.putObject('configmap', 'app', '1', { greeting: 'hi' });
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.SUCCEEDED);
    expect(waiting(t.last())).toMatchObject({ case: 'terminated', value: { exitCode: 0 } });
  });

  it('reports CreateContainerConfigError for a missing key and retries until it is there', async () => {
    const t = await setup();
    const pod = appPod();
    t.putObject('configmap', 'app', '10', { other: 'x' });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).toContain('runSandbox');
    expect(waiting(t.last())).toEqual({
      case: 'waiting',
      value: expect.objectContaining({
        reason: 'CreateContainerConfigError',
        message: "couldn't find key greeting in ConfigMap default/app",
      }),
    });
    await t.reconciler.sync(keyOf(pod)); // retried on the next sync, still failing
    expect(waiting(t.last())?.value).toMatchObject({ reason: 'CreateContainerConfigError' });
    expect(t.creates()).toHaveLength(0);

    t.putObject('configmap', 'app', '11', { greeting: 'hi' });
    await t.reconciler.sync(keyOf(pod));
    expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
    expect(t.envOf(t.creates()[0]!.options).GREETING).toBe('hi');
  });

  it('a ConfigMap change rewrites the volume without restarting the container; the next start gets the new env', async () => {
    const t = await setup();
    const pod = appPod();
    t.putObject('configmap', 'app', '10', { greeting: 'v1' });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const [first] = [...t.runtime.containers.values()];

    t.putObject('configmap', 'app', '11', { greeting: 'v2' });
    t.runtime.calls.length = 0;
    await t.reconciler.sync(keyOf(pod));
    expect(t.runtime.methods()).toEqual(['observePod']); // nothing in the runtime changes
    expect(await readFile(path.join(t.volumes.volumeDir(pod.uid, 'cfg'), 'greeting'), 'utf8')).toBe('v2');
    expect(t.runtime.containers.get(first!.id)!.state).toBe('running');
    expect(t.last().containerStatuses[0]!.restartCount).toBe(0);

    t.runtime.exit(first!.id, 1); // a crash
    await t.reconciler.sync(keyOf(pod));
    t.clock.advance(1500);
    await t.reconciler.sync(keyOf(pod));
    const restarted = t.creates().at(-1)!;
    expect(restarted.options.restartCount).toBe(1);
    expect(t.envOf(restarted.options).GREETING).toBe('v2');
    expect(t.last().containerStatuses[0]!.restartCount).toBe(1);
  });

  it('a failed refresh of a volume set up before keeps the pod running and blocks nothing', async () => {
    const t = await setup();
    const pod = appPod();
    t.putObject('configmap', 'app', '10', { greeting: 'v1' });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    t.store.apply({
      subject: desiredSubjects.of(NODE, 'configmap', { namespace: 'default', name: 'app' }),
      seq: 99,
      data: new Uint8Array(),
      operation: 'DEL',
    });
    await t.reconciler.sync(keyOf(pod));
    expect(t.reconciler.lastSync(keyOf(pod))!.result!.steps[0]).toMatchObject({ op: 'setup-volume', target: 'cfg', outcome: 'failed' });
    expect(t.last().phase).toBe(edge.PodPhase.RUNNING);
    expect(await readFile(path.join(t.volumes.volumeDir(pod.uid, 'cfg'), 'greeting'), 'utf8')).toBe('v1');
  });

  it('uses the node IP for field paths of hostNetwork pods', async () => {
    const t = await setup();
    const pod = podSpec({
      hostNetwork: true,
      containers: [
        {
          name: 'c',
          image: 'docker.io/edgefarm/busybox:1.35',
          env: [
            { name: 'IP', fieldPath: 'status.podIP' },
            { name: 'H', fieldPath: 'status.hostIPs' },
          ],
        },
      ],
    });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.envOf(t.creates()[0]!.options)).toEqual({ IP: '192.168.0.9', H: '192.168.0.9' });
    expect(t.runtime.methods()).not.toContain('sandboxIps');
  });

  it('removes the volume directory once nothing of the pod remains, before the removed report', async () => {
    const t = await setup();
    const pod = appPod();
    t.putObject('configmap', 'app', '10', { greeting: 'v1' });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(existsSync(t.volumes.podDir(pod.uid))).toBe(true);
    t.tombstone(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.last()).toMatchObject({ uid: pod.uid, removed: true });
    expect(existsSync(t.volumes.podDir(pod.uid))).toBe(false);
    expect(t.volumes.keys()).toEqual([]);
  });

  it('after a restart, a resync finds volume directories of a pod nothing else knows any more', async () => {
    const t = await setup();
    const pod = appPod();
    t.putObject('configmap', 'app', '10', { greeting: 'v1' });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    for (const s of [...t.runtime.sandboxes.keys()]) await t.runtime.removeSandbox(s); // gone while the agent was down

    // a restarted agent: empty desired state (the pod was deleted meanwhile), volumes read back from disk
    const log = silentLogger();
    const store = new DesiredStore(NODE, log, () => undefined);
    store.markSynced();
    const volumes = new VolumeManager({ root, mounter: t.mounter, objects: store, log });
    await volumes.start();
    expect(volumes.keys()).toEqual([keyOf(pod)]);
    const status = new StatusReporter({ wireId: NODE, outbox: new FakeOutbox(), clock: t.clock, log });
    const reconciler = new Reconciler(
      { runtime: t.runtime, desired: store, status, clock: t.clock, log, volumes },
      { nodeIp: '192.168.0.9' },
    );
    reconciler.start();
    await reconciler.resync();
    await reconciler.idle();
    await reconciler.stop();
    expect(existsSync(volumes.podDir(pod.uid))).toBe(false);
  });
});
