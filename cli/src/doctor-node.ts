/**
 * `edgefarm doctor NODE`, from the cloud: the node as the cluster sees it.
 *
 *   edgenode      the EdgeNode exists
 *   identity      the node joined; its credentials' expiry (warn under 2 days, fail when expired)
 *   connected     the provider sees its link; the heartbeat's age (warn over 6 minutes: the provider rewrites an
 *                 unchanged status every 5 minutes, not at each heartbeat)
 *   lag           desired - applied sequence (warn when behind)
 *   node          the Node exists and is Ready
 *   provider      the provider's pods in the fleet namespace are Running and Ready
 */
import { kube, nodeArg, type AdminContext } from './admin.js';
import { fail, ok, runChecks, skip, warn, type Check, type Finding } from './checks.js';
import { CREDENTIALS_WARN_MS } from './doctor-site.js';
import type { EdgeNodeView, NodeView } from './kube.js';
import { age, type Format } from './output.js';
import { statusRows } from './status.js';

export const PROVIDER_SELECTOR = 'app.kubernetes.io/name=edgefarm-provider';
/** The provider's statusRefreshMs (5 minutes) and a minute of slack. */
export const HEARTBEAT_WARN_MS = 6 * 60_000;

export async function doctorNode(ctx: AdminContext, name: string, format: Format): Promise<void> {
  nodeArg(name);
  let edgeNode: EdgeNodeView | undefined;
  let node: NodeView | undefined;
  const atSite = 'at the site: edgefarm doctor --dir /etc/edgefarm';
  const row = () => statusRows(edgeNode ? [edgeNode] : [], node ? [node] : [], ctx.now())[0];

  const checks: Check[] = [
    {
      name: 'edgenode',
      run: async () => {
        edgeNode = await kube('reading the EdgeNode', () => ctx.kube.getEdgeNode(name));
        node = await kube('reading the Node', () => ctx.kube.getNode(name));
        return edgeNode
          ? ok(`EdgeNode ${name} exists`)
          : fail(`no EdgeNode ${name}`, `edgefarm token create ${name}, then join the site (edgefarm join)`);
      },
    },
    {
      name: 'identity',
      run: async () => {
        const r = row();
        if (!r) return skip('no EdgeNode');
        if (!r.publicKey || !r.credentialsExpireAt)
          return fail('the node has not joined', `edgefarm token create ${name}, then edgefarm join at the site`);
        const left = Date.parse(r.credentialsExpireAt) - ctx.now();
        const key = `key ${r.publicKey.slice(0, 12)}...`;
        if (!(left > 0))
          return fail(`${key}: credentials expired at ${r.credentialsExpireAt}`, `edgefarm node revoke ${name}; a new token; join --force`);
        if (left < CREDENTIALS_WARN_MS)
          return warn(`${key}: credentials expire in ${age(left)}`, `the agent renews them: ${atSite} (registrar check)`);
        return ok(`${key}: credentials valid for ${age(left)}`);
      },
    },
    {
      name: 'connected',
      run: async () => {
        const r = row();
        if (!r) return skip('no EdgeNode');
        const beat = r.heartbeatAgeMs === null ? 'no heartbeat yet' : `last heartbeat ${age(r.heartbeatAgeMs)} ago`;
        if (!r.connected) return fail(`not connected (${beat})`, `${atSite}; the provider's log names the node`);
        if (r.heartbeatAgeMs === null || r.heartbeatAgeMs > HEARTBEAT_WARN_MS)
          return warn(`connected, ${beat}`, `is the agent running? ${atSite}`);
        return ok(`connected, ${beat}`);
      },
    },
    {
      name: 'lag',
      run: async () => {
        const r = row();
        if (!r) return skip('no EdgeNode');
        if (r.lag === null) return skip('no desired or applied sequence yet');
        const seqs = `desired ${r.desiredSequence}, applied ${r.appliedSequence}`;
        return r.lag > 0
          ? warn(`${r.lag} desired-state message(s) not applied yet (${seqs})`, `transient while connected; otherwise ${atSite}`)
          : ok(`caught up (${seqs})`);
      },
    },
    {
      name: 'node',
      run: async () => {
        if (!node) return fail(`no Node ${name}`, 'the provider registers it: see the provider check and its log');
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status !== 'True')
          return fail(
            `Ready is ${ready?.status ?? 'unset'}${ready?.message ? `: ${ready.message.slice(0, 120)}` : ''}`,
            `kubectl describe node ${name}; ${atSite}`,
          );
        return ok(`Node ${name} Ready`);
      },
    },
    {
      name: 'provider',
      run: async () => {
        const pods = await kube('listing the provider pods', () => ctx.kube.listPods(ctx.namespace, PROVIDER_SELECTOR));
        if (pods.length === 0)
          return fail(`no provider pods in ${ctx.namespace}`, `kubectl -n ${ctx.namespace} get deploy edgefarm-provider (the install)`);
        return pods.map((p): Finding => {
          const n = p.metadata?.name ?? '?';
          const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
          const phase = p.status?.phase ?? 'Unknown';
          return phase === 'Running' && ready
            ? ok(`${n} Running, Ready`)
            : fail(`${n} ${phase}${ready ? '' : ', not Ready'}`, `kubectl -n ${ctx.namespace} describe pod ${n}; kubectl logs`);
        });
      },
    },
  ];
  await runChecks(ctx, `edgefarm doctor: node ${name}`, checks, format);
}
