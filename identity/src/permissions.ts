/** Proto's permission sets in the shape NATS JWTs carry them. */
import type { Permissions } from '@nats-io/jwt';
import type { SubjectPermissions } from '@edgefarm/proto';

/** Nanoseconds per millisecond: JWTs carry durations as Go's time.Duration. */
const NS_PER_MS = 1_000_000;

/** A permission set as a JWT's `pub`/`sub`/`resp` (allow and deny lists copied, `resp` in nanoseconds). */
export function jwtPermissions(p: SubjectPermissions): Permissions {
  return {
    pub: { allow: [...p.pub.allow], deny: [...p.pub.deny] },
    sub: { allow: [...p.sub.allow], deny: [...p.sub.deny] },
    ...(p.resp ? { resp: { max: p.resp.max, ttl: p.resp.ttlMs * NS_PER_MS } } : {}),
  };
}

/** A JWT's `pub`/`sub`/`resp` back as a permission set (what a test compares with proto's). */
export function subjectPermissions(p: Permissions): SubjectPermissions {
  return {
    pub: { allow: [...(p.pub?.allow ?? [])], deny: [...(p.pub?.deny ?? [])] },
    sub: { allow: [...(p.sub?.allow ?? [])], deny: [...(p.sub?.deny ?? [])] },
    ...(p.resp && p.resp.max !== undefined && p.resp.ttl !== undefined ? { resp: { max: p.resp.max, ttlMs: p.resp.ttl / NS_PER_MS } } : {}),
  };
}
