/**
 * metav1.Status bodies, as the kubelet answers errors on its HTTP endpoints and on the error stream of
 * remotecommand v4+ (pkg/kubelet/cri/streaming/remotecommand/exec.go). Also maps EdgeStreams errors to them.
 */
import { isEdgeNodeOfflineError, isEdgeStreamError, type EdgeStreamErrorCode } from './edge-streams.js';

export interface V1Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: { reason: string; message: string }[] };
}

export function success(): V1Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
}

export function failure(code: number, reason: string, message: string): V1Status {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** The Status of a process that exited non-zero (reason NonZeroExitCode, cause ExitCode), as kubectl reads it. */
export function nonZeroExit(exitCode: number): V1Status {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

const BY_CODE: Record<EdgeStreamErrorCode, [number, string]> = {
  NotFound: [404, 'NotFound'],
  BadRequest: [400, 'BadRequest'],
  Internal: [500, 'InternalError'],
  Timeout: [504, 'Timeout'],
};

/** The Status (with HTTP code) of an error an EdgeStreams call threw. */
export function statusOfError(err: unknown): V1Status {
  if (isEdgeNodeOfflineError(err)) return failure(503, 'ServiceUnavailable', err.message);
  if (isEdgeStreamError(err)) {
    const [code, reason] = BY_CODE[err.code];
    return failure(code, reason, err.message);
  }
  return failure(500, 'InternalError', `error talking to the edge node: ${(err as Error)?.message ?? String(err)}`);
}
