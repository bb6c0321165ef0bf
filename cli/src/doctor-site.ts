/**
 * `edgefarm doctor --dir /etc/edgefarm`, at the site: the join directory and what it points at.
 *
 *   join files         each file of the join directory exists and parses (node.json, ca.pem, node.creds, ...)
 *   credentials        node.creds' expiry: warn under 2 days, fail when expired
 *   registrar          reachable over TLS verified against the fleet CA the join stored (ca.pem only)
 *   clock              against the registrar's Date header: warn over 30 s, fail over 5 minutes (renewals refused)
 *   hub leaf           each hub leaf URL: TCP, then a TLS handshake against the fleet CA
 *   site nats-server   its monitoring endpoint from nats-site.conf: /healthz, /jsz (streams), /leafz (the leaf up)
 *   containerd         its socket answers CRI Version
 */
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { parseCreds } from '@edgefarm/identity';
import { JOIN_FILES, MAX_CLOCK_SKEW_MS, MAX_NODE_JSON_BYTES, parseNodeJson, type NodeJson } from '@edgefarm/registrar';
import { clean, fail, ok, runChecks, skip, warn, type Check, type Finding } from './checks.js';
import { age, type Format, type Streams } from './output.js';
import type { SiteProbe } from './probe.js';

export const CREDENTIALS_WARN_MS = 2 * 86_400_000;
export const CLOCK_WARN_MS = 30_000;
export const DEFAULT_CRI_ENDPOINT = '/run/containerd/containerd.sock';
const MAX_FILE = 256 * 1024;

export interface SiteDoctorOptions {
  dir: string;
  /** The CRI socket; undefined: agent.env's EF_CRI_ENDPOINT, else {@link DEFAULT_CRI_ENDPOINT}. */
  criEndpoint?: string;
  timeoutMs: number;
  format: Format;
}

export interface SiteDoctorContext extends Streams {
  probe: SiteProbe;
  now: () => number;
}

