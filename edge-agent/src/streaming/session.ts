/** What an operation handler prepares before the agent answers a request: the session it will run once accepted. */
import type { ChannelId } from '@edgefarm/proto';
import type { LinkResult, StreamLink } from '@edgefarm/streaming';

export interface PreparedSession {
  /** Channels the provider sends on (stdin for exec with stdin, port-forward data). */
  inputs: ChannelId[];
  /** Runs the session to its end; the result goes to the provider in the END frame. */
  run(link: StreamLink): Promise<LinkResult>;
  /** Releases what was prepared when the session never runs (the reply could not be sent). */
  abandon(): void;
}

/** Forwards a stream's data to a link channel (waiting for credit), then sends EOF on it. */
export async function forward(from: AsyncIterable<Uint8Array>, link: StreamLink, channel: ChannelId): Promise<void> {
  for await (const chunk of from) {
    await link.write(channel, chunk);
    if (link.ended) break;
  }
  link.eof(channel);
}

/** Everything a stream carried, as text (the error streams of the streaming protocols). */
export async function readText(from: AsyncIterable<Uint8Array>, limit = 64 * 1024): Promise<string> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of from) {
    if (n < limit) parts.push(c);
    n += c.length;
  }
  return Buffer.concat(parts).toString('utf8').slice(0, limit);
}
