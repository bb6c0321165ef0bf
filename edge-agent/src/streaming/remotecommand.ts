/**
 * exec, attach and port-forward at the edge: CRI Exec / Attach / PortForward hand out a URL on containerd's
 * streaming server (127.0.0.1:<random> in the site's network namespace); the agent connects to it with SPDY
 * (spdy.ts) and bridges its streams to a {@link StreamLink}:
 *
 *   remotecommand v4.channel.k8s.io: streams error, stdin, stdout, stderr (not with a tty), resize (tty only);
 *     the error stream carries a metav1.Status: Success, or Failure with reason NonZeroExitCode and a cause
 *     {reason: ExitCode, message: "<code>"}.
 *   portforward.k8s.io: an error and a data stream per connection (headers port and requestid); the error stream
 *     carries a message when the forward failed.
 */
import { Channel, type ChannelId, type edge } from '@edgefarm/proto';
import { type LinkResult, type StreamLink } from '@edgefarm/streaming';
import { type RuntimeServiceClient } from '@edgefarm/cri';
import { badRequest } from './errors.js';
import type { PreparedSession } from './session.js';
import { forward, readText } from './session.js';
import { SpdyConnection, type SpdyStream } from './spdy.js';

const REMOTECOMMAND_V4 = 'v4.channel.k8s.io';
const PORTFORWARD = 'portforward.k8s.io';
const MAX_COMMAND_BYTES = 64 * 1024;

/** The v4 error stream's Status, as a session result. */
export function statusResult(text: string): LinkResult {
  if (!text.trim()) return { exitCode: 0 };
  let status: { status?: string; message?: string; reason?: string; details?: { causes?: { reason?: string; message?: string }[] } };
  try {
    status = JSON.parse(text) as typeof status;
  } catch {
    return { exitCode: 1, error: text.trim() };
  }
  if (status.status === 'Success') return { exitCode: 0 };
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  if (status.reason === 'NonZeroExitCode' && Number.isInteger(code)) return { exitCode: code };
  return { exitCode: 1, error: status.message || text.trim() };
}

export function validateExec(req: edge.ExecRequest, attach: boolean): void {
  if (!attach && req.command.length === 0) throw badRequest('exec: no command given');
  if (req.command.reduce((n, a) => n + Buffer.byteLength(a), 0) > MAX_COMMAND_BYTES)
    throw badRequest(`exec: command longer than ${MAX_COMMAND_BYTES} bytes`);
  if (!req.stdin && !req.stdout && !req.stderr) throw badRequest('you must specify at least one of stdin, stdout, stderr');
}

async function openAll(conn: SpdyConnection, headers: Record<string, string>[]): Promise<SpdyStream[]> {
  const out: SpdyStream[] = [];
  for (const h of headers) out.push(await conn.openStream(h));
  return out;
}

/** Connects to an exec or attach URL and opens the v4 streams; the session bridges them. */
export async function prepareRemoteCommand(url: string, req: edge.ExecRequest): Promise<PreparedSession> {
  const conn = await SpdyConnection.connect(url, REMOTECOMMAND_V4);
  try {
    const wanted: [string, boolean][] = [
      ['error', true],
      ['stdin', req.stdin],
      ['stdout', req.stdout],
      ['stderr', req.stderr && !req.tty],
      ['resize', req.tty],
    ];
    const names = wanted.filter(([, on]) => on).map(([n]) => n);
    const opened = await openAll(
      conn,
      names.map((streamtype) => ({ streamtype })),
    );
    const s = Object.fromEntries(names.map((n, i) => [n, opened[i]!])) as Record<string, SpdyStream | undefined>;
    return {
      inputs: req.stdin ? [Channel.stdin] : [],
      abandon: () => conn.close(),
      run: async (link) => {
        const stop = () => conn.close();
        void link.done.then(stop);
        link.onResize = (width, height) => void s.resize?.write(Buffer.from(JSON.stringify({ Width: width, Height: height }) + '\n'));
        const stdin = s.stdin;
        if (stdin) void copyInput(link, Channel.stdin, stdin);
        const outputs = [
          s.stdout && forward(s.stdout.data, link, Channel.stdout),
          s.stderr && forward(s.stderr.data, link, Channel.stderr),
        ];
        const [status] = await Promise.all([readText(s.error!.data), ...outputs]);
        conn.close();
        if (!status.trim() && !s.error!.finReceived && !conn.goAwayReceived && !link.ended) {
          return { exitCode: 1, error: 'the connection to the container runtime closed without an exit status' };
        }
        return statusResult(status);
      },
    };
  } catch (err) {
    conn.close();
    throw err;
  }
}

/** Connects to a port-forward URL and opens one connection's streams to `port`. */
export async function preparePortForward(url: string, port: number): Promise<PreparedSession> {
  const conn = await SpdyConnection.connect(url, PORTFORWARD);
  try {
    const headers = { port: String(port), requestid: '0' };
    const [error, data] = await openAll(conn, [
      { streamtype: 'error', ...headers },
      { streamtype: 'data', ...headers },
    ]);
    return {
      inputs: [Channel.stdin],
      abandon: () => conn.close(),
      run: async (link) => {
        void link.done.then(() => conn.close());
        void copyInput(link, Channel.stdin, data!);
        const [message] = await Promise.all([readText(error!.data), forward(data!.data, link, Channel.stdout)]);
        conn.close();
        return message.trim() ? { exitCode: 1, error: message.trim() } : { exitCode: 0 };
      },
    };
  } catch (err) {
    conn.close();
    throw err;
  }
}

/** Provider input to a SPDY stream, then FIN (EOF toward the process or the pod's port). */
async function copyInput(link: StreamLink, channel: ChannelId, to: SpdyStream): Promise<void> {
  for await (const chunk of link.input(channel)) await to.write(chunk);
  await to.end();
}

/** The CRI calls that hand out streaming URLs. */
export async function streamingUrl(
  runtime: RuntimeServiceClient,
  op: 'exec' | 'attach' | 'portforward',
  args: { containerId?: string; sandboxId?: string; req?: edge.ExecRequest; port?: number },
): Promise<string> {
  const r = args.req;
  switch (op) {
    case 'exec':
      return (
        await runtime.exec({
          containerId: args.containerId!,
          cmd: r!.command,
          stdin: r!.stdin,
          stdout: r!.stdout,
          stderr: r!.stderr && !r!.tty,
          tty: r!.tty,
        })
      ).url;
    case 'attach':
      return (
        await runtime.attach({
          containerId: args.containerId!,
          stdin: r!.stdin,
          stdout: r!.stdout,
          stderr: r!.stderr && !r!.tty,
          tty: r!.tty,
        })
      ).url;
    case 'portforward':
      return (await runtime.portForward({ podSandboxId: args.sandboxId!, port: [args.port!] })).url;
  }
}
