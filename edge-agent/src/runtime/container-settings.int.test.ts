/**
 * Container runtime settings against a real containerd: resources in the container's cgroup (cgroup v1 here) and an
 * OOM kill, the effective security context seen from inside (CRI ExecSync), runAsNonRoot refused for a root image,
 * termination messages (file and FallbackToLogsOnError), and how fast an exit reaches the outbox.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { edge } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { podCgroupParent } from './cri-config.js';
import { BUSYBOX, podSpec, publishDesired, publishTombstone, StatusWatcher, TestSite } from '@edgefarm/testing';
import { AgentBed } from '@edgefarm/testing/agent-bed';

const T = 120_000;
const Mi = 1024n * 1024n;
let site: TestSite;
let watcher: StatusWatcher;

type ContainerInit = Exclude<MessageInitShape<typeof edge.EdgeContainerSchema>, edge.EdgeContainer>;
const running = (r: edge.PodStatusReport) => r.phase === edge.PodPhase.RUNNING && r.containerStatuses.every((c) => c.ready);
const idOf = (r: edge.PodStatusReport, name = 'main') =>
  r.containerStatuses.find((c) => c.name === name)!.containerId.replace(/^containerd:\/\//, '');
const terminatedOf = (r: edge.PodStatusReport, name = 'main') => {
  const s = r.containerStatuses.find((c) => c.name === name)?.state?.state;
  return s?.case === 'terminated' ? s.value : undefined;
};

async function sh(containerId: string, script: string): Promise<{ out: string; code: number; err: string }> {
  const r = await bed.exec(containerId, ['sh', '-c', script]);
  return { ...r, out: r.out.trim() };
}

/** Starts a one-container pod and waits until it runs; returns the spec and the container id. */
async function runPod(container: Omit<ContainerInit, 'name' | 'image'>, over: MessageInitShape<typeof edge.EdgePodSpecSchema> = {}) {
  const pod = podSpec({ containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], ...container }], ...over });
  await publishDesired(site.hubNc, site.node, pod);
  const r = await watcher.waitFor(pod.uid, running);
  return { pod, id: idOf(r.report) };
}

/** Capability sets and flags of the container's processes, from /proc/self/status. */
async function procStatus(id: string): Promise<Record<string, string>> {
  const { out } = await sh(id, 'cat /proc/self/status');
  return Object.fromEntries(out.split('\n').map((l) => l.split(/:\s*/, 2) as [string, string]));
}

let bed: AgentBed;

beforeAll(async () => {
  bed = await AgentBed.start();
  ({ site, watcher } = bed);
}, T);

afterAll(() => bed?.stop(), T);

