/**
 * Kubernetes resource quantities (k8s.io/apimachinery resource.Quantity), only as far as allocatable = capacity -
 * reserved needs: parse to a number, subtract, and format back. CPU is formatted in millicores, everything else as a
 * plain integer. (@kubernetes/client-node parses quantities internally but does not export it.)
 */
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
// Unambiguous, so a failed match backtracks linearly: digits, then optionally a dot and digits (`\d+\.?\d*` could
// split a run of digits two ways and took quadratic time on a long one that ends badly).
const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$/;

/**
 * Quantities at or beyond 2^63 in magnitude are refused: Kubernetes reads them as int64 (Value(), MilliValue()) and
 * the edge contract carries them as int64; beyond that lies Infinity (`1e999999999`), which no consumer can use.
 */
export const MAX_QUANTITY = 2 ** 63;

export class QuantityError extends Error {
  override name = 'QuantityError';
}

/** Shown in messages: a quantity may be hostile and huge. */
function shown(q: string | number): string {
  const s = String(q);
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}

export function parseQuantity(q: string | number): number {
  let value: number;
  if (typeof q === 'number') {
    value = q;
  } else {
    const m = QUANTITY.exec(q.trim());
    if (!m) throw new QuantityError(`"${shown(q)}" is not a Kubernetes quantity`);
    // Number() reads the decimal with its exponent exactly (and linearly however many digits); 0e<huge> is 0.
    value = m[2] ? Number(m[1]! + m[2]) : Number(m[1]) * SUFFIX[m[3] ?? '']!;
  }
  if (!Number.isFinite(value) || Math.abs(value) >= MAX_QUANTITY) {
    throw new QuantityError(`"${shown(q)}" is out of range (a quantity's magnitude must be below 2^63)`);
  }
  return value === 0 ? 0 : value;
}

/**
 * Formats a value as a quantity that parses back to it (cpu in millicores, rounded; others as an integer, floored),
 * in plain digits however large (String(1e21) would be "1e+21", and "1e+24m" is no quantity).
 */
export function formatQuantity(resource: string, value: number): string {
  const v = Number.isFinite(value) ? Math.max(0, value) : 0;
  return resource === 'cpu' ? `${BigInt(Math.round(v * 1000))}m` : String(BigInt(Math.floor(v)));
}

/** allocatable minus reserved, per resource; a reserved resource the node does not have is ignored. */
export function subtractReserved(
  allocatable: Record<string, string>,
  reserved: Record<string, string | number> | undefined,
): Record<string, string> {
  if (!reserved) return { ...allocatable };
  const out: Record<string, string> = { ...allocatable };
  for (const [name, amount] of Object.entries(reserved)) {
    const have = allocatable[name];
    if (have === undefined) continue;
    out[name] = formatQuantity(name, parseQuantity(have) - parseQuantity(amount));
  }
  return out;
}
