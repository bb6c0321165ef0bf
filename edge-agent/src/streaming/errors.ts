/** Errors of the agent's streaming requests; each becomes a StreamReply error with its code. */
import { edge } from '@edgefarm/proto';

export type StreamErrorCode = 'NotFound' | 'BadRequest' | 'Internal' | 'Timeout';

export class StreamRequestError extends Error {
  override name = 'StreamRequestError';
  constructor(
    readonly code: StreamErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export function isStreamRequestError(err: unknown): err is StreamRequestError {
  return err instanceof StreamRequestError;
}
export function isNotFound(err: unknown): boolean {
  return isStreamRequestError(err) && err.code === 'NotFound';
}

export const notFound = (message: string): StreamRequestError => new StreamRequestError('NotFound', message);
export const badRequest = (message: string): StreamRequestError => new StreamRequestError('BadRequest', message);

export const WIRE_CODES: Record<StreamErrorCode, edge.StreamErrorCode> = {
  NotFound: edge.StreamErrorCode.NOT_FOUND,
  BadRequest: edge.StreamErrorCode.BAD_REQUEST,
  Internal: edge.StreamErrorCode.INTERNAL,
  Timeout: edge.StreamErrorCode.TIMEOUT,
};
