/** Waiting for a writable to drain without leaving listeners behind. */
import { once, type EventEmitter } from 'node:events';

/** Resolves true once `stream` emits 'drain', false if it closes first. */
export async function drained(stream: EventEmitter): Promise<boolean> {
  const ac = new AbortController();
  const drain = once(stream, 'drain', { signal: ac.signal }).then(() => true);
  const close = once(stream, 'close', { signal: ac.signal }).then(() => false);
  drain.catch(() => undefined);
  close.catch(() => undefined);
  try {
    return await Promise.race([drain, close]);
  } finally {
    ac.abort();
  }
}
