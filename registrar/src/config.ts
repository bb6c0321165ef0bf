/**
 * The registrar's configuration: {@link REGISTRAR_SETTINGS} declares every setting (docs/reference/settings.md is
 * generated from it); {@link parseConfig} turns an environment record into a {@link RegistrarConfig}. Only main.ts
 * passes process.env. KUBECONFIG picks its Kubernetes identity (in a cluster: its ServiceAccount,
 * manifests/base/registrar-rbac.yaml).
 */
import { isIP } from 'node:net';
import { ValueError, custom, defineSettings, int, list, logLevel, number, text, type Env } from '@edgefarm/settings';
import { FLEET_NAMESPACE } from './fleet.js';

export { ConfigError, isConfigError } from '@edgefarm/settings';

/** The longest credential lifetime the registrar accepts: a stolen, unrevoked credential dies within it. */
export const MAX_CREDENTIAL_LIFETIME_SECONDS = 30 * 24 * 3600;

export interface RegistrarConfig {
  listen: { host: string; port: number };
  tlsCertFile: string;
  tlsKeyFile: string;
  caFile: string;
  signerSeedFile: string;
  sitesAccount: string;
  hubLeafUrls: string[];
  registrarUrl: string;
  credentialLifetimeSeconds: number;
  namespace: string;
  clientRatePerMinute: number;
  ratePerSecond: number;
  maxInFlight: number;
  requestTimeoutSeconds: number;
  logLevel: string;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `<n>s|m|h|d` (or plain seconds) as seconds, from min to max. */
export function parseDuration(raw: string, minSeconds: number, maxSeconds: number): number {
  const m = /^(\d{1,7})([smhd]?)$/.exec(raw);
  const seconds = m ? Number(m[1]) * UNITS[m[2] || 's']! : NaN;
  if (!Number.isSafeInteger(seconds) || seconds < minSeconds || seconds > maxSeconds) {
    throw new ValueError(`expected a duration (<n>s, m, h or d) from ${minSeconds} s to ${maxSeconds} s`);
  }
  return seconds;
}

const listen = custom('host:port', (raw) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(raw);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? m?.[2] ?? '';
  if (!m || port < 1 || port > 65535 || (m[1] !== undefined && isIP(host) !== 6)) throw new ValueError('is not host:port');
  return { host, port };
});

export const REGISTRAR_SETTINGS = defineSettings(
  {
    title: 'registrar',
    source: 'registrar/src/config.ts',
    intro:
      'The registrar (`node registrar/dist/main.js`): joins edge nodes with single-use tokens and renews their credentials (docs/reference/registration.md). `KUBECONFIG` picks its Kubernetes identity (default: in-cluster, else ~/.kube/config).',
  },
  {
    listen: { env: 'EF_REGISTRAR_LISTEN', type: listen, default: '0.0.0.0:8443', doc: 'where the HTTPS API listens' },
    tlsCertFile: {
      env: 'EF_REGISTRAR_TLS_CERT',
      type: text('PEM file'),
      required: true,
      doc: 'its serving certificate, signed by the fleet CA (the CA is appended to the chain it presents)',
    },
    tlsKeyFile: { env: 'EF_REGISTRAR_TLS_KEY', type: text('PEM file'), required: true, doc: "the serving certificate's key" },
    caFile: {
      env: 'EF_FLEET_CA_FILE',
      type: text('PEM file'),
      required: true,
      doc: 'the fleet CA: handed to joining sites; the join token carries the sha256 of its DER',
    },
    signerSeedFile: {
      env: 'EF_REGISTRAR_SIGNER_SEED_FILE',
      type: text('file'),
      required: true,
      doc: "the seed of EF_SITES' scoped signing key (role edge-node), the only key the registrar holds",
    },
    sitesAccount: {
      env: 'EF_SITES_ACCOUNT',
      type: custom('account public key (A...)', (raw) => {
        if (!/^A[A-Z2-7]{55}$/.test(raw)) throw new ValueError('is not an account public key');
        return raw;
      }),
      required: true,
      doc: "the EF_SITES account's public key (the node JWTs' issuer_account)",
    },
    hubLeafUrls: {
      env: 'EF_HUB_LEAF_URLS',
      type: list(
        custom('tls://host:port', (raw) => {
          if (!/^tls:\/\/[^\s/"]+:\d{1,5}$/.test(raw)) throw new ValueError('is not tls://host:port');
          return raw;
        }),
      ),
      required: true,
      doc: "the hub's leafnode URLs the sites dial (every hub member)",
    },
    registrarUrl: {
      env: 'EF_REGISTRAR_URL',
      type: custom('https:// URL', (raw) => {
        if (!/^https:\/\/[^\s"]+$/.test(raw)) throw new ValueError('is not an https:// URL');
        return raw.replace(/\/+$/, '');
      }),
      required: true,
      doc: 'its own public URL, where sites renew (the certificate must name its host)',
    },
    credentialLifetimeSeconds: {
      env: 'EF_CREDENTIAL_LIFETIME',
      type: custom('duration (<n>s, m, h, d), 10m-30d', (raw) => parseDuration(raw, 600, MAX_CREDENTIAL_LIFETIME_SECONDS)),
      default: '7d',
      doc: "lifetime of a node's credentials (its JWT's exp); sites renew at 70-90 % of it",
    },
    namespace: {
      env: 'EF_NAMESPACE',
      type: custom('namespace name', (raw) => {
        if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(raw)) throw new ValueError('is not a namespace name');
        return raw;
      }),
      default: FLEET_NAMESPACE,
      doc: 'where the join tokens and the revocation list are',
    },
    clientRatePerMinute: {
      env: 'EF_REGISTRAR_CLIENT_RATE',
      type: int(1, 100_000),
      default: '60',
      doc: 'joins and renewals a minute one client address may make (also its burst); more are answered 429 rate-limited. Sites behind one NAT share it',
    },
    ratePerSecond: {
      env: 'EF_REGISTRAR_RATE',
      type: number(0.1, 10_000),
      default: '20',
      doc: 'joins and renewals a second over all clients (bursts of ten seconds of it); more are answered 429 rate-limited',
    },
    maxInFlight: {
      env: 'EF_REGISTRAR_MAX_IN_FLIGHT',
      type: int(1, 10_000),
      default: '64',
      doc: 'joins and renewals served at once; more are answered 503 busy',
    },
    requestTimeoutSeconds: {
      env: 'EF_REGISTRAR_REQUEST_TIMEOUT',
      type: custom('duration (<n>s, m), 1s-10m', (raw) => parseDuration(raw, 1, 600)),
      default: '30s',
      doc: 'a request must arrive whole within it (else 408 and the connection closed), and a connection idle that long is closed',
    },
    logLevel: { env: 'EF_LOG_LEVEL', type: logLevel(), default: 'info', doc: 'log level' },
  },
);

export function parseConfig(env: Env): RegistrarConfig {
  return REGISTRAR_SETTINGS.parse(env);
}
