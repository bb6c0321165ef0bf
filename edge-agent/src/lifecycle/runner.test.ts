import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { HookRunner } from './hooks.js';

const pod = { name: 'p', namespace: 'ns', uid: 'u1' };
const target = { containerId: 'cid', podIp: '127.0.0.1' };
const hook = (h: Parameters<typeof create<typeof edge.LifecycleHandlerSchema>>[1]) => create(edge.LifecycleHandlerSchema, h);

describe('HookRunner', () => {
  it('exec: exit 0 is a success; the command runs in the container with the timeout', async () => {
    const calls: unknown[] = [];
    const runner = new HookRunner({
      execSync: (id, cmd, timeoutSec) => {
        calls.push([id, cmd, timeoutSec]);
        return Promise.resolve({ exitCode: 0, stdout: 'ok', stderr: '', timedOut: false });
      },
    });
    const out = await runner.run(pod, 'c', hook({ handler: { case: 'exec', value: { command: ['sh', '-c', 'true'] } } }), target, 30);
    expect(out).toEqual({ ok: true, message: '' });
    expect(calls).toEqual([['cid', ['sh', '-c', 'true'], 30]]);
  });

  it("exec: a non-zero exit fails with the kubelet's message", async () => {
    const runner = new HookRunner({ execSync: () => Promise.resolve({ exitCode: 1, stdout: '', stderr: 'nope', timedOut: false }) });
    const out = await runner.run(pod, 'c', hook({ handler: { case: 'exec', value: { command: ['false'] } } }), target, 5);
    expect(out).toEqual({
      ok: false,
      message: `Exec lifecycle hook ([false]) for Container "c" in Pod "p_ns(u1)" failed - error: command 'false' exited with 1: nope, message: "nope"`,
    });
  });

  it('exec: a runtime error fails the hook', async () => {
    const runner = new HookRunner({ execSync: () => Promise.reject(new Error('container not running')) });
    const out = await runner.run(pod, 'c', hook({ handler: { case: 'exec', value: { command: ['x'] } } }), target, 5);
    expect(out.ok).toBe(false);
    expect(out.message).toContain('error: container not running');
  });

  it('httpGet: a request that fails is a failure with the path in the message', async () => {
    const runner = new HookRunner({ execSync: () => Promise.reject(new Error('unused')) });
    const h = hook({ handler: { case: 'httpGet', value: { path: '/echo', port: 1, host: '127.0.0.1', scheme: 'HTTP' } } });
    const out = await runner.run(pod, 'c', h, target, 5);
    expect(out.ok).toBe(false);
    expect(out.message).toMatch(
      /^HTTP lifecycle hook \(\/echo\) for Container "c" in Pod "p_ns\(u1\)" failed - error: Get "http:\/\/127\.0\.0\.1:1\/echo": /,
    );
  });

  it('sleep 0 returns; a hook without a handler fails', async () => {
    const runner = new HookRunner({ execSync: () => Promise.reject(new Error('unused')) });
    expect(await runner.run(pod, 'c', hook({ handler: { case: 'sleep', value: { seconds: 0n } } }), target, 5)).toEqual({
      ok: true,
      message: '',
    });
    expect((await runner.run(pod, 'c', hook({}), target, 5)).ok).toBe(false);
  });
});
