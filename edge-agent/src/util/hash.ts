import { createHash } from 'node:crypto';

/** Short, stable hex digest (first 16 hex chars of sha256) used for spec hashes in CRI annotations. */
export function shortHash(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 16);
}
