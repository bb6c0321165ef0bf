/**
 * What an install creates once per fleet (reference/install.md), computed from the fleet's files without touching
 * anything: ConfigMap edgefarm-fleet and Secrets edgefarm-hub (its nats.conf rendered here), edgefarm-provider and
 * edgefarm-registrar, with exactly the keys the manifests mount. `fleet secrets` prints or applies them.
 */
import { HUB_CLUSTER_NAME, renderHubConfig, type AccountKeys } from '@edgefarm/identity';
import { CliError, EXIT } from './errors.js';
import { HUB_STATEFULSET, type FleetTlsFiles } from './fleet-tls.js';

export const FLEET_OBJECT_NAMES = {
  configMap: 'edgefarm-fleet',
  hub: 'edgefarm-hub',
  provider: 'edgefarm-provider',
  registrar: 'edgefarm-registrar',
} as const;

/** The field manager of `fleet secrets --apply`. */
export const FLEET_FIELD_MANAGER = 'edgefarm-fleet';

/** Where the base's hub pod has its files: Secret edgefarm-hub at `etc`, the data volume at `data`. */
export interface HubPaths {
  etc: string;
  data: string;
}
export const POD_PATHS: HubPaths = { etc: '/etc/nats', data: '/data' };

/** The ports of the base's hub container (manifests/base/hub.yaml). */
const HUB_PORTS = { client: 4222, monitor: 8222, leaf: 7422, cluster: 6222 };

/** The hub's listeners: the base's StatefulSet (members 1, 3 or 5), or the local stack's single host-network server. */
export type HubLayout = { kind: 'statefulset'; members: number } | { kind: 'local'; listen: string; monitor: string; leaf: string };

/** The fleet's files `fleet secrets` reads (contents as they are on disk). */
export interface FleetInputs {
  accounts: AccountKeys;
  nodeSigner: string;
  operatorJwt: string;
  /** Account public key -> the account JWT made at init (the hub's resolver_preload). */
  preload: Record<string, string>;
  providerDesiredCreds: string;
  providerCloudCreds: string;
  claimsPusherCreds: string;
  operatorSignerSeed: string;
  nodeSignerSeed: string;
  tls: FleetTlsFiles;
}

export interface FleetObjectOptions {
  namespace: string;
  registrarUrl: string;
  hubLeafUrls: string[];
  hub: HubLayout;
  paths?: HubPaths;
}

export interface KubeObject {
  apiVersion: 'v1';
  kind: 'ConfigMap' | 'Secret';
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  type?: 'Opaque';
  data: Record<string, string>;
}

const LABELS = { 'app.kubernetes.io/part-of': 'edgefarm' };

/** The hub's nats.conf for `layout`, with the pod's paths. */
export function hubNatsConf(f: FleetInputs, layout: HubLayout, paths: HubPaths = POD_PATHS): string {
  const tls = { certFile: `${paths.etc}/tls.crt`, keyFile: `${paths.etc}/tls.key`, caFile: `${paths.etc}/ca.crt` };
  const common = {
    tls,
    storeDir: `${paths.data}/js`,
    resolverDir: `${paths.data}/resolver`,
    operatorJwtFile: `${paths.etc}/operator.jwt`,
    systemAccount: f.accounts.system,
    preload: f.preload,
  };
  if (layout.kind === 'local') {
    // the local stack (hack/install.sh): one server in the host's network, monitoring on loopback
    return renderHubConfig({
      ...common,
      serverName: 'hub',
      listen: layout.listen,
      monitor: layout.monitor,
      leaf: { listen: layout.leaf },
    });
  }
  const any = (port: number) => `0.0.0.0:${port}`;
  const routes = Array.from(
    { length: layout.members },
    (_, n) => `nats-route://${HUB_STATEFULSET}-${n}.${HUB_STATEFULSET}:${HUB_PORTS.cluster}`,
  );
  return renderHubConfig({
    ...common,
    serverName: '$POD_NAME',
    listen: any(HUB_PORTS.client),
    monitor: any(HUB_PORTS.monitor),
    monitorInPod: true,
    leaf: { listen: any(HUB_PORTS.leaf) },
    ...(layout.members > 1 ? { cluster: { name: HUB_CLUSTER_NAME, listen: any(HUB_PORTS.cluster), routes } } : {}),
  });
}

