/**
 * Checks of every value that goes into a JWT or a server configuration: nkeys (kind and checksum), seeds, node
 * names, listener addresses, URLs, file paths, dates. Each refuses with an {@link IdentityInputError} naming the
 * field; a seed never appears in a message.
 */
import { fromPublic, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { IdentityInputError } from './errors.js';

/** The nkey kinds a fleet uses, by the first character of their public key. */
export const KeyKinds = { operator: 'O', account: 'A', user: 'U' } as const;
export type KeyKind = keyof typeof KeyKinds;

const PUBLIC_KEY = /^[A-Z2-7]{56}$/;
const SEED = /^S[A-Z2-7]{57}$/;

/** `value` as a public nkey of this kind (checksum verified); refuses anything else, including a seed. */
export function publicKey(kind: KeyKind, value: unknown, field: string): string {
  if (typeof value !== 'string' || !PUBLIC_KEY.test(value) || value[0] !== KeyKinds[kind]) {
    throw new IdentityInputError(field, `not ${article(kind)} ${kind} public nkey (${KeyKinds[kind]} and 55 base32 characters)`);
  }
  try {
    fromPublic(value);
  } catch (err) {
    throw new IdentityInputError(field, `not a valid ${kind} public nkey (bad checksum)`, { cause: err });
  }
  return value;
}

/** The key pair of a seed of this kind; refuses anything else. The seed is not quoted in the error. */
export function seedKeyPair(kind: KeyKind, seed: unknown, field: string): KeyPair {
  if (typeof seed !== 'string' || !SEED.test(seed)) throw new IdentityInputError(field, `not an nkey seed`);
  let kp: KeyPair;
  try {
    kp = fromSeed(new TextEncoder().encode(seed));
  } catch {
    // the library's error may carry the input: not passed on
    throw new IdentityInputError(field, 'not a valid nkey seed (bad checksum or prefix)');
  }
  // a seed's second character is its key's kind (SU, SA, SO), so no ed25519 key is derived only to check it
  if (seed[1] !== KeyKinds[kind]) throw new IdentityInputError(field, `not ${article(kind)} ${kind} seed`);
  return kp;
}

/** The seed of a key pair as text. */
export function seedText(kp: KeyPair): string {
  return new TextDecoder().decode(kp.getSeed());
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Kubernetes node name (an RFC 1123 subdomain, at most 253 characters). */
export function nodeName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || !DNS_SUBDOMAIN.test(value)) {
    throw new IdentityInputError(field, 'not a node name (lower-case letters, digits, "-" and ".", at most 253 characters)');
  }
  return value;
}

/**
 * A string that can stand quoted in a nats-server configuration: no quote, backslash, `$` (variable syntax) or
 * control character, at most 4096 characters.
 */
export function confString(value: unknown, field: string): string {
  // eslint-disable-next-line no-control-regex
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096 || /["\\$\u0000-\u001f\u007f]/.test(value)) {
    throw new IdentityInputError(field, 'not a usable value (empty, too long, or with a quote, backslash, $ or control character)');
  }
  return value;
}

const HOST = String.raw`(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])`;
const HOST_PORT = new RegExp(`^(${HOST}):(\\d{1,5})$`);

/** `host:port` of a listener (`[v6]:port` for IPv6). */
export function hostPort(value: unknown, field: string): { host: string; port: number } {
  const m = typeof value === 'string' ? HOST_PORT.exec(value) : null;
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw new IdentityInputError(field, 'not host:port');
  return { host: m[1]!, port };
}

/** True for a loopback host (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** A server URL of one of `schemes` (`tls://host:port`, `nats-route://host:port`, ...), no path or credentials. */
export function serverUrl(value: unknown, schemes: readonly string[], field: string): string {
  const m = typeof value === 'string' ? /^([a-z-]+):\/\/(.+)$/.exec(value) : null;
  if (!m || !schemes.includes(m[1]!)) throw new IdentityInputError(field, `not a ${schemes.join(' or ')} URL`);
  hostPort(m[2], field);
  return value as string;
}

/** A valid date strictly after `after`; at most `maxMs` later when given. */
export function dateAfter(value: unknown, after: Date, field: string, maxMs?: number): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new IdentityInputError(field, 'not a valid date');
  if (value.getTime() <= after.getTime()) throw new IdentityInputError(field, `must be after ${after.toISOString()}`);
  if (maxMs !== undefined && value.getTime() - after.getTime() > maxMs) {
    throw new IdentityInputError(field, `must be at most ${Math.round(maxMs / 86_400_000)} days after ${after.toISOString()}`);
  }
  return value;
}

/** Unix seconds of a date (what JWTs carry). */
export function unixSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

function article(kind: KeyKind): string {
  return kind === 'operator' || kind === 'account' ? 'an' : 'a';
}
