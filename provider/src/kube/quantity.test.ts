import { parseQuantity, formatQuantity, subtractReserved, QuantityError } from './quantity.js';

describe('quantities', () => {
  it.each([
    ['2', 2],
    ['1500m', 1.5],
    ['1Ki', 1024],
    ['100Mi', 100 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
    ['0.5', 0.5],
    [3, 3],
  ])('parses %s', (q, v) => expect(parseQuantity(q)).toBeCloseTo(v));

  it.each(['', 'abc', '1Xi', '--1', '1 Gi', '1.2.3'])('refuses %j with a clear error', (q) => {
    expect(() => parseQuantity(q)).toThrow(QuantityError);
    expect(() => parseQuantity(q)).toThrow(/not a Kubernetes quantity/);
  });

  it('formats cpu in millicores and never below zero', () => {
    expect(formatQuantity('cpu', 1.5)).toBe('1500m');
    expect(formatQuantity('memory', 1024.7)).toBe('1024');
    expect(formatQuantity('memory', -5)).toBe('0');
  });

  it('subtracts reserved resources the node has and ignores the others', () => {
    expect(subtractReserved({ cpu: '2', memory: '1Gi', pods: '110' }, { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': 1 })).toEqual({
      cpu: '1500m',
      memory: String(512 * 2 ** 20),
      pods: '110',
    });
    expect(subtractReserved({ cpu: '2' }, undefined)).toEqual({ cpu: '2' });
  });
});
