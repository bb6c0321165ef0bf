/**
 * Memory of both halves during 100 MB through exec, measured apart: the agent runs as its own process (the built
 * edge-agent/dist/main.js, so run `tsc -b` first), the provider half in this one. Reports figures; asserts only
 * the transfer and the bounded buffering inside the provider's transport. EF_TEST_AGENT_PROF=<dir> writes a CPU
 * profile of the agent; EF_TEST_UP_CMD replaces the upload command (`wc -c`); EF_TEST_TRANSFER_MB sets the size (100),
 * to see whether the memory figures grow with it.
 */
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  BUSYBOX,
  podSpec,
  publishDesired,
  silentLogger,
  spawnLogged,
  StatusWatcher,
  TestSite,
  TEST,
  type ManagedProcess,
} from '@edgefarm/testing';
import { NatsEdgeStreams } from './nats-streams.js';

const T = 300_000;
const MB = 1024 * 1024;
/** Megabytes moved each way. */
const { transferMb: N, upCommand, agentProfileDir, logLevel } = TEST;
const DEFAULT_UP = 'wc -c';
const MAIN = path.resolve(import.meta.dirname, '../../../edge-agent/dist/main.js');
let site: TestSite;
let agent: ManagedProcess;
let watcher: StatusWatcher;
let streams: NatsEdgeStreams;
const pod = podSpec({ name: 'mem', containers: [{ name: 'shell', image: BUSYBOX, command: ['sleep', '3600'] }] });

async function procKb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
}

beforeAll(async () => {
  site = await TestSite.start();
  watcher = await new StatusWatcher(site.hubNc, site.node).start();
  const c = site.agentConfig();
  agent = spawnLogged(
    'edge-agent',
    process.execPath,
    [...(agentProfileDir ? ['--cpu-prof', '--cpu-prof-dir', agentProfileDir] : []), MAIN],
    {
      logFile: path.join(site.dir, 'agent-process.log'),
      env: {
        ...process.env,
        EF_NODE_NAME: c.nodeName,
        EF_SITE: c.site,
        EF_NATS_URL: c.natsUrl,
        EF_CRI_ENDPOINT: c.criEndpoint,
        EF_NODE_IP: c.nodeIp,
        EF_POD_LOG_DIR: c.podLogRoot,
        EF_VOLUME_DIR: c.volumeRoot,
        EF_CGROUP_PARENT: c.cgroupParent,
        EF_METRICS_ADDR: 'off',
        EF_LOG_LEVEL: logLevel ?? 'info',
      },
    },
  );
  streams = new NatsEdgeStreams({ nc: site.hubNc, log: silentLogger(), offlineSince: () => undefined });
  await publishDesired(site.hubNc, site.node, pod);
  await watcher.waitFor(pod.uid, (r) => r.containerStatuses[0]?.state?.state.case === 'running', 60_000);
}, T);

afterAll(async () => {
  await watcher?.stop();
  await agent?.stop();
  await site?.stop();
}, T);

it(
  `moves ${N} MB each way through exec; reports memory of the provider half and of the agent process`,
  async () => {
    const ref = { node: site.node, namespace: 'default', pod: 'mem', container: 'shell' };
    const before = { provider: process.memoryUsage().rss, agent: (await procKb(agent.pid, 'VmRSS')) * 1024 };
    const peak = { ...before };
    const sampler = setInterval(() => {
      peak.provider = Math.max(peak.provider, process.memoryUsage().rss);
      void procKb(agent.pid, 'VmRSS').then(
        (kb) => (peak.agent = Math.max(peak.agent, kb * 1024)),
        () => undefined,
      );
    }, 100);
    try {
      const up = await streams.exec(ref, ['sh', '-c', upCommand], {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
      });
      const upOut = (async () => {
        let s = '';
        for await (const c of up.stdout!) s += Buffer.from(c).toString();
        return s;
      })();
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let t0 = performance.now();
      for (let sent = 0; sent < N * MB; sent += chunk.length) await up.writeStdin(chunk);
      await up.closeStdin();
      expect(await up.done).toEqual({ exitCode: 0 });
      // wc -c proves every byte arrived (a plain `sh -c 'cat > /dev/null'`, which busybox sh execs, was seen to exit 0
      // after a few MB inside the container, ending the session early; with `; echo` after it, it read everything)
      if (upCommand === DEFAULT_UP) expect((await upOut).trim()).toBe(String(N * MB));
      const upS = (performance.now() - t0) / 1000;
      const down = await streams.exec(ref, ['dd', 'if=/dev/zero', 'bs=65536', `count=${N * 16}`], {
        stdin: false,
        stdout: true,
        stderr: false,
        tty: false,
      });
      t0 = performance.now();
      let got = 0;
      for await (const c of down.stdout!) got += c.length;
      expect(await down.done).toEqual({ exitCode: 0 });
      const downS = (performance.now() - t0) / 1000;
      expect(got).toBe(N * MB);
      const sandboxStats = await site.containerd!.runtime.listPodSandboxStats({}).then(
        () => 'implemented',
        (err: Error) => err.message,
      );
      process.stdout.write(
        `${N} MB via exec, agent in its own process: up ${(N / upS).toFixed(1)} MB/s (${upCommand}), down ${(N / downS).toFixed(1)} MB/s (dd bs=64k); ` +
          `provider RSS ${(before.provider / MB).toFixed(0)} -> peak ${(peak.provider / MB).toFixed(0)} MB (heap ${(process.memoryUsage().heapUsed / MB).toFixed(0)} MB), ` +
          `agent RSS ${(before.agent / MB).toFixed(0)} -> peak ${(peak.agent / MB).toFixed(0)} MB (VmHWM ${((await procKb(agent.pid, 'VmHWM')) / 1024).toFixed(0)} MB); ` +
          `provider max buffered ${streams.counters.maxBufferedBytes} B; CRI ListPodSandboxStats: ${sandboxStats}\n`,
      );
      expect(streams.counters.maxBufferedBytes).toBeLessThanOrEqual(MB);
    } finally {
      clearInterval(sampler);
    }
  },
  T,
);
