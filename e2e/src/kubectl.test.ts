/**
 * kubectl logs/exec/attach/port-forward/cp and the node stats on an edge pod, through the real apiserver: kubectl
 * speaks WebSocket v5 to the apiserver, the apiserver SPDY/3.1 to the provider's kubelet API (its client
 * certificate), the provider NATS to the site's agent, the agent CRI/SPDY to containerd. Also: an offline node
 * fails fast with a clear error, the kubelet API refuses anonymous (401) and unauthorized (403) callers.
 * Figures (throughput, first-byte latency, provider RSS) are printed, never asserted (a shared 2-core machine).
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import {
  applyObject,
  BUSYBOX,
  EDGE_PLACEMENT,
  eventually,
  hack,
  kubeconfig,
  kubectl,
  kubectlJson,
  log,
  servingProviderPid,
  type PodObj,
} from './stack.js';

jest.setTimeout(10 * 60_000);

const POD = 'kubectl-e2e';
let dir: string;

/** Runs kubectl; resolves with its exit code and output (never rejects on a non-zero exit). */
async function kc(args: string[], input?: Buffer | string): Promise<{ code: number; stdout: Buffer; stderr: string; ms: number }> {
  const env = { ...process.env, KUBECONFIG: await kubeconfig() };
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', args, { env });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err, ms: Date.now() - t0 }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
  });
}

/** Starts kubectl and resolves once its output matches; the caller kills it. */
async function kcUntil(args: string[], pattern: RegExp, timeoutMs = 60_000, input?: string) {
  const env = { ...process.env, KUBECONFIG: await kubeconfig() };
  const t0 = Date.now();
  const child = spawn('kubectl', args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let firstByteMs: number | undefined;
  child.stdin.on('error', () => undefined);
  if (input !== undefined) child.stdin.write(input);
  const matched = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`kubectl ${args.join(' ')}: no ${pattern} within ${timeoutMs} ms; output: ${out}`)),
      timeoutMs,
    );
    const on = (c: Buffer) => {
      firstByteMs ??= Date.now() - t0;
      out += c.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', () => reject(new Error(`kubectl ${args.join(' ')} ended: ${out}`)));
  });
  return { child, matched, output: () => out, firstByteMs: firstByteMs ?? 0 };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ef-kubectl-'));
  await applyObject({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD, namespace: 'default', labels: { e2e: 'kubectl' } },
    spec: {
      ...EDGE_PLACEMENT,
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: BUSYBOX,
          command: ['sh', '-c', 'echo line1; echo line2; echo line3; i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done'],
        },
        {
          name: 'web',
          image: BUSYBOX,
          command: ['sh', '-c', 'mkdir -p /www && echo hello-edge > /www/index.html && exec httpd -f -p 8080 -h /www'],
        },
        { name: 'echo', image: BUSYBOX, stdin: true, command: ['sh', '-c', 'while read l; do echo got:$l; done'] },
        { name: 'crash', image: BUSYBOX, command: ['sh', '-c', 'echo run-at-$(date +%s); sleep 3; exit 1'] },
      ],
    },
  });
  await eventually(`${POD} running`, 180_000, async () => {
    const p = await kubectlJson<PodObj>('get', 'pod', POD);
    return p.status?.phase === 'Running' ? p : undefined;
  });
});

