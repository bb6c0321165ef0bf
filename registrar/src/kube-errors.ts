/**
 * Kubernetes API errors as client-go classifies them: by the reason of the v1.Status, by the HTTP code only when the
 * Status has none (the provider's kube/errors.ts does the same for its calls). @kubernetes/client-node 2.x throws an
 * ApiException with `code` and `body` (the Status as JSON text).
 */
export function statusCodeOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

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
  return typeof reason === 'string' && reason !== '' ? reason : undefined;
}

const is = (err: unknown, reason: string, code?: number): boolean => {
  const r = statusReasonOf(err);
  return r === reason || (r === undefined && code !== undefined && statusCodeOf(err) === code);
};

export const isNotFound = (err: unknown): boolean => is(err, 'NotFound', 404);
/** A resourceVersion or a precondition no longer matches. */
export const isConflict = (err: unknown): boolean => is(err, 'Conflict', 409);
export const isAlreadyExists = (err: unknown): boolean => is(err, 'AlreadyExists');
export const isForbidden = (err: unknown): boolean => is(err, 'Forbidden', 403);
