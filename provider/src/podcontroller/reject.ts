/**
 * A pod the edge cannot run (an unsupported volume, field or feature: translate.ts lists why) is rejected the way a
 * kubelet rejects a pod at admission: status Failed with reason EdgeUnsupported and the reasons in the message, and
 * one Warning Event. A rejected pod being deleted never ran at the edge, so its delete is finished at once.
 */
import type { Logger } from 'pino';
import type { KubeClient, Pod } from '../kube/client.js';
import type { PodWarnings } from './warnings.js';

export interface RejectDeps {
  kube: Pick<KubeClient, 'replacePodStatus' | 'deletePod'>;
  warnings: Pick<PodWarnings, 'warn'>;
}

export async function rejectUnsupported(deps: RejectDeps, pod: Pod, problems: string[], log: Logger): Promise<void> {
  const { namespace, name, uid } = pod.metadata!;
  const message = `the edge cannot run this pod: ${problems.join('; ')}`;
  if (pod.metadata!.deletionTimestamp) {
    await deps.kube.deletePod(namespace!, name!, { uid: uid!, gracePeriodSeconds: 0 });
    return;
  }
  if (pod.status?.phase !== 'Failed' || pod.status.reason !== 'EdgeUnsupported') {
    await deps.kube.replacePodStatus({ ...pod, status: { ...pod.status, phase: 'Failed', reason: 'EdgeUnsupported', message } });
  }
  if (await deps.warnings.warn(pod, 'EdgeUnsupported', 'EdgeUnsupported', message))
    log.warn({ problems }, 'pod rejected: unsupported at the edge');
}