afterAll(async () => {
  await hack('fault.sh', 'heal', 'edge-1').catch(() => undefined);
  await kubectl('delete', 'pod', POD, '--wait=false', '--ignore-not-found').catch(() => undefined);
  await kubectl('delete', 'serviceaccount', 'e2e-nobody', '--ignore-not-found').catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

describe('kubectl logs', () => {
  test('whole log, --tail, --timestamps, --since', async () => {
    // The three lines, then a tick a second: wait for two ticks, which --tail=2 below expects.
    const all = await eventually('log lines', 30_000, async () => {
      const out = (await kc(['logs', POD, '-c', 'app'])).stdout.toString();
      return out.includes('line3') && (out.match(/^tick \d+$/gm) ?? []).length >= 2 ? out : undefined;
    });
    expect(all.startsWith('line1\nline2\nline3\n')).toBe(true);
    expect((await kc(['logs', POD, '-c', 'app', '--tail=1'])).stdout.toString()).toMatch(/^tick \d+\n$/);
    const ts = (await kc(['logs', POD, '-c', 'app', '--timestamps', '--tail=2'])).stdout.toString().trim().split('\n');
    for (const l of ts) expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z tick \d+$/);
    expect((await kc(['logs', POD, '-c', 'app', '--since=1h'])).stdout.toString()).toContain('line1');
    expect((await kc(['logs', POD, '-c', 'app', '--since=1s'])).stdout.toString()).not.toContain('line1');
    // Round trips, each with kubectl's own start: a plain API read as the baseline, then logs and exec.
    const ms = async (args: string[]) => (await kc(args)).ms;
    const [get, logs, exec] = [
      await ms(['get', 'pod', POD]),
      await ms(['logs', POD, '-c', 'app', '--tail=1']),
      await ms(['exec', POD, '-c', 'app', '--', 'true']),
    ];
    log(`[e2e] kubectl round trips: get pod ${get} ms, logs --tail=1 ${logs} ms, exec true ${exec} ms`);
  });

  test('-f streams new lines as they come', async () => {
    const f = await kcUntil(['logs', '-f', POD, '-c', 'app', '--tail=0'], /tick (\d+)\n[^]*tick (\d+)\n/);
    f.child.kill();
    log(`[e2e] kubectl logs -f: first byte after ${f.firstByteMs} ms (includes kubectl start and one tick of up to 1 s)`);
    expect(Number(f.matched[2])).toBe(Number(f.matched[1]) + 1);
  });

  test('--previous shows the log of the restarted container', async () => {
    await eventually('crash restarted', 120_000, async () => {
      const p = await kubectlJson<PodObj & { status: { containerStatuses?: { name: string; restartCount: number }[] } }>('get', 'pod', POD);
      return (p.status.containerStatuses?.find((c) => c.name === 'crash')?.restartCount ?? 0) >= 1 ? true : undefined;
    });
    const prev = await kc(['logs', POD, '-c', 'crash', '--previous']);
    expect(prev.stderr).toBe('');
    expect(prev.stdout.toString()).toMatch(/^run-at-\d+\n$/);
  });
});

describe('kubectl exec and attach', () => {
  test('runs a command, passes stdin, reports the exit code', async () => {
    expect((await kc(['exec', POD, '-c', 'app', '--', 'echo', 'hello', 'edge'])).stdout.toString()).toBe('hello edge\n');
    const cat = await kc(['exec', '-i', POD, '-c', 'app', '--', 'sh', '-c', 'cat; echo done'], 'from stdin\n');
    expect(cat.stdout.toString()).toBe('from stdin\ndone\n');
    const failed = await kc(['exec', POD, '-c', 'app', '--', 'sh', '-c', 'echo bad >&2; exit 3']);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toContain('bad');
  });

  test('exec -t gets a terminal', async () => {
    // kubectl asks for a TTY only when its own stdin is one: run it under script(1).
    const env = { ...process.env, KUBECONFIG: await kubeconfig() };
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('script', ['-qec', `kubectl exec -it ${POD} -c app -- sh -c 'tty; stty size'`, '/dev/null'], { env });
      let s = '';
      child.stdout.on('data', (c: Buffer) => (s += c.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(s));
      child.stdin.end();
    });
    expect(out).toMatch(/\/dev\/pts\/\d+/);
  });

  test('attach reaches the running process', async () => {
    const a = await kcUntil(['attach', '-i', POD, '-c', 'echo'], /got:ping/, 30_000, 'ping\n');
    a.child.kill();
    expect(a.output()).toContain('got:ping');
  });
});

