/**
 * Runs container lifecycle hooks (postStart, preStop) the way the kubelet's handlerRunner does
 * (pkg/kubelet/lifecycle/handlers.go):
 * - exec: CRI ExecSync in the container; a non-zero exit or a runtime error is a failure.
 * - httpGet: GET http(s)://<host or pod IP>:<port><path> (the probes' HTTP code, TLS not verified), User-Agent
 *   `kube-lifecycle/<major.minor>`; any HTTP answer is a success, only a failed request fails the hook.
 * - sleep: waits the given seconds.
 * Each run is bounded by `timeoutSec` (preStop: the grace period left); the failure messages are the kubelet's.
 */
import type { edge } from '@edgefarm/proto';
import { httpProbe } from '../probes/prober.js';
import type { PodRuntime } from '../runtime/types.js';
import { errorMessage } from '../util/time.js';

export interface HookTarget {
  containerId: string;
  /** The pod's IP (the node's for hostNetwork pods): httpGet's host when the hook sets none. */
  podIp: string;
}

export interface HookOutcome {
  ok: boolean;
  /** The kubelet's failure message ('' on success). */
  message: string;
}

export interface HookRunnerOptions {
  kubeVersion?: string;
}

/** Go's %v of a string slice: `[sh -c echo hi]`. */
const goList = (xs: readonly string[]): string => `[${xs.join(' ')}]`;

export class HookRunner {
  private readonly userAgent: string;

  constructor(
    private readonly runtime: Pick<PodRuntime, 'execSync'>,
    options: HookRunnerOptions = {},
  ) {
    this.userAgent = `kube-lifecycle/${options.kubeVersion ?? '1.33'}`;
  }

  async run(
    pod: Pick<edge.EdgePodSpec, 'name' | 'namespace' | 'uid'>,
    container: string,
    hook: edge.LifecycleHandler,
    target: HookTarget,
    timeoutSec: number,
  ): Promise<HookOutcome> {
    const podName = `${pod.name}_${pod.namespace}(${pod.uid})`;
    const timeout = Math.max(1, Math.trunc(timeoutSec));
    const h = hook.handler;
    switch (h.case) {
      case 'exec': {
        const cmd = h.value.command;
        let error: string;
        let output = '';
        try {
          const r = await this.runtime.execSync(target.containerId, cmd, timeout);
          if (r.timedOut) error = `command timed out after ${timeout}s`;
          else if (r.exitCode === 0) return { ok: true, message: '' };
          else error = `command '${cmd.join(' ')}' exited with ${r.exitCode}: ${r.stderr}`;
          output = `${r.stdout}${r.stderr}`;
        } catch (err) {
          error = errorMessage(err);
        }
        return {
          ok: false,
          message: `Exec lifecycle hook (${goList(cmd)}) for Container "${container}" in Pod "${podName}" failed - error: ${error}, message: ${JSON.stringify(output)}`,
        };
      }
      case 'httpGet': {
        const r = await httpProbe(h.value, h.value.host || target.podIp, timeout * 1000, this.userAgent, true);
        if (r.result === 'success') return { ok: true, message: '' };
        return {
          ok: false,
          message: `HTTP lifecycle hook (${h.value.path}) for Container "${container}" in Pod "${podName}" failed - error: ${r.output}`,
        };
      }
      case 'sleep': {
        const ms = Math.min(Number(h.value.seconds), timeout) * 1000;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
        return { ok: true, message: '' };
      }
      default:
        return { ok: false, message: `Cannot run handler: invalid handler: ${JSON.stringify(hook.handler.case ?? null)}` };
    }
  }
}
