/**
 * API Priority and Fairness (manifests/base/provider-flowschema.yaml): the provider's Lease renewals and Node status go to
 * the `node-high` priority level as a kubelet's do, its pod traffic stays in `global-default`. The apiserver says
 * which FlowSchema classified a request in the `X-Kubernetes-PF-FlowSchema-UID` response header; kubectl -v=8 as the
 * provider (its own kubeconfig and client certificate) shows it.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { kubectl, layout, log } from './stack.js';

const run = promisify(execFile);

/** The FlowSchema that classified a GET of `path` made with the provider's credentials (its uid). */
async function flowSchemaAsProvider(providerKubeconfig: string, path: string): Promise<string> {
  // A refusal (404, 403) is classified too: its output is as good as a success's.
  const { stderr } = await run('kubectl', ['--kubeconfig', providerKubeconfig, 'get', '--raw', path, '-v=8'], {
    maxBuffer: 16 * 1024 * 1024,
  }).catch((err: { stderr?: string }) => ({ stderr: err.stderr ?? '' }));
  const m = /X-Kubernetes-Pf-Flowschema-Uid[":=\s]+([0-9a-f-]{36})/i.exec(stderr);
  if (!m) throw new Error(`no X-Kubernetes-PF-FlowSchema-UID header in kubectl -v=8 output for ${path}:\n${stderr.slice(-2000)}`);
  return m[1]!;
}

const uidOf = async (flowSchema: string) => (await kubectl('get', 'flowschema', flowSchema, '-o', 'jsonpath={.metadata.uid}')).trim();

test("the provider's Lease and Node status requests are served at node-high, its pod requests at global-default", async () => {
  const providerKubeconfig = await layout('echo "$EF_STATE/provider.kubeconfig"');
  const asProvider = (path: string) => flowSchemaAsProvider(providerKubeconfig, path);
  const liveness = await uidOf('edgefarm-provider-node-liveness');
  expect(
    await kubectl('get', 'flowschema', 'edgefarm-provider-node-liveness', '-o', 'jsonpath={.spec.priorityLevelConfiguration.name}'),
  ).toBe('node-high');
  expect(await asProvider('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/edge-1')).toBe(liveness);
  expect(await asProvider('/api/v1/nodes/edge-1/status')).toBe(liveness);
  expect(await asProvider('/api/v1/namespaces/default/pods?limit=1')).toBe(await uidOf('global-default'));
  log('provider: Lease and Node status at node-high (edgefarm-provider-node-liveness), pods at global-default');
});