describe('kubectl port-forward and cp', () => {
  test('port-forward serves an HTTP request', async () => {
    const pf = await kcUntil(['port-forward', `pod/${POD}`, ':8080'], /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/);
    try {
      const res = await fetch(`http://127.0.0.1:${pf.matched[1]}/index.html`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('hello-edge\n');
    } finally {
      pf.child.kill();
    }
  });

  test('cp of 100 MB both ways', async () => {
    const size = 100 * 1024 * 1024;
    const data = randomBytes(size);
    const src = path.join(dir, 'big.bin');
    await writeFile(src, data);
    const sha = createHash('sha256').update(data).digest('hex');
    const pid = await servingProviderPid('edge-1');
    const rss = async () => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    const rssBefore = await rss();
    let maxRss = 0;
    const sampler = setInterval(() => {
      void rss()
        .then((kb) => (maxRss = Math.max(maxRss, kb)))
        .catch(() => undefined);
    }, 200);
    try {
      const up = await kc(['cp', src, `default/${POD}:/tmp/big.bin`, '-c', 'app']);
      expect(up.stderr).toBe('');
      const inPod = await kc(['exec', POD, '-c', 'app', '--', 'sha256sum', '/tmp/big.bin']);
      expect(inPod.stdout.toString().split(' ')[0]).toBe(sha);
      const back = path.join(dir, 'back.bin');
      const down = await kc(['cp', `default/${POD}:/tmp/big.bin`, back, '-c', 'app']);
      expect(
        createHash('sha256')
          .update(await readFile(back))
          .digest('hex'),
      ).toBe(sha);
      log(
        `[e2e] kubectl cp 100 MiB: to the pod ${up.ms} ms (${(100 / (up.ms / 1000)).toFixed(1)} MiB/s), from the pod ${down.ms} ms (${(100 / (down.ms / 1000)).toFixed(1)} MiB/s); serving provider RSS ${(rssBefore / 1024).toFixed(0)} MiB before, at most ${(maxRss / 1024).toFixed(0)} MiB during`,
      );
    } finally {
      clearInterval(sampler);
      await kc(['exec', POD, '-c', 'app', '--', 'rm', '-f', '/tmp/big.bin']);
    }
  });
});

describe('node stats through the apiserver node proxy', () => {
  test('/stats/summary and /metrics/resource', async () => {
    const summary = JSON.parse(await kubectl('get', '--raw', '/api/v1/nodes/edge-1/proxy/stats/summary')) as {
      node: { nodeName: string };
      pods: { podRef: { name: string } }[];
    };
    expect(summary.node.nodeName).toBe('edge-1');
    expect(summary.pods.map((p) => p.podRef.name)).toContain(POD);
    const metrics = await kubectl('get', '--raw', '/api/v1/nodes/edge-1/proxy/metrics/resource');
    expect(metrics).toMatch(/^node_cpu_usage_seconds_total [\d.e+]+ \d+$/m);
    expect(metrics).toMatch(new RegExp(`^container_cpu_usage_seconds_total\\{container="app",namespace="default",pod="${POD}"\\} `, 'm'));
    expect(metrics).toMatch(/^resource_scrape_error 0$/m);
  });
});

/** GET on the node's kubelet endpoint straight (no apiserver), with an optional bearer token. */
async function kubeletGet(node: string, urlPath: string, token?: string): Promise<{ status: number; body: string }> {
  const n = await kubectlJson<{
    status: { addresses: { type: string; address: string }[]; daemonEndpoints: { kubeletEndpoint: { Port: number } } };
  }>('get', 'node', node);
  const host = n.status.addresses.find((a) => a.type === 'InternalIP')!.address;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port: n.status.daemonEndpoints.kubeletEndpoint.Port,
        path: urlPath,
        rejectUnauthorized: false,
        agent: false,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('kubelet API auth', () => {
  test('anonymous gets 401, a ServiceAccount without rights 403', async () => {
    const anon = await kubeletGet('edge-1', '/pods');
    expect(anon.status).toBe(401);
    expect(JSON.parse(anon.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: 401 });
    await kubectl('create', 'serviceaccount', 'e2e-nobody');
    const token = (await kubectl('create', 'token', 'e2e-nobody')).trim();
    const denied = await kubeletGet('edge-1', `/containerLogs/default/${POD}/app`, token);
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
  });
});

describe('an offline node', () => {
  test('logs and exec fail fast with a clear error', async () => {
    await hack('fault.sh', 'partition', 'edge-1');
    try {
      const logs = await kc(['logs', POD, '-c', 'app']);
      expect(logs.code).not.toBe(0);
      expect(logs.stderr).toMatch(/edge node edge-1 is (disconnected|not connected)/);
      const exec = await kc(['exec', POD, '-c', 'app', '--', 'true']);
      expect(exec.code).not.toBe(0);
      expect(exec.stderr).toMatch(/edge node edge-1 is (disconnected|not connected)/);
      log(`[e2e] offline node: kubectl logs failed after ${logs.ms} ms, kubectl exec after ${exec.ms} ms (kubectl start included)`);
    } finally {
      await hack('fault.sh', 'heal', 'edge-1');
    }
  });
});
