/**
 * Kubernetes API errors, classified as client-go's k8s.io/apimachinery/pkg/api/errors does it: by the reason of the
 * v1.Status the apiserver answers with, and by the HTTP code only when the Status carries no reason the API defines.
 * Never by message text.
 *
 * AlreadyExists (a create found the name taken) and Conflict (an update's resourceVersion, or a delete's UID
 * precondition, no longer matches) are both HTTP 409: only the reason tells them apart.
 *
 * @kubernetes/client-node 2.x throws an `ApiException` with `code` (the HTTP status) and `body`, the response body
 * as text (the Status as JSON); a body already parsed (an object) is read as well.
 */

/** The reasons of metav1.StatusReason a caller can act on; any other string counts as no reason. */
const KNOWN_REASONS = new Set([
  'Unauthorized',
  'Forbidden',
  'NotFound',
  'AlreadyExists',
  'Conflict',
  'Gone',
  'Invalid',
  'ServerTimeout',
  'Timeout',
  'TooManyRequests',
  'BadRequest',
  'MethodNotAllowed',
  'NotAcceptable',
  'RequestEntityTooLarge',
  'UnsupportedMediaType',
  'InternalError',
  'Expired',
  'ServiceUnavailable',
]);

/** The HTTP status of an API error, if it has one. */
export function statusCodeOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } } | null;
  for (const v of [e?.code, e?.statusCode, e?.response?.statusCode]) if (typeof v === 'number') return v;
  return undefined;
}

/** The `reason` of the v1.Status an API error carries, when it is one the API defines. */
export function statusReasonOf(err: unknown): string | undefined {
  let body = (err as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  const reason = (body as { reason?: unknown } | null | undefined)?.reason;
  return typeof reason === 'string' && KNOWN_REASONS.has(reason) ? reason : undefined;
}

function is(err: unknown, reason: string, code?: number): boolean {
  const r = statusReasonOf(err);
  return r === reason || (r === undefined && code !== undefined && statusCodeOf(err) === code);
}

/** 404 NotFound. */
export const isNotFound = (err: unknown): boolean => is(err, 'NotFound', 404);
/** 409 Conflict: the object changed since it was read (resourceVersion), or a precondition failed. */
export const isConflict = (err: unknown): boolean => is(err, 'Conflict', 409);
/** 409 AlreadyExists: a create found an object of that name. Only the Status reason says so. */
export const isAlreadyExists = (err: unknown): boolean => is(err, 'AlreadyExists');
