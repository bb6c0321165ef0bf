/**
 * Container lifecycle hooks (postStart, preStop) for the desired pod: exec, httpGet (named ports resolved against the
 * container's ports, as for probes) and sleep. The deprecated tcpSocket handler, which the kubelet accepts but fails
 * to run ("invalid handler"), is refused at admission instead of killing the container at every start.
 */
import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import type { V1Container, V1LifecycleHandler } from '@kubernetes/client-node';
import type { Report } from './container-runtime.js';

function handler(h: V1LifecycleHandler | undefined, c: V1Container, where: string, report: Report): edge.LifecycleHandler | undefined {
  if (!h) return undefined;
  const out = create(edge.LifecycleHandlerSchema);
  if (h.exec) out.handler = { case: 'exec', value: create(edge.ExecActionSchema, { command: h.exec.command ?? [] }) };
  else if (h.httpGet) {
    const g = h.httpGet;
    let port: number;
    if (typeof g.port === 'number') port = g.port;
    else if (/^\d+$/.test(String(g.port))) port = Number(g.port);
    else {
      const named = c.ports?.find((x) => x.name === g.port)?.containerPort;
      if (named === undefined) report(`${where}.httpGet.port`, `no container port named "${String(g.port)}"`);
      port = named ?? 0;
    }
    out.handler = {
      case: 'httpGet',
      value: create(edge.HttpGetActionSchema, {
        path: g.path ?? '',
        port,
        host: g.host ?? '',
        scheme: g.scheme ?? 'HTTP',
        headers: (g.httpHeaders ?? []).map((x) => ({ name: x.name, value: x.value })),
      }),
    };
  } else if (h.sleep) out.handler = { case: 'sleep', value: create(edge.SleepActionSchema, { seconds: BigInt(h.sleep.seconds) }) };
  else if (h.tcpSocket) report(where, 'tcpSocket hooks are not run (deprecated): use exec, httpGet or sleep');
  else report(where, 'a hook needs exec, httpGet or sleep');
  return out;
}

/** The container's postStart and preStop hooks for EdgeContainer (fields absent when the container has none). */
export function lifecycleHooks(
  c: V1Container,
  where: string,
  report: Report,
): { postStart?: edge.LifecycleHandler; preStop?: edge.LifecycleHandler } {
  const postStart = handler(c.lifecycle?.postStart, c, `${where}.lifecycle.postStart`, report);
  const preStop = handler(c.lifecycle?.preStop, c, `${where}.lifecycle.preStop`, report);
  return { ...(postStart ? { postStart } : {}), ...(preStop ? { preStop } : {}) };
}
