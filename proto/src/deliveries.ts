/**
 * What JetStream writes into the messages it delivers, parsed: the reply (ack) subject of a push delivery. The
 * agent's listing of its node's hub subjects reads the consumer's pending count from it (edge-agent
 * desired/hub-listing.ts).
 */

/** What a JetStream delivery's reply (ack) subject says of it: see {@link parseAckReply}. */
export interface AckReply {
  /** The messages its consumer had left to deliver after this one. */
  pending: number;
  /** The message's own subject, when the reply carries it (a `@<subject>` suffix). */
  subject?: string;
}

/**
 * Parses a JetStream delivery's reply (ack) subject: `$JS.ACK.<stream>.<consumer>.<dlv>.<sseq>.<cseq>.<ts>.<pending>`
 * or the form with domain and account hash (`$JS.ACK.<domain>.<hash>.<stream>.<consumer>.<dlv>.<sseq>.<cseq>.<ts>.
 * <pending>.<random>`), with the `@<subject>` suffix nats-server 2.12 appends over leaf links. Undefined when the
 * reply is not in either form.
 */
export function parseAckReply(reply: string | undefined): AckReply | undefined {
  if (reply === undefined) return undefined;
  const at = reply.indexOf('@');
  const t = (at >= 0 ? reply.slice(0, at) : reply).split('.');
  if (t[0] !== '$JS' || t[1] !== 'ACK' || (t.length !== 9 && t.length < 11)) return undefined;
  const raw = t.length === 9 ? t[8]! : t[10]!;
  if (!/^\d+$/.test(raw)) return undefined;
  const pending = Number(raw);
  if (!Number.isSafeInteger(pending)) return undefined;
  const subject = at >= 0 ? reply.slice(at + 1) : '';
  return subject ? { pending, subject } : { pending };
}
