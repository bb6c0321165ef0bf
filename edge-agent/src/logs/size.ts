/**
 * Byte sizes as settings take them: a Kubernetes quantity without fractions (`10Mi`, `512Ki`, `1G`, `1048576`), the
 * form of the kubelet's containerLogMaxSize. Only the binary (Ki, Mi, Gi, Ti) and decimal (k, K, M, G, T) suffixes;
 * the result must be a safe integer.
 */

/** Raised for text that is not a byte size. */
export class ByteSizeError extends Error {
  override name = 'ByteSizeError';
}

const MULTIPLIERS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

export function parseByteSize(text: string): number {
  const m = /^(\d{1,16})(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(text);
  if (!m) throw new ByteSizeError(`"${text.slice(0, 40)}" is not a byte size (a whole number with Ki, Mi, Gi, Ti, k, M, G or T)`);
  const bytes = Number(m[1]) * MULTIPLIERS[m[2] ?? '']!;
  if (!Number.isSafeInteger(bytes)) throw new ByteSizeError(`${m[0]} is too large`);
  return bytes;
}

/** The shortest binary form of a byte size (`10Mi`), or the number of bytes when it is not a whole Ki. */
export function formatByteSize(bytes: number): string {
  for (const [suffix, n] of [
    ['Ti', 2 ** 40],
    ['Gi', 2 ** 30],
    ['Mi', 2 ** 20],
    ['Ki', 2 ** 10],
  ] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${suffix}`;
  }
  return String(bytes);
}