/** The `exp` claim (ms) of a JWT, or undefined. */
export function jwtExpiry(jwt: string): number | undefined {
  try {
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' && Number.isFinite(claims.exp) ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** KEY=VALUE lines of an env file (comments and blank lines skipped); throws on any other line. */
export function parseEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not KEY=VALUE`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** The monitoring listener (`http: "host:port"`) of a site config renderSiteConfig wrote, if any. */
export function monitorOf(siteConfig: string): string | undefined {
  return /^http: "([^"\s]{1,300})"$/m.exec(siteConfig)?.[1];
}

const REJOIN = (node: string) =>
  `join again: edgefarm token create ${node} (cloud), then edgefarm join --force --token-file - --hub REGISTRAR (here)`;

export async function doctorSite(ctx: SiteDoctorContext, o: SiteDoctorOptions): Promise<void> {
  const dir = path.resolve(o.dir);
  const at = (f: string) => path.join(dir, f);
  const state: { node?: NodeJson; caPem?: string; expiresMs?: number; siteConfig?: string; env?: Record<string, string> } = {};
  const nodeName = () => state.node?.node ?? 'NODE';

  const files: Check = {
    name: 'join files',
    run: async () => {
      const found: Finding[] = [];
      const read = async (f: string, parse: (text: string) => void): Promise<void> => {
        try {
          parse(await ctx.probe.readFile(at(f), MAX_FILE));
        } catch (err) {
          found.push(fail(`${at(f)}: ${clean((err as Error).message)}`, REJOIN(nodeName())));
        }
      };
      await read(JOIN_FILES.nodeJson, (t) => {
        if (t.length > MAX_NODE_JSON_BYTES) throw new Error('too large');
        state.node = parseNodeJson(t);
      });
      await read(JOIN_FILES.ca, (t) => {
        if (!new X509Certificate(t).ca) throw new Error('not a CA certificate');
        state.caPem = t;
      });
      await read(JOIN_FILES.creds, (t) => {
        state.expiresMs = jwtExpiry(parseCreds(t).jwt);
        if (state.expiresMs === undefined) throw new Error('its JWT has no expiry');
      });
      await read(JOIN_FILES.nodeSeed, (t) => {
        if (!/^SU[A-Z2-7]{56}$/.test(t.trim())) throw new Error('not a user seed');
      });
      await read(JOIN_FILES.agentSeed, (t) => {
        if (!/^SU[A-Z2-7]{56}$/.test(t.trim())) throw new Error('not a user seed');
      });
      await read(JOIN_FILES.siteConfig, (t) => {
        if (!t.includes('leafnodes')) throw new Error('not a site configuration (no leafnodes)');
        state.siteConfig = t;
      });
      await read(JOIN_FILES.agentEnv, (t) => {
        state.env = parseEnvFile(t);
      });
      if (found.length > 0) return found;
      return ok(`${dir}: node ${state.node!.node}, key ${state.node!.wireId.slice(0, 12)}..., registrar ${state.node!.registrarUrl}`);
    },
  };

  const credentials: Check = {
    name: 'credentials',
    run: async () => {
      const exp = state.expiresMs ?? (state.node ? Date.parse(state.node.expiresAt) : undefined);
      if (exp === undefined || Number.isNaN(exp)) return skip('no readable credentials');
      const left = exp - ctx.now();
      const when = new Date(exp).toISOString();
      if (left <= 0) return fail(`expired ${age(-left)} ago (${when}); the hub refuses the leaf`, `revoke and ${REJOIN(nodeName())}`);
      if (left < CREDENTIALS_WARN_MS)
        return warn(
          `expire in ${age(left)} (${when})`,
          'the agent renews them at 70-90 % of their lifetime: check that it runs (EF_IDENTITY_DIR) and reaches the registrar',
        );
      return ok(`valid for ${age(left)} (until ${when})`);
    },
  };

  let clock: Finding = skip('the registrar was not reached');
  const registrar: Check = {
    name: 'registrar',
    run: async () => {
      if (!state.node || !state.caPem) return skip('no node.json or ca.pem');
      const url = state.node.registrarUrl;
      try {
        const { serverMs, roundTripMs } = await ctx.probe.registrarTime(url, state.caPem, o.timeoutMs);
        const skew = ctx.now() - (serverMs + roundTripMs / 2);
        const s = `${(skew / 1000).toFixed(1)} s`;
        // the Date header has whole seconds: allow one more
        if (Math.abs(skew) > MAX_CLOCK_SKEW_MS + 1000)
          clock = fail(`${s} off the registrar's; renewals are refused`, 'set the time: timedatectl set-ntp true (or chronyd/ntpd)');
        else if (Math.abs(skew) > CLOCK_WARN_MS + 1000)
          clock = warn(`${s} off the registrar's`, 'set the time: timedatectl set-ntp true (or chronyd/ntpd)');
        else clock = ok(`${s} off the registrar's`);
        return ok(`${url} answers over TLS verified against the fleet CA (${roundTripMs} ms)`);
      } catch (err) {
        return fail(
          `${url}: ${clean((err as Error).message)}`,
          `check DNS, routes and firewalls to ${url}; in the cloud: kubectl -n edgefarm-system get pods,svc`,
        );
      }
    },
  };
  const clockCheck: Check = { name: 'clock', run: async () => clock };

  const leaves: Check = {
    name: 'hub leaf',
    run: async () => {
      if (!state.node || !state.caPem) return skip('no node.json or ca.pem');
      const caPem = state.caPem;
      const found: Finding[] = [];
      for (const url of state.node.hubLeafUrls) {
        try {
          found.push(ok(`${url}: ${clean(await ctx.probe.leafHandshake(url, caPem, o.timeoutMs))}`));
        } catch (err) {
          found.push(
            fail(
              `${url}: ${clean((err as Error).message)}`,
              'check routes and firewalls to the hub; in the cloud: kubectl -n edgefarm-system get pods,svc -l app.kubernetes.io/name=edgefarm-hub',
            ),
          );
        }
      }
      return found;
    },
  };

  const siteServer: Check = {
    name: 'site nats-server',
    run: async () => {
      if (!state.siteConfig) return skip('no nats-site.conf');
      const monitor = monitorOf(state.siteConfig);
      if (!monitor) return skip('nats-site.conf has no monitoring listener (join --monitor off)');
      const base = `http://${monitor}`;
      const start = `start it: nats-server -c ${at(JOIN_FILES.siteConfig)}`;
      let health;
      try {
        health = await ctx.probe.httpGet(`${base}/healthz`, o.timeoutMs);
      } catch (err) {
        return warn(`${base} does not answer: ${clean((err as Error).message)}`, start);
      }
      if (health.status !== 200) return fail(`${base}/healthz: HTTP ${health.status} ${clean(health.body, 120)}`, `see its log; ${start}`);
      const found: Finding[] = [ok(`${base}/healthz ok`)];
      try {
        const jsz = JSON.parse((await ctx.probe.httpGet(`${base}/jsz`, o.timeoutMs)).body) as { streams?: unknown };
        const n = typeof jsz.streams === 'number' ? jsz.streams : 0;
        found.push(
          n > 0 ? ok(`JetStream: ${n} stream(s)`) : warn('JetStream has no streams yet', 'the agent makes them as it starts: start it'),
        );
      } catch (err) {
        found.push(fail(`${base}/jsz: ${clean((err as Error).message)}`, 'JetStream is off or failed: see the server log'));
      }
      try {
        const leafz = JSON.parse((await ctx.probe.httpGet(`${base}/leafz`, o.timeoutMs)).body) as { leafs?: unknown[] };
        const n = Array.isArray(leafz.leafs) ? leafz.leafs.length : 0;
        found.push(
          n > 0 ? ok('the leaf to the hub is up') : warn('the leaf to the hub is down', 'see the hub leaf and credentials checks'),
        );
      } catch (err) {
        found.push(warn(`${base}/leafz: ${clean((err as Error).message)}`, 'see the server log'));
      }
      return found;
    },
  };

  const containerd: Check = {
    name: 'containerd',
    run: async () => {
      const endpoint = o.criEndpoint ?? state.env?.EF_CRI_ENDPOINT ?? DEFAULT_CRI_ENDPOINT;
      try {
        const v = await ctx.probe.criVersion(endpoint, o.timeoutMs);
        return ok(`${endpoint}: ${clean(v.runtimeName, 40)} ${clean(v.runtimeVersion, 40)}`);
      } catch (err) {
        return fail(
          `${endpoint}: ${clean((err as Error).message)}`,
          'start containerd (systemctl start containerd) or name its socket with --cri-endpoint',
        );
      }
    },
  };

  await runChecks(
    ctx,
    `edgefarm doctor: the site of ${dir}`,
    [files, credentials, registrar, clockCheck, leaves, siteServer, containerd],
    o.format,
  );
}
