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
const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$/;

export class QuantityError extends Error {
  override name = 'QuantityError';
}

export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) throw new QuantityError(`"${q}" is not a quantity`);
    return q;
  }
  const m = QUANTITY.exec(q.trim());
  if (!m) throw new QuantityError(`"${q}" is not a Kubernetes quantity`);
  const base = Number(m[1]);
  return m[2] ? base * 10 ** Number(m[2].slice(1)) : base * SUFFIX[m[3] ?? '']!;
}

export function formatQuantity(resource: string, value: number): string {
  const v = Math.max(0, value);
  return resource === 'cpu' ? `${Math.round(v * 1000)}m` : String(Math.floor(v));
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
