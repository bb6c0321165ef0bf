/**
 * JSON values written back to back on a byte stream, as Go's json.Encoder writes terminal sizes to the resize
 * stream. Yields each top-level object; a malformed one is logged and skipped; more than `maxPending` bytes without
 * a complete object ends the iteration (a client that floods the stream gets no more resizes).
 */
import type { Logger } from 'pino';

export async function* jsonObjects(src: AsyncIterable<Uint8Array>, log: Logger, maxPending = 16 * 1024): AsyncIterable<unknown> {
  let pending = '';
  const decoder = new TextDecoder();
  let flooded = false;
  for await (const chunk of src) {
    if (flooded) continue; // keep draining so the sender is not blocked
    pending += decoder.decode(chunk, { stream: true });
    let depth = 0;
    let inString = false;
    let escaped = false;
    let start = -1;
    let consumed = 0;
    for (let i = 0; i < pending.length; i++) {
      const c = pending[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '{') {
        if (depth++ === 0) start = i;
      } else if (c === '}' && depth > 0 && --depth === 0) {
        const text = pending.slice(start, i + 1);
        consumed = i + 1;
        try {
          yield JSON.parse(text);
        } catch {
          log.info({ text: text.slice(0, 200) }, 'malformed JSON object skipped');
        }
      } else if (depth === 0 && !/\s/.test(c ?? '')) {
        consumed = i + 1; // stray bytes between objects
      }
    }
    pending = pending.slice(consumed);
    if (pending.length > maxPending) {
      log.info({ bytes: pending.length }, 'no complete JSON object in the stream; ignoring the rest');
      flooded = true;
      pending = '';
    }
  }
}

/** Terminal sizes from the resize channel: JSON objects {"Width":80,"Height":24} (remotecommand.TerminalSize). */
export async function* terminalSizes(src: AsyncIterable<Uint8Array>, log: Logger): AsyncIterable<{ width: number; height: number }> {
  for await (const o of jsonObjects(src, log)) {
    const { Width, Height } = (o ?? {}) as { Width?: unknown; Height?: unknown };
    if (Number.isInteger(Width) && Number.isInteger(Height)) yield { width: Width as number, height: Height as number };
    else log.info({ value: JSON.stringify(o).slice(0, 200) }, 'resize message without integer Width and Height: ignored');
  }
}
