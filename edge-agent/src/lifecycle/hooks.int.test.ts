/**
 * postStart and preStop hooks against a real containerd (test/e2e/common/node/lifecycle_hook.go): an exec postStart
 * runs in the started container, httpGet hooks reach a server from the agent, preStop runs when the pod is deleted,
 * and a failing postStart kills the container, which is restarted.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { edge } from '@edgefarm/proto';
import { BUSYBOX, fieldsOf, podSpec, publishDesired, StatusWatcher, TestSite } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
let site: TestSite;
let watcher: StatusWatcher;
let bed: AgentBed;
let server: http.Server;
let port = 0;
const seen: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  bed = await AgentBed.start({ restartBackoffBaseMs: 500, restartBackoffMaxMs: 2000 });
  ({ site, watcher } = bed);
}, T);

afterAll(async () => {
  await bed?.stop();
  server?.close();
}, T);

const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses[0]?.state?.state.case === 'running';
const get = (path: string) => ({ handler: { case: 'httpGet' as const, value: { path, port, host: '127.0.0.1', scheme: 'HTTP' } } });
const exec = (...command: string[]) => ({ handler: { case: 'exec' as const, value: { command } } });

describe('lifecycle hooks with containerd', () => {
  it(
    'an exec postStart hook runs in the container after it starts',
    async () => {
      const spec = podSpec({
        containers: [
          { name: 'c', image: BUSYBOX, command: ['sh', '-c', 'sleep 3600'], postStart: exec('sh', '-c', 'echo poststart > /tmp/hook') },
        ],
      });
      await publishDesired(site.hubNc, site.node, spec);
      const { report } = await watcher.waitFor(spec.uid, running, 60_000);
      expect((await bed.exec(report.containerStatuses[0]!.containerId, ['cat', '/tmp/hook'])).out).toBe('poststart\n');
    },
    T,
  );

  it(
    'httpGet postStart and preStop hooks reach their server; preStop runs on deletion',
    async () => {
      const spec = podSpec({
        terminationGracePeriodSeconds: 10n,
        containers: [
          {
            name: 'c',
            image: BUSYBOX,
            command: ['sh', '-c', 'sleep 3600'],
            postStart: get('/echo?msg=poststart'),
            preStop: get('/echo?msg=prestop'),
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, spec);
      await watcher.waitFor(spec.uid, running, 60_000);
      expect(seen).toContain('/echo?msg=poststart');
      await publishDesired(
        site.hubNc,
        site.node,
        podSpec({ ...fieldsOf(spec), resourceVersion: '200', deleting: true, deletionGracePeriodSeconds: 10n }),
      );
      await watcher.waitFor(spec.uid, (r) => r.removed, 60_000);
      expect(seen).toContain('/echo?msg=prestop');
    },
    T,
  );

  it(
    'a failing postStart hook kills the container, which is restarted',
    async () => {
      const spec = podSpec({
        containers: [{ name: 'c', image: BUSYBOX, command: ['sh', '-c', 'sleep 3600'], postStart: exec('sh', '-c', 'exit 3') }],
      });
      await publishDesired(site.hubNc, site.node, spec);
      const { report } = await watcher.waitFor(spec.uid, (r) => (r.containerStatuses[0]?.restartCount ?? 0) >= 1, 60_000);
      expect(report.containerStatuses[0]!.lastState?.state.case).toBe('terminated');
    },
    T,
  );
});
