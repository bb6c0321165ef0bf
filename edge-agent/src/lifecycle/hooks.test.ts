/**
 * postStart and preStop hooks through the Reconciler over the memory runtime, as the kubelet runs them
 * (kuberuntime_container.go): postStart right after the start, a failure kills the container (FailedPostStartHook);
 * preStop before the stop, its time counted against the grace period (FailedPreStopHook when it fails).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { fieldsOf, podSpec } from '@edgefarm/testing';
import { keyOf, setup } from '../reconcile/reconciler.fixtures.js';

const exec = (...command: string[]) => ({ handler: { case: 'exec' as const, value: { command } } });

function hooked(lifecycle: { postStart?: object; preStop?: object }, grace = 30n) {
  const base = podSpec({ terminationGracePeriodSeconds: grace });
  const { name, image, command } = base.containers[0]!;
  return podSpec({ ...fieldsOf(base), containers: [create(edge.EdgeContainerSchema, { name, image, command, ...lifecycle })] });
}

describe('lifecycle hooks', () => {
  it('postStart exec runs in the container right after it starts', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = hooked({ postStart: exec('sh', '-c', 'echo poststart') });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const methods = t.runtime.calls.map((c) => c.method);
    const start = methods.indexOf('startContainer');
    expect(start).toBeGreaterThanOrEqual(0);
    expect(methods[start + 1]).toBe('execSync');
    const [id] = [...t.runtime.containers.keys()];
    expect(t.runtime.calls[start + 1]!.args.slice(0, 2)).toEqual([id, ['sh', '-c', 'echo poststart']]);
    expect(t.events.reasons()).not.toContain('FailedPostStartHook');
  });

  it('a failing postStart hook kills the container with FailedPostStartHook and a Warning Event', async () => {
    const t = setup();
    t.store.markSynced();
    t.runtime.execHandler = () => ({ exitCode: 1, stdout: '', stderr: 'nope', timedOut: false });
    const pod = hooked({ postStart: exec('false') });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    expect(t.events.events.filter((e) => e.reason === 'FailedPostStartHook')).toEqual([
      expect.objectContaining({ type: 'Warning', message: 'PostStartHook failed' }),
    ]);
    expect(t.events.events.filter((e) => e.reason === 'Killing').map((e) => e.message)).toEqual(['FailedPostStartHook']);
    expect(t.runtime.calls.some((x) => x.method === 'stopContainer')).toBe(true);
  });

  it('the kill after a failed postStart runs the preStop hook first, as every kill does', async () => {
    const t = setup();
    t.store.markSynced();
    t.runtime.execHandler = (_id, cmd) => ({ exitCode: cmd[0] === 'false' ? 1 : 0, stdout: '', stderr: '', timedOut: false });
    const pod = hooked({ postStart: exec('false'), preStop: exec('sh', '-c', 'echo prestop') });
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const calls = t.runtime.calls.filter((c) => c.method === 'execSync' || c.method === 'stopContainer');
    expect(calls.map((c) => [c.method, c.args[1]])).toEqual([
      ['execSync', ['false']],
      ['execSync', ['sh', '-c', 'echo prestop']],
      ['stopContainer', 30],
    ]);
  });

  it('preStop exec runs before the stop on deletion, its time taken from the grace period', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = hooked({ preStop: exec('sh', '-c', 'echo prestop') }, 30n);
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    const [id] = [...t.runtime.containers.keys()];
    t.runtime.execHandler = () => {
      t.clock.advance(5_000);
      return { exitCode: 0, stdout: '', stderr: '', timedOut: false };
    };
    t.runtime.calls.length = 0;
    t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', deleting: true, deletionGracePeriodSeconds: 30n }));
    await t.reconciler.sync(keyOf(pod));
    const calls = t.runtime.calls.filter((c) => c.method === 'execSync' || c.method === 'stopContainer');
    expect(calls.map((c) => [c.method, ...c.args.slice(0, 2)])).toEqual([
      ['execSync', id, ['sh', '-c', 'echo prestop']],
      ['stopContainer', id, 25],
    ]);
    expect(t.events.reasons()).not.toContain('FailedPreStopHook');
  });

  it('a failing preStop hook records FailedPreStopHook and the container is stopped all the same', async () => {
    const t = setup();
    t.store.markSynced();
    const pod = hooked({ preStop: exec('false') }, 30n);
    t.put(pod);
    await t.reconciler.sync(keyOf(pod));
    t.runtime.execHandler = () => ({ exitCode: 2, stdout: '', stderr: '', timedOut: false });
    t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', deleting: true, deletionGracePeriodSeconds: 30n }));
    await t.reconciler.sync(keyOf(pod));
    expect(t.events.events.filter((e) => e.reason === 'FailedPreStopHook')).toEqual([
      expect.objectContaining({ type: 'Warning', message: 'PreStopHook failed' }),
    ]);
    expect(t.runtime.containers.size).toBe(0);
  });

  it('httpGet hooks GET the path from the agent with User-Agent kube-lifecycle; any HTTP status is a success', async () => {
    const seen: { url: string; ua: string }[] = [];
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url ?? '', ua: String(req.headers['user-agent']) });
      res.statusCode = 500; // the kubelet does not look at the status of a hook's answer
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const t = setup();
      t.store.markSynced();
      const get = (path: string) => ({
        handler: { case: 'httpGet' as const, value: { path, port, host: '127.0.0.1', scheme: 'HTTP', headers: [] } },
      });
      const pod = hooked({ postStart: get('/echo?msg=poststart'), preStop: get('/echo?msg=prestop') });
      t.put(pod);
      await t.reconciler.sync(keyOf(pod));
      t.put(podSpec({ ...fieldsOf(pod), resourceVersion: '101', deleting: true, deletionGracePeriodSeconds: 30n }));
      await t.reconciler.sync(keyOf(pod));
      expect(seen).toEqual([
        { url: '/echo?msg=poststart', ua: 'kube-lifecycle/1.33' },
        { url: '/echo?msg=prestop', ua: 'kube-lifecycle/1.33' },
      ]);
      expect(t.events.reasons().filter((r) => r.startsWith('Failed'))).toEqual([]);
    } finally {
      server.close();
    }
  });
});
