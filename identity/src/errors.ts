/** The errors of @edgefarm/identity, classified by predicates (never by message text). */

/**
 * Input refused before anything was signed or written: a key of the wrong kind or with a bad checksum, a node name
 * that is not a DNS subdomain, a value that cannot go into a server configuration, a dead expiry. `field` names the
 * input. The message never contains a seed.
 */
export class IdentityInputError extends Error {
  override name = 'IdentityInputError';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${field}: ${message}`, options);
  }
}
export function isIdentityInputError(err: unknown): err is IdentityInputError {
  return err instanceof IdentityInputError;
}

/** The hub did not confirm an account JWT pushed with $SYS.REQ.CLAIMS.UPDATE (no answer, or a code other than 200). */
export class ClaimsUpdateError extends Error {
  override name = 'ClaimsUpdateError';
  constructor(
    message: string,
    /** The server's code when it answered (e.g. 400, 500), undefined when it did not. */
    readonly code?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
export function isClaimsUpdateError(err: unknown): err is ClaimsUpdateError {
  return err instanceof ClaimsUpdateError;
}

/** A fleet identity directory that cannot be used: missing or half-written files, wrong modes, foreign content. */
export class IdentityStoreError extends Error {
  override name = 'IdentityStoreError';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}
export function isIdentityStoreError(err: unknown): err is IdentityStoreError {
  return err instanceof IdentityStoreError;
}
