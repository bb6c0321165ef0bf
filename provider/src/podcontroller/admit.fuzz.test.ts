/**
 * Fuzz: hostile sysctl names (a pod's securityContext.sysctls) and allow-list entries (an EdgeNode's
 * spec.allowedUnsafeSysctls). Invariants: nothing throws; normalization is idempotent; a refusal is SysctlForbidden
 * or PodOSNotSupported with a message; an allow-list entry accepted by unsafeSysctlPatternProblem never lets a
 * non-namespaced sysctl (vm.*, kernel.* outside ipc) through, and a name the safe set holds is always admitted.
 */
import { fc, fuzzProperty, hostileString } from '@edgefarm/testing/fuzz';
import { ADMISSION_REASONS, SAFE_SYSCTLS, admissionRefusal, normalizeSysctl, unsafeSysctlPatternProblem } from './admit.js';
import { pod } from './testing.js';

const names = fc.oneof(
  hostileString('./*abcknrelmsgtv0-_ '),
  fc.constantFrom(
    ...SAFE_SYSCTLS,
    'kernel.msgmax',
    'kernel/msgmax',
    'vm.swappiness',
    'kernel.panic',
    'net.core.somaxconn',
    'fs.mqueue.msg_max',
  ),
  fc
    .array(fc.constantFrom('net', 'kernel', 'vm', 'fs', 'mqueue', 'msg', 'shm', 'ipv4', 'core', '*', ''), { maxLength: 5 })
    .map((a) => a.join('.')),
);

it('admission: hostile sysctls and allow lists never throw, and no non-namespaced sysctl is ever allowed', () => {
  const r = fuzzProperty(
    'podcontroller/admit',
    [fc.array(names, { maxLength: 4 }), fc.array(names, { maxLength: 4 }), fc.boolean(), fc.option(hostileString('linuxwdos'))],
    (sysctls, patterns, hostNetwork, os) => {
      for (const s of sysctls) if (normalizeSysctl(normalizeSysctl(s)) !== normalizeSysctl(s)) return false;
      const allowList = patterns.filter((p) => unsafeSysctlPatternProblem(p) === undefined);
      const p = pod({
        hostNetwork,
        os: os === null ? undefined : { name: os },
        securityContext: { sysctls: sysctls.map((name) => ({ name, value: '1' })) },
      });
      const refusal = admissionRefusal(p, allowList);
      if (refusal && (!ADMISSION_REASONS.includes(refusal.reason) || refusal.message === '')) return false;
      if (!refusal) {
        for (const s of sysctls.map(normalizeSysctl)) {
          if (SAFE_SYSCTLS.includes(s)) continue;
          if (s.startsWith('vm.') || (s.startsWith('kernel.') && !/^kernel\.(shm|msg|sem)/.test(s))) return false;
        }
      }
      for (const s of sysctls)
        if (SAFE_SYSCTLS.includes(normalizeSysctl(s)) && !hostNetwork && (os === null || os === 'linux')) {
          const alone = admissionRefusal(pod({ securityContext: { sysctls: [{ name: s, value: '1' }] } }), []);
          if (alone) return false;
        }
      return true;
    },
  );
  process.stdout.write(`${JSON.stringify(r)}\n`);
}, 600_000);
