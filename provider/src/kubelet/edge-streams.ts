/**
 * EdgeStreams: the provider-side contract of interactive traffic to an edge node (kubectl logs, exec, attach,
 * port-forward, and the stats behind `kubectl top`). The kubelet API server (provider/src/kubelet/server.ts) speaks
 * HTTP, SPDY/3.1 and the WebSocket channel protocols to the apiserver and calls only this interface; the NATS
 * transport (provider/src/kubelet/nats-streams.ts, with the agent half in edge-agent/src/streaming/) implements it
 * over core NATS request/reply and per-session subjects with flow control. The edge never accepts a connection.
 *
 * Rules every implementation keeps:
 * - A node that is not reachable fails the call within 2 s with {@link EdgeNodeOfflineError}, never a hang.
 * - A pod or container the node does not run fails with {@link EdgeStreamError} code 'NotFound'.
 * - Backpressure end to end: a consumer that stops reading stops the producer at the edge after a bounded window;
 *   nothing buffers without bound on either side.
 * - Every session ends (done settles) when either side closes, the node goes away, or the signal aborts; nothing is
 *   left behind (timers, subscriptions, CRI streams).
 */

/** The pod (and, where it applies, container) a call is about, as named in the kubelet API path. */
export interface PodRef {
  node: string;
  namespace: string;
  pod: string;
  /** The pod UID when the path carries one (`/exec/<ns>/<pod>/<uid>/<container>`). */
  uid?: string;
}
export interface ContainerRef extends PodRef {
  container: string;
}

/** Query of /containerLogs, as the kubelet takes it (k8s.io/api/core/v1 PodLogOptions). */
export interface LogOptions {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  /** RFC 3339 time. */
  sinceTime?: string;
  limitBytes?: number;
}

/** Which streams an exec or attach session has (the kubelet's stdin/stdout/stderr/tty query parameters). */
export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** How a session ended: the exit code of the process (exec), or an error to report as a v1.Status. */
export interface SessionResult {
  /** 0 on success; the exit code when the process exited non-zero. */
  exitCode: number;
  /** Set when the session failed for another reason than the process's exit code (e.g. the node went away). */
  error?: string;
}

/**
 * One exec or attach session. Output arrives through the iterables (each ends when the stream ends); input is
 * written with writeStdin, whose promise resolves when the edge has window for more (backpressure).
 */
export interface StreamSession {
  readonly stdout?: AsyncIterable<Uint8Array>;
  readonly stderr?: AsyncIterable<Uint8Array>;
  writeStdin(chunk: Uint8Array): Promise<void>;
  /** EOF on stdin (kubectl exec -i with its input closed). */
  closeStdin(): Promise<void>;
  /** Terminal resize (tty sessions). */
  resize(width: number, height: number): void;
  /** Settles once the session is over; never rejects. */
  readonly done: Promise<SessionResult>;
  /** Ends the session from this side (the client went away). */
  close(): void;
}

/** One port-forward data connection to a port of the pod (one per kubectl port-forward connection). */
export interface PortStream {
  readonly data: AsyncIterable<Uint8Array>;
  write(chunk: Uint8Array): Promise<void>;
  /** Half-close toward the pod. */
  end(): Promise<void>;
  /** Settles when the connection is over; error set when it failed (reported on the SPDY/WebSocket error stream). */
  readonly done: Promise<{ error?: string }>;
  close(): void;
}

/**
 * The kubelet's stats Summary (k8s.io/kubelet/pkg/apis/stats/v1alpha1), as JSON: what /stats/summary returns and
 * what /metrics/resource is rendered from. Only the fields are listed that EdgeFarm fills.
 */
export interface StatsSummary {
  node: {
    nodeName: string;
    startTime?: string;
    cpu?: CpuStats;
    memory?: MemoryStats;
    fs?: FsStats;
  };
  pods: PodStats[];
}
export interface CpuStats {
  time: string;
  usageNanoCores?: number;
  usageCoreNanoSeconds?: number;
}
export interface MemoryStats {
  time: string;
  availableBytes?: number;
  usageBytes?: number;
  workingSetBytes?: number;
  rssBytes?: number;
}
export interface FsStats {
  time: string;
  availableBytes?: number;
  capacityBytes?: number;
  usedBytes?: number;
}
export interface PodStats {
  podRef: { name: string; namespace: string; uid: string };
  startTime?: string;
  cpu?: CpuStats;
  memory?: MemoryStats;
  containers: { name: string; startTime?: string; cpu?: CpuStats; memory?: MemoryStats; rootfs?: FsStats; logs?: FsStats }[];
}

export interface EdgeStreams {
  /** Log bytes of a container, in the kubelet's format (with timestamps when asked). Follow ends on abort. */
  logs(ref: ContainerRef, opts: LogOptions, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
  exec(ref: ContainerRef, command: string[], opts: StreamOptions): Promise<StreamSession>;
  attach(ref: ContainerRef, opts: StreamOptions): Promise<StreamSession>;
  /** A connection to `port` inside the pod's network namespace. */
  portForward(ref: PodRef, port: number): Promise<PortStream>;
  statsSummary(node: string, signal: AbortSignal): Promise<StatsSummary>;
}

export type EdgeStreamErrorCode = 'NotFound' | 'BadRequest' | 'Internal' | 'Timeout';

/** A call the edge refused or failed (the message is the edge's, for the user). */
export class EdgeStreamError extends Error {
  override name = 'EdgeStreamError';
  constructor(
    readonly code: EdgeStreamErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export function isEdgeStreamError(err: unknown): err is EdgeStreamError {
  return err instanceof EdgeStreamError;
}

/** The node is not reachable: "edge node edge-1 is disconnected since 2026-11-23T10:00:00Z". */
export class EdgeNodeOfflineError extends Error {
  override name = 'EdgeNodeOfflineError';
  constructor(
    readonly node: string,
    readonly since: Date | undefined,
    options?: { cause?: unknown },
  ) {
    super(since ? `edge node ${node} is disconnected since ${since.toISOString()}` : `edge node ${node} is not connected`, options);
  }
}
export function isEdgeNodeOfflineError(err: unknown): err is EdgeNodeOfflineError {
  return err instanceof EdgeNodeOfflineError;
}