/** ConfigMap edgefarm-fleet and the three Secrets, in the order to apply them. */
export function fleetObjects(f: FleetInputs, o: FleetObjectOptions): KubeObject[] {
  const meta = (name: string) => ({ name, namespace: o.namespace, labels: { ...LABELS } });
  const secret = (name: string, files: Record<string, string>): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(name),
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')])),
  });
  const a = f.accounts;
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(FLEET_OBJECT_NAMES.configMap),
      data: {
        'ca.crt': f.tls.ca,
        registrarUrl: o.registrarUrl,
        accounts: `system=${a.system},desired=${a.desired},cloud=${a.cloud},sites=${a.sites}`,
        nodeSigner: f.nodeSigner,
        sitesAccount: a.sites,
        hubLeafUrls: o.hubLeafUrls.join(','),
      },
    },
    secret(FLEET_OBJECT_NAMES.hub, {
      'nats.conf': hubNatsConf(f, o.hub, o.paths),
      'operator.jwt': f.operatorJwt,
      'ca.crt': f.tls.ca,
      'tls.crt': f.tls.hub.cert,
      'tls.key': f.tls.hub.key,
    }),
    secret(FLEET_OBJECT_NAMES.provider, {
      'provider-desired.creds': f.providerDesiredCreds,
      'provider-cloud.creds': f.providerCloudCreds,
      'claims-pusher.creds': f.claimsPusherCreds,
      'operator-signer.nk': f.operatorSignerSeed,
    }),
    secret(FLEET_OBJECT_NAMES.registrar, {
      'node-signer.nk': f.nodeSignerSeed,
      'tls.crt': f.tls.registrar.cert,
      'tls.key': f.tls.registrar.key,
    }),
  ];
}

const MAX_URL = 300;

/** --registrar-url: `https://host[:port]`, nothing else (no path, credentials, query or fragment). */
export function registrarUrl(text: string): string {
  const u = parsedUrl(text);
  if (!u || u.protocol !== 'https:' || !/^https:\/\/[^/?#@\s]+$/.test(text) || !u.hostname)
    throw new CliError(EXIT.usage, `--registrar-url ${JSON.stringify(text.slice(0, 80))}: expected https://host[:port]`);
  return text;
}

/** --hub-leaf-urls: 1 to 16 distinct `tls://host:port`, comma-separated. */
export function hubLeafUrls(text: string): string[] {
  const urls = text.split(',');
  if (urls.length > 16) throw new CliError(EXIT.usage, '--hub-leaf-urls: at most 16 URLs');
  for (const url of urls) {
    const u = parsedUrl(url);
    if (!u || u.protocol !== 'tls:' || !/^tls:\/\/[^/?#@\s]+:\d{1,5}$/.test(url) || !u.hostname || !u.port)
      throw new CliError(EXIT.usage, `--hub-leaf-urls ${JSON.stringify(url.slice(0, 80))}: expected tls://host:port (comma-separated)`);
  }
  if (new Set(urls).size !== urls.length) throw new CliError(EXIT.usage, '--hub-leaf-urls: a URL is given twice');
  return urls;
}

/** --local LISTEN,MONITOR,LEAF: three host:port listeners. */
export function localLayout(text: string): HubLayout {
  const parts = text.split(',');
  if (parts.length !== 3 || !parts.every(hostPortOk))
    throw new CliError(EXIT.usage, `--local ${JSON.stringify(text.slice(0, 80))}: expected LISTEN,MONITOR,LEAF, each host:port`);
  const [listen, monitor, leaf] = parts as [string, string, string];
  return { kind: 'local', listen, monitor, leaf };
}

function hostPortOk(s: string): boolean {
  const m = /^([A-Za-z0-9.-]{1,253}):(\d{1,5})$/.exec(s);
  return m !== null && Number(m[2]) >= 1 && Number(m[2]) <= 65535;
}

function parsedUrl(text: string): URL | undefined {
  if (text.length > MAX_URL) return undefined;
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}
