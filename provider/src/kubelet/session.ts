/**
 * Runs one exec or attach session between the client's channels (SPDY streams or WebSocket channels: the caller
 * adapts them) and an EdgeStreams {@link StreamSession}: stdin and resizes go to the edge, stdout and stderr come
 * back, and the end is reported as a Status the way the negotiated protocol wants it.
 */
import type { Logger } from 'pino';
import type { StreamSession } from './edge-streams.js';
import { failure, nonZeroExit, statusOfError, success, type V1Status } from './status.js';

/** Where output goes. write resolves when the client took the bytes (its backpressure). */
export interface OutputChannel {
  write(chunk: Uint8Array): Promise<void>;
  end(): Promise<void>;
}

export interface SessionChannels {
  stdin?: AsyncIterable<Uint8Array>;
  stdout?: OutputChannel;
  stderr?: OutputChannel;
  /** Terminal sizes as the client sends them. */
  resize?: AsyncIterable<{ width: number; height: number }>;
  /** Reports how the session ended (v4+: the Status as JSON; older protocols: the message of a failure). */
  status(s: V1Status): Promise<void>;
  /** Settles when the client went away (the session is then closed). */
  clientGone: Promise<void>;
}

/** Copies an iterable into a writer; resolves when the source ends. */
export async function pump(src: AsyncIterable<Uint8Array>, write: (chunk: Uint8Array) => Promise<void>): Promise<void> {
  for await (const chunk of src) await write(chunk);
}

/** Opens the session, bridges it, reports its end. Never rejects. */
export async function runSession(open: () => Promise<StreamSession>, ch: SessionChannels, log: Logger): Promise<void> {
  let session: StreamSession;
  try {
    session = await open();
  } catch (err) {
    log.info({ err: (err as Error).message }, 'exec/attach could not start');
    await ch.status(statusOfError(err)).catch(() => undefined);
    return;
  }
  let gone = false;
  void ch.clientGone.then(() => {
    gone = true;
    session.close();
  });
  const quiet = (what: string) => (err: unknown) => {
    if (!gone) log.debug({ err: (err as Error)?.message, what }, 'session channel ended with an error');
  };
  if (ch.stdin) {
    const stdin = ch.stdin;
    void (async () => {
      await pump(stdin, (c) => session.writeStdin(c));
      await session.closeStdin();
    })().catch(quiet('stdin'));
  }
  if (ch.resize) {
    const resize = ch.resize;
    void (async () => {
      for await (const r of resize) session.resize(r.width, r.height);
    })().catch(quiet('resize'));
  }
  const outputs: Promise<void>[] = [];
  for (const [src, dst, name] of [
    [session.stdout, ch.stdout, 'stdout'],
    [session.stderr, ch.stderr, 'stderr'],
  ] as const) {
    if (!src) continue;
    outputs.push(
      (async () => {
        // An empty chunk is no output: the kubelet never sends an empty data message, and client-go may not have
        // made the stream yet when one arrives first ("Unknown stream id 1, discarding message" on kubectl cp).
        if (dst) await pump(src, (c) => (c.length > 0 ? dst.write(c) : Promise.resolve()));
        else for await (const _ of src); // drain what nobody asked for
        await dst?.end();
      })().catch(quiet(name)),
    );
  }
  for (const [src, dst] of [
    [session.stdout, ch.stdout],
    [session.stderr, ch.stderr],
  ] as const) {
    if (!src && dst) outputs.push(dst.end().catch(quiet('end')));
  }
  const result = await session.done;
  await Promise.all(outputs);
  if (gone) return;
  const status = result.error
    ? failure(500, 'InternalError', result.error)
    : result.exitCode === 0
      ? success()
      : nonZeroExit(result.exitCode);
  await ch.status(status).catch(quiet('status'));
}
