/**
 * The pod's /etc/hosts, managed as the kubelet manages it (pkg/kubelet/kubelet_pods.go makeHostsMount,
 * managedHostsFileContent, nodeHostsFileContent): a file per pod, bind-mounted at /etc/hosts of every container that
 * does not mount /etc/hosts itself. A pod with its own network gets the localhost lines, its IPs with its hostname
 * (and FQDN, with a subdomain), then its hostAliases; a hostNetwork pod gets the node's /etc/hosts under its own
 * header, then its hostAliases. The pod's IPs are known once its sandbox is up: the file is written when a container
 * is created.
 */
import { readFile } from 'node:fs/promises';
import type { edge } from '@edgefarm/proto';
import type { ContainerMount } from '../runtime/types.js';

export const ETC_HOSTS = '/etc/hosts';
export const MANAGED_HEADER = '# Kubernetes-managed hosts file.\n';
export const MANAGED_HEADER_HOST_NETWORK = '# Kubernetes-managed hosts file (host network).\n';
/** The cluster's DNS domain (the kubelet's clusterDomain): a pod with a subdomain is named `<hostname>.<subdomain>.<ns>.svc.<domain>`. */
export const CLUSTER_DOMAIN = 'cluster.local';

/** The kubelet's hostsEntriesFromHostAliases: a blank line, a header, one line per IP with its names tab-separated. */
export function hostAliasEntries(aliases: readonly Pick<edge.HostAlias, 'ip' | 'hostnames'>[]): string {
  if (aliases.length === 0) return '';
  return `\n# Entries added by HostAliases.\n${aliases.map((a) => `${a.ip}\t${a.hostnames.join('\t')}\n`).join('')}`;
}

/** The kubelet's managedHostsFileContent. `domain`: the pod's host domain ('' without a subdomain). */
export function managedHostsContent(
  podIps: readonly string[],
  hostname: string,
  domain: string,
  aliases: readonly Pick<edge.HostAlias, 'ip' | 'hostnames'>[],
): string {
  let out =
    MANAGED_HEADER +
    '127.0.0.1\tlocalhost\n' +
    '::1\tlocalhost ip6-localhost ip6-loopback\n' +
    'fe00::0\tip6-localnet\n' +
    'fe00::0\tip6-mcastprefix\n' +
    'fe00::1\tip6-allnodes\n' +
    'fe00::2\tip6-allrouters\n';
  for (const ip of podIps) out += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  return out + hostAliasEntries(aliases);
}

/** The kubelet's nodeHostsFileContent: the node's own /etc/hosts under the host-network header, then the aliases. */
export function nodeHostsContent(nodeHosts: string, aliases: readonly Pick<edge.HostAlias, 'ip' | 'hostnames'>[]): string {
  return MANAGED_HEADER_HOST_NETWORK + nodeHosts + hostAliasEntries(aliases);
}

/** The pod's hostname and host domain as the kubelet's GeneratePodHostNameAndDomain gives them. */
export function podHostNameAndDomain(pod: edge.EdgePodSpec, clusterDomain = CLUSTER_DOMAIN): { hostname: string; domain: string } {
  const hostname = (pod.hostname || pod.name).slice(0, 63).replace(/[.-]+$/, '');
  const domain = pod.subdomain ? `${pod.subdomain}.${pod.namespace}.svc.${clusterDomain}` : '';
  return { hostname, domain };
}

/** True when the container mounts something at /etc/hosts itself: then the kubelet leaves it alone. */
export function mountsOwnHosts(container: edge.EdgeContainer): boolean {
  return container.volumeMounts.some((m) => m.mountPath.replace(/\/+$/, '') === ETC_HOSTS);
}

/** Where a pod's files live (the volume manager's pod directory). */
export interface PodFiles {
  /** Writes `content` to the pod's file `name` (replacing it atomically) and returns its host path. */
  podFile(pod: edge.EdgePodSpec, name: string, content: string): Promise<string>;
}

export interface EtcHostsOptions {
  files: PodFiles;
  /** The node's hosts file, for hostNetwork pods (default /etc/hosts). */
  nodeHostsPath?: string;
  clusterDomain?: string;
}

/**
 * The /etc/hosts mount of `container`, or undefined when the kubelet would not mount one (the container mounts
 * /etc/hosts itself, or the pod has no IP yet). `podIps`: the sandbox's IPs (asked only for a pod with its own
 * network).
 */
export async function etcHostsMount(
  pod: edge.EdgePodSpec,
  container: edge.EdgeContainer,
  podIps: () => Promise<string[]>,
  o: EtcHostsOptions,
): Promise<ContainerMount | undefined> {
  if (mountsOwnHosts(container)) return undefined;
  let content: string;
  if (pod.hostNetwork) {
    content = nodeHostsContent(await readFile(o.nodeHostsPath ?? ETC_HOSTS, 'utf8'), pod.hostAliases);
  } else {
    const ips = await podIps();
    if (ips.length === 0) return undefined;
    const { hostname, domain } = podHostNameAndDomain(pod, o.clusterDomain);
    content = managedHostsContent(ips, hostname, domain, pod.hostAliases);
  }
  const hostPath = await o.files.podFile(pod, 'etc-hosts', content);
  return { containerPath: ETC_HOSTS, hostPath, readOnly: false };
}
