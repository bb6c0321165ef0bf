/**
 * A hand-written EdgeStreams for tests: records every call, accepts injected failures, and runs a few commands
 * the way a container would:
 *   echo ARGS...    stdout "ARGS\n", exit 0        cat            stdin copied to stdout until EOF, exit 0
 *   stderr TEXT     TEXT on stderr, exit 0           exit N         exit code N
 *   sizes           every terminal resize as "WxH\n" on stdout until stdin ended and 2 sizes came (or 2 s after
 *                   stdin ended: a client sends its resizes and its stdin EOF concurrently)
 *   bytes N         N bytes of 'x' on stdout          wc             stdin counted, the count on stdout at EOF
 * attach behaves as cat. portForward: any port echoes what it gets; port 81 answers one HTTP request; a port in
 * `refusedPorts` fails as a closed port would; writes to a port in `heldPorts` wait for its promise (an edge that gives
 * no window).
 */
import { ChunkQueue } from '@edgefarm/streaming';
import {
  EdgeNodeOfflineError,
  EdgeStreamError,
  type ContainerRef,
  type EdgeStreams,
  type LogOptions,
  type PodRef,
  type PortStream,
  type SessionResult,
  type StatsSummary,
  type StreamOptions,
  type StreamSession,
} from './edge-streams.js';

export interface FakeCall {
  method: 'logs' | 'exec' | 'attach' | 'portForward' | 'statsSummary';
  ref: PodRef | string;
  args?: unknown;
}

export class FakeEdgeStreams implements EdgeStreams {
  readonly calls: FakeCall[] = [];
  /** Nodes that are offline (every call fails fast). */
  readonly offline = new Set<string>();
  /** Log lines per "ns/pod/container". */
  readonly logLines = new Map<string, string[]>();
  readonly summaries = new Map<string, StatsSummary>();
  /** Sessions still running (tests check that every one ended). */
  readonly open = new Set<StreamSession | PortStream>();
  /** Ports nothing listens on: portForward to them fails ('connection refused'). */
  readonly refusedPorts = new Set<number>();
  /** Ports whose writes wait for the promise. */
  readonly heldPorts = new Map<number, Promise<void>>();
  /** Thrown by the next call, once. */
  failNext?: Error;

  private check(node: string): void {
    const err = this.failNext;
    this.failNext = undefined;
    if (err) throw err;
    if (this.offline.has(node)) throw new EdgeNodeOfflineError(node, new Date(0));
  }

  async logs(ref: ContainerRef, opts: LogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    this.calls.push({ method: 'logs', ref, args: opts });
    this.check(ref.node);
    const lines = this.logLines.get(`${ref.namespace}/${ref.pod}/${ref.container}`);
    if (!lines) throw new EdgeStreamError('NotFound', `container ${ref.container} not found in pod ${ref.namespace}/${ref.pod}`);
    const picked = opts.tailLines !== undefined ? lines.slice(Math.max(0, lines.length - opts.tailLines)) : lines;
    return (async function* () {
      for (const l of picked) yield Buffer.from(`${opts.timestamps ? '2026-11-23T10:00:00.000000000Z ' : ''}${l}\n`);
      if (opts.follow && !signal.aborted) await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
    })();
  }

  async exec(ref: ContainerRef, command: string[], opts: StreamOptions): Promise<StreamSession> {
    this.calls.push({ method: 'exec', ref, args: { command, opts } });
    this.check(ref.node);
    return this.session(command, opts);
  }

  async attach(ref: ContainerRef, opts: StreamOptions): Promise<StreamSession> {
    this.calls.push({ method: 'attach', ref, args: opts });
    this.check(ref.node);
    return this.session(['cat'], opts);
  }

  async portForward(ref: PodRef, port: number): Promise<PortStream> {
    this.calls.push({ method: 'portForward', ref, args: port });
    this.check(ref.node);
    if (this.refusedPorts.has(port)) throw new EdgeStreamError('Internal', `dial tcp 127.0.0.1:${port}: connect: connection refused`);
    const data = new ChunkQueue();
    let finish!: (r: { error?: string }) => void;
    const done = new Promise<{ error?: string }>((r) => (finish = r));
    let request = '';
    let ended = false;
    const ps: PortStream = {
      data,
      write: async (c) => {
        await this.heldPorts.get(port);
        if (ended) throw new Error('connection closed');
        if (port !== 81) return data.push(Buffer.from(c));
        request += Buffer.from(c).toString();
        if (request.includes('\r\n\r\n')) {
          data.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'));
          ended = true;
          data.end();
          this.open.delete(ps);
          finish({});
        }
      },
      end: async () => {
        ended = true;
        data.end();
        this.open.delete(ps);
        finish({});
      },
      done,
      close: () => {
        ended = true;
        data.end();
        this.open.delete(ps);
        finish({});
      },
    };
    this.open.add(ps);
    return ps;
  }

  async statsSummary(node: string): Promise<StatsSummary> {
    this.calls.push({ method: 'statsSummary', ref: node });
    this.check(node);
    return this.summaries.get(node) ?? { node: { nodeName: node }, pods: [] };
  }

  private session(command: string[], opts: StreamOptions): StreamSession {
    const stdout = new ChunkQueue();
    const stderr = new ChunkQueue();
    const stdinEnded = deferred<void>();
    const result = deferred<SessionResult>();
    let counted = 0;
    let sizes = 0;
    const twoSizes = deferred<void>();
    const [cmd, ...args] = command;
    const session: StreamSession = {
      stdout: opts.stdout ? stdout : undefined,
      stderr: opts.stderr && !opts.tty ? stderr : undefined,
      writeStdin: async (c) => {
        if (cmd === 'cat') stdout.push(Buffer.from(c));
        counted += c.length;
        // Backpressure like the edge's window: wait while the client has not read the output.
        await stdout.below(1 << 20);
      },
      closeStdin: async () => stdinEnded.resolve(),
      resize: (w, h) => {
        if (cmd !== 'sizes') return;
        stdout.push(Buffer.from(`${w}x${h}\n`));
        if (++sizes === 2) twoSizes.resolve();
      },
      done: result.promise,
      close: () => end({ exitCode: 137, error: 'session closed by the client' }),
    };
    const end = (r: SessionResult) => {
      stdout.end();
      stderr.end();
      this.open.delete(session);
      result.resolve(r);
    };
    this.open.add(session);
    switch (cmd) {
      case 'echo':
        stdout.push(Buffer.from(`${args.join(' ')}\n`));
        end({ exitCode: 0 });
        break;
      case 'stderr':
        stderr.push(Buffer.from(args.join(' ')));
        end({ exitCode: 0 });
        break;
      case 'exit':
        end({ exitCode: Number(args[0] ?? 1) });
        break;
      case 'bytes':
        stdout.push(Buffer.alloc(Number(args[0] ?? 0), 'x'));
        end({ exitCode: 0 });
        break;
      case 'cat':
        void stdinEnded.promise.then(() => end({ exitCode: 0 }));
        break;
      case 'sizes':
        void stdinEnded.promise
          .then(() => Promise.race([twoSizes.promise, new Promise((r) => setTimeout(r, 2000))]))
          .then(() => end({ exitCode: 0 }));
        break;
      case 'wc':
        void stdinEnded.promise.then(() => {
          stdout.push(Buffer.from(`${counted}\n`));
          end({ exitCode: 0 });
        });
        break;
      default:
        end({ exitCode: 127, error: `executable file not found: ${cmd}` });
    }
    return session;
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
