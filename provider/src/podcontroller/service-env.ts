/**
 * The kubelet's service environment variables (pkg/kubelet/envvars FromServices, kubelet_pods.go getServiceEnvVarMap,
 * v1.33), computed by the provider from a Service informer and sent in the desired pod (EdgePodSpec.service_env); the
 * agent gives them to each container at creation, under the container's envFrom and env.
 *
 * - Which Services: those with a cluster IP (not "None", not empty) in the pod's namespace when the pod's
 *   enableServiceLinks is true (the API's default), and the default namespace's `kubernetes` Service always (a
 *   `kubernetes` Service of the pod's own namespace wins over it, as in the kubelet's map).
 * - Which variables: <SVC>_SERVICE_HOST, <SVC>_SERVICE_PORT (first port), <SVC>_SERVICE_PORT_<NAME> (named ports), and
 *   the docker-link <SVC>_PORT, <SVC>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]; <SVC> is the name upper-cased, '-' and
 *   '.' as '_', '_' in front of a leading digit. Sorted by name, so the spec's fingerprint only changes with a value.
 * - Until the informer has listed once there is no answer (undefined): a pod translated then would miss variables for
 *   good (the kubelet refuses to build an environment then, too). A Service change queues the pods of its namespace
 *   (all pods, for `default/kubernetes`) through `changed`; the new values reach containers created after it: a change
 *   restarts nothing, as under a kubelet.
 */
import type { V1Service } from '@kubernetes/client-node';
import type { Watcher } from '../kube/client.js';

export interface EnvPair {
  name: string;
  value: string;
}

/** The master services the kubelet always adds, from the default namespace. */
const MASTER_NAMESPACE = 'default';
const MASTER_SERVICES = new Set(['kubernetes']);

function envName(s: string): string {
  const name = s.replaceAll('.', '_').replaceAll('-', '_').toUpperCase();
  return /^[0-9]/.test(name) ? `_${name}` : name;
}

/** Go's net.JoinHostPort: an address with a ':' (IPv6) is bracketed. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function hasClusterIp(svc: V1Service): boolean {
  const ip = svc.spec?.clusterIP ?? '';
  return ip !== '' && ip !== 'None';
}

/** FromServices for one Service (it has a cluster IP and at least one port). */
function variables(svc: V1Service, out: Map<string, string>): void {
  const ip = svc.spec!.clusterIP!;
  const ports = svc.spec?.ports ?? [];
  if (ports.length === 0) return; // the API refuses a ClusterIP Service without ports; never index ports[0] of none
  const prefix = envName(svc.metadata?.name ?? '');
  out.set(`${prefix}_SERVICE_HOST`, ip);
  const servicePort = `${prefix}_SERVICE_PORT`;
  out.set(servicePort, String(ports[0]!.port));
  for (const p of ports) if (p.name) out.set(`${servicePort}_${envName(p.name)}`, String(p.port));
  for (const [i, p] of ports.entries()) {
    const protocol = p.protocol || 'TCP';
    const url = `${protocol.toLowerCase()}://${hostPort(ip, p.port)}`;
    if (i === 0) out.set(`${prefix}_PORT`, url);
    const portPrefix = `${prefix}_PORT_${p.port}_${protocol.toUpperCase()}`;
    out.set(portPrefix, url);
    out.set(`${portPrefix}_PROTO`, protocol.toLowerCase());
    out.set(`${portPrefix}_PORT`, String(p.port));
    out.set(`${portPrefix}_ADDR`, ip);
  }
}

/**
 * The variables of a pod given the Services of its own namespace (`own`) and of the default namespace (`defaults`)
 * (getServiceEnvVarMap + FromServices), sorted by name.
 */
export function serviceEnvVars(own: Iterable<V1Service>, defaults: Iterable<V1Service>, enableServiceLinks: boolean): EnvPair[] {
  // As the kubelet: the master service of the default namespace, then (with service links) every Service of the
  // pod's namespace, which wins over a master service of the same name.
  const chosen = new Map<string, V1Service>();
  for (const svc of defaults) {
    const name = svc.metadata?.name ?? '';
    if (MASTER_SERVICES.has(name) && hasClusterIp(svc)) chosen.set(name, svc);
  }
  if (enableServiceLinks) for (const svc of own) if (hasClusterIp(svc)) chosen.set(svc.metadata?.name ?? '', svc);
  const out = new Map<string, string>();
  for (const svc of chosen.values()) variables(svc, out);
  return [...out.keys()].sort().map((name) => ({ name, value: out.get(name)! }));
}

/** The Service informer, indexed by namespace, answering {@link serviceEnvVars} for a pod. */
export class ServiceEnv {
  private readonly byNamespace = new Map<string, Map<string, V1Service>>();
  private listed = false;

  constructor(private readonly watch: Watcher<V1Service>) {}

  /**
   * Starts the informer; `changed` gets the namespace and name of every Service change after the first list. A first
   * list that fails (client-node's informer reports it and resolves anyway; the watch is opened again later) leaves no
   * answer until the informer delivers again: any cluster has default/kubernetes, so the relist delivers at least one.
   */
  async start(changed: (namespace: string, name: string) => void, error?: (err: unknown) => void): Promise<void> {
    let failed = false;
    const put = (svc: V1Service, present: boolean) => {
      this.index(svc, present);
      if (this.listed) changed(svc.metadata?.namespace ?? '', svc.metadata?.name ?? '');
      else if (failed) this.listed = true;
    };
    await this.watch.start({
      changed: (svc) => put(svc, true),
      deleted: (svc) => put(svc, false),
      error: (err) => {
        if (!this.listed) failed = true;
        error?.(err);
      },
    });
    // What the first list holds, whether or not the informer replayed it as adds.
    for (const svc of this.watch.list()) this.index(svc, true);
    if (!failed) this.listed = true;
  }

  private index(svc: V1Service, present: boolean): void {
    const ns = svc.metadata?.namespace ?? '';
    const name = svc.metadata?.name ?? '';
    let m = this.byNamespace.get(ns);
    if (present) {
      if (!m) this.byNamespace.set(ns, (m = new Map<string, V1Service>()));
      m.set(name, svc);
    } else if (m) {
      m.delete(name);
      if (m.size === 0) this.byNamespace.delete(ns);
    }
  }

  async stop(): Promise<void> {
    await this.watch.stop();
  }

  /** The variables of a pod, or undefined before the informer has listed once. */
  env(namespace: string, enableServiceLinks: boolean): EnvPair[] | undefined {
    if (!this.listed) return undefined;
    return serviceEnvVars(
      this.byNamespace.get(namespace)?.values() ?? [],
      this.byNamespace.get(MASTER_NAMESPACE)?.values() ?? [],
      enableServiceLinks,
    );
  }
}
