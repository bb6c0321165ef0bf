/**
 * Runs one probe once, the way the kubelet's probers do (pkg/probe/{exec,http,tcp,grpc}):
 * - exec: CRI ExecSync with the probe's timeout; exit code 0 is success, a timeout a failure.
 * - httpGet: GET http(s)://<host or pod IP>:<port><path> from the agent (it runs in the site's network namespace,
 *   where pod IPs are reachable); User-Agent `kube-probe/<major.minor>` and `Accept: *\/*` unless the probe sets them;
 *   TLS without verification; redirects followed to the same host (at most 10), a redirect to another host ends
 *   the probe with that 3xx (success, as the kubelet's warning); status 200-399 is success; at most 10 KiB of the
 *   body is read.
 * - tcpSocket: a TCP connect within the timeout.
 * - grpc: grpc.health.v1.Health/Check on the pod IP; SERVING is success.
 * Errors that are no verdict (the container is gone, the runtime fails) come back 'unknown'.
 */
import https from 'node:https';
import net from 'node:net';
import type { edge } from '@edgefarm/proto';
import type { PodRuntime } from '../runtime/types.js';
import { http } from '../util/node-http.js';
import { errorMessage } from '../util/time.js';
import { grpcHealthCheck } from './grpc-health.js';
import type { ProbeResult } from './results.js';

export interface ProbeOutcome {
  result: ProbeResult;
  /** What the probe said (for logs and Events). */
  output: string;
}

export interface ProbeTarget {
  containerId: string;
  /** The pod's IP (the node's for hostNetwork pods). */
  podIp: string;
}

/** Runs probes; the ProbeManager takes one (a test passes a scripted one). */
export interface Prober {
  run(probe: edge.Probe, target: ProbeTarget): Promise<ProbeOutcome>;
}

export interface NetProberOptions {
  /** Kubernetes version in the User-Agent (`kube-probe/<kubeVersion>`). */
  kubeVersion?: string;
}

const MAX_REDIRECTS = 10;
const MAX_BODY = 10 * 1024;

export class NetProber implements Prober {
  private readonly userAgent: string;

  constructor(
    private readonly runtime: Pick<PodRuntime, 'execSync'>,
    options: NetProberOptions = {},
  ) {
    this.userAgent = `kube-probe/${options.kubeVersion ?? '1.33'}`;
  }

  async run(probe: edge.Probe, target: ProbeTarget): Promise<ProbeOutcome> {
    const timeoutMs = Math.max(1, probe.timeoutSeconds) * 1000;
    const h = probe.handler;
    switch (h.case) {
      case 'exec':
        return this.exec(target.containerId, h.value.command, probe.timeoutSeconds);
      case 'httpGet':
        return httpProbe(h.value, h.value.host || target.podIp, timeoutMs, this.userAgent);
      case 'tcpSocket':
        return tcpProbe(h.value.host || target.podIp, h.value.port, timeoutMs);
      case 'grpc':
        return grpcProbe(target.podIp, h.value.port, h.value.service, timeoutMs, this.userAgent);
      default:
        return { result: 'unknown', output: 'probe has no handler' };
    }
  }

  private async exec(containerId: string, command: string[], timeoutSec: number): Promise<ProbeOutcome> {
    try {
      const r = await this.runtime.execSync(containerId, command, Math.max(1, timeoutSec));
      if (r.timedOut) return { result: 'failure', output: `command timed out after ${timeoutSec}s` };
      return { result: r.exitCode === 0 ? 'success' : 'failure', output: `${r.stdout}${r.stderr}`.slice(0, MAX_BODY) };
    } catch (err) {
      return { result: 'unknown', output: errorMessage(err) };
    }
  }
}

const hostPort = (host: string, port: number): string => `${net.isIPv6(host) ? `[${host}]` : host}:${port}`;

/**
 * `anyStatus`: every HTTP answer is a success, only a failed request is a failure (the kubelet's lifecycle hooks, which
 * do not look at the status code).
 */
export async function httpProbe(
  action: edge.HttpGetAction,
  host: string,
  timeoutMs: number,
  userAgent: string,
  anyStatus = false,
): Promise<ProbeOutcome> {
  const scheme = action.scheme.toUpperCase() === 'HTTPS' ? 'https' : 'http';
  let path = action.path || '/';
  if (!path.startsWith('/')) path = `/${path}`;
  const headers: Record<string, string> = {};
  let hostHeader: string | undefined;
  for (const hd of action.headers) {
    if (hd.name.toLowerCase() === 'host') hostHeader = hd.value;
    else headers[hd.name] = headers[hd.name] !== undefined ? `${headers[hd.name]}, ${hd.value}` : hd.value;
  }
  const has = (n: string) => Object.keys(headers).find((k) => k.toLowerCase() === n.toLowerCase());
  if (!has('user-agent')) headers['User-Agent'] = userAgent;
  const accept = has('accept');
  if (!accept) headers.Accept = '*/*';
  else if (headers[accept] === '') delete headers[accept];
  if (hostHeader) headers.Host = hostHeader;

  const deadline = AbortSignal.timeout(timeoutMs);
  let url = new URL(`${scheme}://${hostPort(host, action.port)}${path}`);
  const firstHost = url.hostname;
  try {
    for (let redirects = 0; ; redirects++) {
      const res = await get(url, headers, deadline);
      if (res.status >= 300 && res.status < 400 && res.location) {
        const next = new URL(res.location, url);
        if (next.hostname !== firstHost) return { result: 'success', output: `probe terminated redirects, response: ${res.status}` };
        if (redirects + 1 >= MAX_REDIRECTS) return { result: 'failure', output: `stopped after ${MAX_REDIRECTS} redirects` };
        url = next;
        continue;
      }
      if (anyStatus || (res.status >= 200 && res.status < 400)) return { result: 'success', output: res.body };
      return { result: 'failure', output: `HTTP probe failed with statuscode: ${res.status}` };
    }
  } catch (err) {
    if (deadline.aborted)
      return { result: 'failure', output: `Get "${url.href}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` };
    return { result: 'failure', output: `Get "${url.href}": ${errorMessage(err)}` };
  }
}

function get(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<{ status: number; location: string; body: string }> {
  return new Promise((resolve, reject) => {
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(url, { method: 'GET', headers, signal, agent: false, rejectUnauthorized: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_BODY) chunks.push(c.subarray(0, MAX_BODY - size));
        size += c.length;
        if (size >= MAX_BODY) res.destroy();
      });
      const done = () =>
        resolve({
          status: res.statusCode ?? 0,
          location: String(res.headers.location ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        });
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => done());
    });
    req.on('error', reject);
    req.end();
  });
}

export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const addr = hostPort(host, port);
    const socket = net.connect({ host, port });
    const finish = (o: ProbeOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(() => finish({ result: 'failure', output: `dial tcp ${addr}: i/o timeout` }), timeoutMs);
    socket.once('connect', () => finish({ result: 'success', output: '' }));
    socket.once('error', (err) => finish({ result: 'failure', output: `dial tcp ${addr}: ${err.message}` }));
  });
}

export async function grpcProbe(host: string, port: number, service: string, timeoutMs: number, userAgent: string): Promise<ProbeOutcome> {
  return grpcHealthCheck(hostPort(host, port), service, timeoutMs, userAgent);
}
