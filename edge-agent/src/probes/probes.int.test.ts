/**
 * Probes and CrashLoopBackOff against a real containerd and NATS (the test plays the provider), with a shortened
 * restart backoff (1 s doubling to 8 s): exec probes through CRI ExecSync, httpGet against busybox httpd on the pod
 * IP, tcpSocket, startup gating readiness, and grpc against a grpc-js health server the test runs on the host (a
 * hostNetwork pod, so the pod IP is the node's 127.0.0.1: busybox has no gRPC health server to put in a container).
 */
import * as grpc from '@grpc/grpc-js';
import { edge } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { grpcHealthCheck, healthService, ServingStatus } from './grpc-health.js';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite, waitFor } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let watcher: StatusWatcher;

type ProbeInit = MessageInitShape<typeof edge.ProbeSchema>;
/** A probe with the apiserver's defaults, fast. */
const probe = (
  handler: ProbeInit['handler'],
  over: { failureThreshold?: number; terminationGracePeriodSeconds?: bigint } = {},
): ProbeInit => ({
  handler,
  timeoutSeconds: 1,
  periodSeconds: 1,
  successThreshold: 1,
  failureThreshold: 3,
  ...over,
});
const exec = (...command: string[]): ProbeInit['handler'] => ({ case: 'exec', value: { command } });
const main = (r: edge.PodStatusReport) => r.containerStatuses[0];
const idOf = (r: edge.PodStatusReport) => main(r)!.containerId.replace(/^containerd:\/\//, '');
const waitingOf = (r: edge.PodStatusReport) =>
  main(r)?.state?.state.case === 'waiting' ? (main(r)!.state!.state.value as edge.ContainerState_Waiting) : undefined;
async function execIn(containerId: string, ...cmd: string[]): Promise<number> {
  return (await bed.exec(containerId, cmd)).code;
}

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start({ restartBackoffBaseMs: 1000, restartBackoffMaxMs: 8000 });
  ({ site, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('CrashLoopBackOff', () => {
  it(
    'restarts a crashing container at once, then after 1 s, 2 s, 4 s, reporting the kubelet message',
    async () => {
      const pod = podSpec({ hostNetwork: true, containers: [{ name: 'crash', image: BUSYBOX, command: ['sh', '-c', 'exit 1'] }] });
      await publishDesired(site.hubNc, site.node, pod);
      const restartAt = async (n: number) =>
        (
          await watcher.waitFor(
            pod.uid,
            (r) => ((main(r)?.restartCount ?? 0) >= n && main(r)?.state?.state.case === 'running') || (main(r)?.restartCount ?? 0) > n,
            60_000,
          )
        ).at;
      const msg = (d: string) => `back-off ${d} restarting failed container=crash pod=${pod.name}_default(${pod.uid})`;
      const backoffSeen = async (d: string) =>
        watcher.waitFor(pod.uid, (r) => waitingOf(r)?.reason === 'CrashLoopBackOff' && waitingOf(r)?.message === msg(d), 60_000);
      const b1 = await backoffSeen('1s');
      const r2 = await restartAt(2);
      const b2 = await backoffSeen('2s');
      const r3 = await restartAt(3);
      const b4 = await backoffSeen('4s');
      const r4 = await restartAt(4);
      expect(main(b1.report)!.lastState?.state).toMatchObject({ case: 'terminated', value: { exitCode: 1, reason: 'Error' } });
      const gap2 = r2 - b1.at;
      const gap3 = r3 - b2.at;
      const gap4 = r4 - b4.at;
      process.stdout.write(
        `crash loop: waits ${Math.round(gap2)} / ${Math.round(gap3)} / ${Math.round(gap4)} ms (backoff 1 s, 2 s, 4 s)\n`,
      );
      expect(gap3).toBeGreaterThan(gap2);
      expect(gap4).toBeGreaterThan(gap3);
      expect(gap4).toBeGreaterThan(3000);
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );
});

describe('probes', () => {
  it(
    'liveness exec failing: the container is killed and restarted (restartCount 1, lastState terminated)',
    async () => {
      const pod = podSpec({
        hostNetwork: true,
        containers: [
          {
            name: 'app',
            image: BUSYBOX,
            command: ['sh', '-c', 'touch /tmp/healthy; sleep 2; rm /tmp/healthy; exec sleep 3600'],
            livenessProbe: probe(exec('cat', '/tmp/healthy'), { failureThreshold: 2, terminationGracePeriodSeconds: 1n }),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const first = await watcher.waitFor(pod.uid, (r) => main(r)?.state?.state.case === 'running');
      const restarted = await watcher.waitFor(
        pod.uid,
        (r) => main(r)?.restartCount === 1 && main(r)?.state?.state.case === 'running',
        30_000,
      );
      expect(idOf(restarted.report)).not.toBe(idOf(first.report));
      expect(main(restarted.report)!.lastState?.state.case).toBe('terminated');
      const t = main(restarted.report)!.lastState!.state.value as edge.ContainerState_Terminated;
      expect([137, 143]).toContain(t.exitCode);
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'readiness exec failing, then recovering (file created through CRI ExecSync): ready false -> true -> false',
    async () => {
      const pod = podSpec({
        hostNetwork: true,
        containers: [
          {
            name: 'app',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            readinessProbe: probe(exec('test', '-f', '/tmp/ready'), { failureThreshold: 1 }),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const notReady = await watcher.waitFor(
        pod.uid,
        (r) => main(r)?.state?.state.case === 'running' && !main(r)!.ready && main(r)!.started,
      );
      expect(notReady.report.phase).toBe(edge.PodPhase.RUNNING);
      await new Promise((r) => setTimeout(r, 1500));
      expect(watcher.of(pod.uid).some((r) => main(r)?.ready)).toBe(false);
      const t0 = performance.now();
      expect(await execIn(idOf(notReady.report), 'touch', '/tmp/ready')).toBe(0);
      const ready = await watcher.waitFor(pod.uid, (r) => !!main(r)?.ready);
      process.stdout.write(`readiness: ready reported ${Math.round(ready.at - t0)} ms after the file appeared (period 1 s)\n`);
      expect(ready.at - t0).toBeLessThan(5000); // queued on the flip, not left to a periodic resync alone
      expect(main(ready.report)!.restartCount).toBe(0);
      expect(await execIn(idOf(notReady.report), 'rm', '/tmp/ready')).toBe(0);
      const n = watcher.of(pod.uid).length;
      await waitFor(
        'unready again',
        () =>
          watcher
            .of(pod.uid)
            .slice(n)
            .some((r) => main(r)?.ready === false),
        10_000,
      );
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'httpGet against busybox httpd on the pod IP, tcpSocket on its port; a 404 path is not ready',
    async () => {
      const httpd = ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];
      const good = podSpec({
        containers: [
          {
            name: 'web',
            image: BUSYBOX,
            command: httpd,
            readinessProbe: probe({
              case: 'httpGet',
              value: { path: '/index.html', port: 8080, scheme: 'HTTP', headers: [{ name: 'X-Probe', value: 'edge' }] },
            }),
            livenessProbe: probe({ case: 'tcpSocket', value: { port: 8080 } }),
          },
        ],
      });
      const bad = podSpec({
        containers: [
          {
            name: 'web',
            image: BUSYBOX,
            command: httpd,
            readinessProbe: probe({ case: 'httpGet', value: { path: '/missing', port: 8080, scheme: 'HTTP' } }),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, good);
      await publishDesired(site.hubNc, site.node, bad);
      const ready = await watcher.waitFor(good.uid, (r) => !!main(r)?.ready, 30_000);
      expect(ready.report.podIp).toMatch(/^10\.250\./);
      await watcher.waitFor(bad.uid, (r) => main(r)?.state?.state.case === 'running', 30_000);
      await new Promise((r) => setTimeout(r, 3000));
      expect(watcher.of(bad.uid).some((r) => main(r)?.ready)).toBe(false);
      // the tcpSocket liveness probe keeps succeeding: no restart
      expect(watcher.of(good.uid).every((r) => (main(r)?.restartCount ?? 0) === 0)).toBe(true);
      for (const p of [good, bad]) await publishTombstone(site.hubNc, site.node, p);
      for (const p of [good, bad]) await watcher.waitFor(p.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'a tcpSocket liveness probe on a closed port restarts the container',
    async () => {
      const pod = podSpec({
        containers: [
          {
            name: 'app',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            livenessProbe: probe({ case: 'tcpSocket', value: { port: 9 } }, { failureThreshold: 2, terminationGracePeriodSeconds: 1n }),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => (main(r)?.restartCount ?? 0) >= 1, 30_000);
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );

  it(
    'a startup probe gates readiness: not started and not ready until it succeeds',
    async () => {
      const pod = podSpec({
        hostNetwork: true,
        containers: [
          {
            name: 'app',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            startupProbe: probe(exec('test', '-f', '/tmp/started'), { failureThreshold: 60 }),
            readinessProbe: probe(exec('true')),
            livenessProbe: probe(exec('false'), { failureThreshold: 1 }), // would kill it at once if it ran before startup
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const running = await watcher.waitFor(pod.uid, (r) => main(r)?.state?.state.case === 'running');
      expect(main(running.report)).toMatchObject({ started: false, ready: false });
      await new Promise((r) => setTimeout(r, 2500));
      expect(watcher.of(pod.uid).some((r) => main(r)?.started || main(r)?.ready)).toBe(false);
      await execIn(idOf(running.report), 'touch', '/tmp/started');
      const started = await watcher.waitFor(pod.uid, (r) => !!main(r)?.started, 10_000);
      expect(idOf(started.report)).toBe(idOf(running.report));
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );
});

describe('grpc probes (a grpc-js health server on the host)', () => {
  let server: grpc.Server;
  let port = 0;
  let status = ServingStatus.SERVING;
  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(healthService, {
      Check: (call: grpc.ServerUnaryCall<string, number>, cb: grpc.sendUnaryData<number>) => {
        if (call.request !== '' && call.request !== 'edge') cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
        else cb(null, status);
      },
    });
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.tryShutdown(() => r()));
  });

  it(
    'the prober: SERVING is success, NOT_SERVING and errors are failures',
    async () => {
      status = ServingStatus.SERVING;
      expect(await grpcHealthCheck(`127.0.0.1:${port}`, 'edge', 1000, 'kube-probe/1.33')).toEqual({ result: 'success', output: '' });
      status = ServingStatus.NOT_SERVING;
      expect((await grpcHealthCheck(`127.0.0.1:${port}`, '', 1000, 'kube-probe/1.33')).result).toBe('failure');
      expect((await grpcHealthCheck(`127.0.0.1:${port}`, 'other', 1000, 'kube-probe/1.33')).output).toMatch(/health rpc probe failed/);
      expect((await grpcHealthCheck('127.0.0.1:1', '', 1000, 'kube-probe/1.33')).result).toBe('failure');
    },
    T,
  );

  it(
    'a hostNetwork pod with a grpc readiness probe follows the server: ready while SERVING',
    async () => {
      status = ServingStatus.SERVING;
      const pod = podSpec({
        hostNetwork: true,
        containers: [
          {
            name: 'app',
            image: BUSYBOX,
            command: ['sleep', '3600'],
            readinessProbe: probe({ case: 'grpc', value: { port, service: 'edge' } }, { failureThreshold: 1 }),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => !!main(r)?.ready, 30_000);
      status = ServingStatus.NOT_SERVING;
      const n = watcher.of(pod.uid).length;
      await waitFor(
        'unready',
        () =>
          watcher
            .of(pod.uid)
            .slice(n)
            .some((r) => main(r)?.ready === false),
        10_000,
      );
      await publishTombstone(site.hubNc, site.node, pod);
      await watcher.waitFor(pod.uid, (r) => r.removed);
    },
    T,
  );
});