describe('container resources (cgroup v1, cgroupfs)', () => {
  it(
    'cpu shares/quota/period, memory limit, memsw and oom_score_adj as the kubelet computes them',
    async () => {
      const { pod, id } = await runPod({
        resources: { cpuRequestMillis: 250n, cpuLimitMillis: 500n, memoryRequestBytes: 32n * Mi, memoryLimitBytes: 64n * Mi },
      });
      const rel = `${podCgroupParent({ podLogRoot: '', cgroupParent: site.agentConfig().cgroupParent }, pod.uid)}/${id}`;
      const cg = (ctl: string, file: string) => readFile(path.join('/sys/fs/cgroup', ctl, rel, file), 'utf8').then((s) => s.trim());
      expect(await cg('cpu', 'cpu.shares')).toBe('256');
      expect(await cg('cpu', 'cpu.cfs_quota_us')).toBe('50000');
      expect(await cg('cpu', 'cpu.cfs_period_us')).toBe('100000');
      expect(await cg('memory', 'memory.limit_in_bytes')).toBe(String(64n * Mi));
      if (existsSync(path.join('/sys/fs/cgroup/memory', rel, 'memory.memsw.limit_in_bytes'))) {
        expect(await cg('memory', 'memory.memsw.limit_in_bytes')).toBe(String(64n * Mi));
      }
      // Burstable: 1000 - 1000 * request / capacity (containerd runs with restrict_oom_score_adj, so never below its own)
      const want = 1000 - Math.trunc((1000 * 32 * 1024 * 1024) / os.totalmem());
      expect((await sh(id, 'cat /proc/1/oom_score_adj')).out).toBe(String(want));
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'BestEffort: 2 shares, no quota, oom_score_adj 1000',
    async () => {
      const { pod, id } = await runPod({});
      const rel = `${podCgroupParent({ podLogRoot: '', cgroupParent: site.agentConfig().cgroupParent }, pod.uid)}/${id}`;
      expect((await readFile(path.join('/sys/fs/cgroup/cpu', rel, 'cpu.shares'), 'utf8')).trim()).toBe('2');
      expect((await readFile(path.join('/sys/fs/cgroup/cpu', rel, 'cpu.cfs_quota_us'), 'utf8')).trim()).toBe('-1');
      expect((await sh(id, 'cat /proc/1/oom_score_adj')).out).toBe('1000');
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'a container past its memory limit is OOMKilled (exit 137)',
    async () => {
      const pod = podSpec({
        restartPolicy: edge.RestartPolicy.NEVER,
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            // the shell holds 100 MB in a variable: far past the 32Mi limit
            command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" x); echo survived ${#x}'],
            resources: { memoryLimitBytes: 32n * Mi },
          },
        ],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const r = await watcher.waitFor(pod.uid, (x) => !!terminatedOf(x), 30_000);
      const t = terminatedOf(r.report)!;
      expect({ reason: t.reason, exitCode: t.exitCode, phase: r.report.phase }).toEqual({
        reason: 'OOMKilled',
        exitCode: 137,
        phase: edge.PodPhase.FAILED,
      });
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );
});

describe('security context', () => {
  it(
    'runAsUser/runAsGroup/supplementalGroups, no_new_privs, RuntimeDefault seccomp',
    async () => {
      const { pod, id } = await runPod({
        securityContext: {
          runAsUser: 1000n,
          runAsGroup: 3000n,
          supplementalGroups: [4000n],
          allowPrivilegeEscalation: false,
          seccompProfile: 'RuntimeDefault',
        },
      });
      expect((await sh(id, 'id -u; id -g; id -G')).out.split('\n')).toEqual(['1000', '3000', '3000 4000']);
      const st = await procStatus(id);
      expect(st.NoNewPrivs).toBe('1');
      expect(st.Seccomp).toBe('2');
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'defaults: root from the image, privileges may escalate, no seccomp filter (Unconfined)',
    async () => {
      const { pod, id } = await runPod({});
      expect((await sh(id, 'id -u')).out).toBe('0');
      const st = await procStatus(id);
      expect(st.NoNewPrivs).toBe('0');
      expect(st.Seccomp).toBe('0');
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'readOnlyRootFilesystem: writes to / fail, the termination log stays writable',
    async () => {
      const { pod, id } = await runPod({ securityContext: { readOnlyRootFilesystem: true } });
      const w = await sh(id, 'touch /x');
      expect(w.code).not.toBe(0);
      expect(w.err).toMatch(/Read-only file system/);
      expect((await sh(id, 'echo ok > /dev/termination-log && cat /dev/termination-log')).out).toBe('ok');
      await publishTombstone(site.hubNc, site.node, pod);
    },
    T,
  );

  it(
    'capabilities: drop ALL leaves none (chown fails); add NET_ADMIN after drop ALL leaves only it',
    async () => {
      const a = await runPod({ securityContext: { capabilitiesDrop: ['ALL'] } });
      expect((await procStatus(a.id)).CapEff).toBe('0000000000000000');
      expect((await sh(a.id, 'touch /tmp/f && chown 1234 /tmp/f')).code).not.toBe(0);
      const b = await runPod({ securityContext: { capabilitiesDrop: ['ALL'], capabilitiesAdd: ['NET_ADMIN'] } });
      expect((await procStatus(b.id)).CapEff).toBe('0000000000001000'); // CAP_NET_ADMIN = 12
      await publishTombstone(site.hubNc, site.node, a.pod);
      await publishTombstone(site.hubNc, site.node, b.pod);
    },
    T,
  );

  it(
    'privileged: more capabilities than the default set and the host devices',
    async () => {
      const plain = await runPod({});
      const priv = await runPod({ securityContext: { privileged: true } });
      const capsOf = async (id: string) => BigInt(`0x${(await procStatus(id)).CapEff}`);
      expect(await capsOf(priv.id)).toBeGreaterThan(await capsOf(plain.id));
      expect((await sh(priv.id, 'test -e /dev/kmsg')).code).toBe(0);
      expect((await sh(plain.id, 'test -e /dev/kmsg')).code).not.toBe(0);
      await publishTombstone(site.hubNc, site.node, plain.pod);
      await publishTombstone(site.hubNc, site.node, priv.pod);
    },
    T,
  );

  it(
    'runAsNonRoot: a root image is refused with the kubelet message; runAsUser 0 too; runAsUser 1000 runs',
    async () => {
      const pod = podSpec({
        containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], securityContext: { runAsNonRoot: true } }],
      });
      await publishDesired(site.hubNc, site.node, pod);
      const r = await watcher.waitFor(
        pod.uid,
        (x) =>
          x.containerStatuses[0]?.state?.state.case === 'waiting' &&
          x.containerStatuses[0].state.state.value.reason === 'CreateContainerConfigError',
      );
      const w = r.report.containerStatuses[0]!.state!.state.value as edge.ContainerState_Waiting;
      expect(w.message).toBe(
        `container has runAsNonRoot and image will run as root (pod: "${pod.name}_${pod.namespace}(${pod.uid})", container: main)`,
      );

      const zero = podSpec({
        containers: [{ name: 'main', image: BUSYBOX, command: ['sleep', '3600'], securityContext: { runAsNonRoot: true, runAsUser: 0n } }],
      });
      await publishDesired(site.hubNc, site.node, zero);
      const z = await watcher.waitFor(
        zero.uid,
        (x) =>
          x.containerStatuses[0]?.state?.state.case === 'waiting' &&
          x.containerStatuses[0].state.state.value.reason === 'CreateContainerConfigError',
      );
      expect((z.report.containerStatuses[0]!.state!.state.value as edge.ContainerState_Waiting).message).toBe(
        `container's runAsUser breaks non-root policy (pod: "${zero.name}_${zero.namespace}(${zero.uid})", container: main)`,
      );

      const ok = await runPod({ securityContext: { runAsNonRoot: true, runAsUser: 1000n } });
      expect((await sh(ok.id, 'id -u')).out).toBe('1000');
      for (const p of [pod, zero, ok.pod]) await publishTombstone(site.hubNc, site.node, p);
    },
    T,
  );
});

describe('termination messages', () => {
  it(
    'File: the file written at terminationMessagePath; FallbackToLogsOnError: the log tail on failure; files gone with the pod',
    async () => {
      const file = podSpec({
        restartPolicy: edge.RestartPolicy.NEVER,
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sh', '-c', 'printf "bye now" > /tmp/msg; echo not-this; exit 3'],
            terminationMessagePath: '/tmp/msg',
          },
        ],
      });
      const logs = podSpec({
        restartPolicy: edge.RestartPolicy.NEVER,
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sh', '-c', 'for i in $(seq 1 100); do echo line $i; done; exit 2'],
            terminationMessagePolicy: 'FallbackToLogsOnError',
          },
        ],
      });
      const fileOk = podSpec({
        restartPolicy: edge.RestartPolicy.NEVER,
        containers: [
          {
            name: 'main',
            image: BUSYBOX,
            command: ['sh', '-c', 'echo from-log; exit 0'],
            terminationMessagePolicy: 'FallbackToLogsOnError',
          },
        ],
      });
      for (const p of [file, logs, fileOk]) await publishDesired(site.hubNc, site.node, p);

      const f = terminatedOf((await watcher.waitFor(file.uid, (x) => !!terminatedOf(x))).report)!;
      expect({ exitCode: f.exitCode, reason: f.reason, message: f.message }).toEqual({ exitCode: 3, reason: 'Error', message: 'bye now' });

      const l = terminatedOf((await watcher.waitFor(logs.uid, (x) => !!terminatedOf(x))).report)!;
      const lines = l.message.split('\n').filter(Boolean);
      expect(lines).toHaveLength(80);
      expect(lines[0]).toBe('line 21');
      expect(lines[79]).toBe('line 100');

      const o = terminatedOf((await watcher.waitFor(fileOk.uid, (x) => !!terminatedOf(x))).report)!;
      expect({ exitCode: o.exitCode, message: o.message }).toEqual({ exitCode: 0, message: '' }); // exit 0: no fallback

      const podDir = path.join(site.agentConfig().volumeRoot, file.uid);
      expect(existsSync(path.join(podDir, 'containers', 'main'))).toBe(true);
      for (const p of [file, logs, fileOk]) await publishTombstone(site.hubNc, site.node, p);
      await watcher.waitFor(file.uid, (x) => x.removed);
      await new Promise((r) => setTimeout(r, 500));
      expect(existsSync(podDir)).toBe(false);
    },
    T,
  );
});
