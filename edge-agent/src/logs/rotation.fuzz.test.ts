import { fc, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { COMPRESS_SUFFIX, planRotation } from './rotation.js';

const LOG = '/logs/ns_pod_uid/c/0.log';
/** The names a container's log directory may hold beside its current file: rotations, their gzips, temporaries, junk. */
const sibling = fc.oneof(
  fc
    .date({ min: new Date(0), max: new Date(4102444800000), noInvalidDate: true })
    .map((d) => `${LOG}.${d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 19)}`),
  fc
    .tuple(fc.nat(99), fc.constantFrom('', COMPRESS_SUFFIX, `${COMPRESS_SUFFIX}.tmp`, '.tmp'))
    .map(([n, s]) => `${LOG}.2026${String(n).padStart(4, '0')}-000000.000${s}`),
  hostileString().map((s) => `${LOG}.${s}`),
);

describe('planRotation (fuzzed)', () => {
  it('removes and compresses only what it was given, each once, and keeps at most maxFiles - 2 rotated files', () => {
    fuzzProperty(
      'edge-agent log rotation plan',
      [fc.uniqueArray(sibling, { maxLength: 30 }), fc.integer({ min: 2, max: 8 })],
      (siblings, maxFiles) => {
        const plan = planRotation(siblings, { maxSizeBytes: 1, maxFiles });
        const given = new Set(siblings);
        const removed = new Set(plan.remove);
        if (removed.size !== plan.remove.length) return false;
        if (![...plan.remove, ...plan.compress].every((f) => given.has(f))) return false;
        if (plan.compress.some((f) => removed.has(f) || f.endsWith(COMPRESS_SUFFIX))) return false;
        const kept = siblings.filter((f) => !removed.has(f));
        return kept.length <= maxFiles - 2;
      },
    );
  });
});
