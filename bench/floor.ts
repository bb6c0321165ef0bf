/**
 * The floor for pod startup: the raw CRI calls the agent makes for one hostNetwork busybox pod (RunPodSandbox,
 * CreateContainer, StartContainer), made directly against the site's containerd at the same pace as the pods.
 */
import { cri } from '@edgefarm/proto';
import { criClients } from '@edgefarm/cri';
import { nowMs, sleep } from './stats.js';

export const BUSYBOX = 'docker.io/edgefarm/busybox:1.35';

/** Milliseconds from RunPodSandbox sent to StartContainer returned (container running), one per sequence. */
export async function criFloor(
  sock: string,
  n: number,
  ratePerS: number,
  logRoot: string,
  beforeCleanup?: () => Promise<unknown>,
): Promise<number[]> {
  const { runtime } = criClients(sock, 30_000);
  const run = Date.now();
  const sandboxes: string[] = [];
  const node = { network: cri.NamespaceMode.NODE, pid: cri.NamespaceMode.CONTAINER };
  const one = async (i: number): Promise<number> => {
    const uid = `bench-raw-${run}-${i}`;
    const config = {
      metadata: { name: uid, namespace: 'bench', uid, attempt: 0 },
      hostname: '',
      logDirectory: `${logRoot}/${uid}`,
      linux: { securityContext: { namespaceOptions: node } },
    };
    const t0 = nowMs();
    const { podSandboxId } = await runtime.runPodSandbox({ config });
    sandboxes.push(podSandboxId);
    const { containerId } = await runtime.createContainer({
      podSandboxId,
      config: {
        metadata: { name: 'main', attempt: 0 },
        image: { image: BUSYBOX },
        command: ['sleep', '3600'],
        logPath: 'main.log',
        linux: { securityContext: { namespaceOptions: node } },
      },
      sandboxConfig: config,
    });
    await runtime.startContainer({ containerId });
    return nowMs() - t0;
  };
  try {
    const start = nowMs();
    const pending: Promise<number>[] = [];
    for (let i = 0; i < n; i++) {
      await sleep(Math.max(0, start + (i * 1000) / ratePerS - nowMs()));
      pending.push(one(i));
    }
    const out = await Promise.all(pending);
    await beforeCleanup?.();
    return out;
  } finally {
    for (const id of sandboxes) {
      await runtime.stopPodSandbox({ podSandboxId: id }).catch(() => undefined);
      await runtime.removePodSandbox({ podSandboxId: id }).catch(() => undefined);
    }
    runtime.close();
  }
}

/**
 * Waits until the site's containerd holds no sandbox of the pods named `<prefix>...` in `namespace` (the agent has
 * torn them down), so what runs next does not share the machine with their teardown. False after `timeoutMs`.
 */
export async function sandboxesGone(sock: string, namespace: string, prefix: string, timeoutMs = 120_000): Promise<boolean> {
  const { runtime } = criClients(sock, 10_000);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const { items } = await runtime.listPodSandbox({ filter: { labelSelector: { 'io.kubernetes.pod.namespace': namespace } } });
      if (!items.some((s) => s.metadata?.name.startsWith(prefix))) return true;
      await sleep(250);
    }
    return false;
  } finally {
    runtime.close();
  }
}
