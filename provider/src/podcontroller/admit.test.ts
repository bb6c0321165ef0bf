import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { admissionRefusal, normalizeSysctl, rejectAtAdmission, unsafeSysctlPatternProblem } from './admit.js';
import { policyOf } from '../nodecontroller/node.js';
import { pod } from './testing.js';
import { PodWarnings } from './warnings.js';

const log = pino({ level: 'silent' });
const withSysctls = (names: string[], extra = {}) =>
  pod({ securityContext: { sysctls: names.map((name) => ({ name, value: '1' })) }, ...extra });

describe('admissionRefusal (the kubelet sysctl allowlist and OS predicate)', () => {
  it('admits the safe sysctls, with dots or slashes', () => {
    expect(admissionRefusal(withSysctls(['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_keepalive_probes']))).toBe(
      undefined,
    );
    expect(admissionRefusal(withSysctls(['kernel/shm_rmid_forced']))).toBe(undefined);
  });

  it('refuses an unsafe sysctl with SysctlForbidden and the kubelet message', () => {
    expect(admissionRefusal(withSysctls(['kernel.msgmax']))).toEqual({
      reason: 'SysctlForbidden',
      message: 'forbidden sysctl: "kernel.msgmax" not allowlisted',
    });
  });

  it('admits unsafe sysctls the node allows, by name or prefix', () => {
    expect(admissionRefusal(withSysctls(['kernel.msgmax', 'kernel.shmall']), ['kernel.msg*', 'kernel/shmall'])).toBe(undefined);
    expect(admissionRefusal(withSysctls(['kernel.sem']), ['kernel.msg*'])?.reason).toBe('SysctlForbidden');
  });

  it('refuses a network sysctl with hostNetwork', () => {
    expect(admissionRefusal(withSysctls(['net.ipv4.tcp_syncookies'], { hostNetwork: true }))).toEqual({
      reason: 'SysctlForbidden',
      message: 'forbidden sysctl: "net.ipv4.tcp_syncookies" not allowed with host net enabled',
    });
  });

  it('refuses a pod for another OS with PodOSNotSupported; linux or no os is admitted', () => {
    expect(admissionRefusal(pod({ os: { name: 'windows' } }))).toEqual({
      reason: 'PodOSNotSupported',
      message: "Failed to admit pod as the OS field doesn't match node OS",
    });
    expect(admissionRefusal(pod({ os: { name: 'linux' } }))).toBe(undefined);
    expect(admissionRefusal(pod())).toBe(undefined);
  });

  it('normalizes slash-separated names as utilsysctl.NormalizeName', () => {
    expect(normalizeSysctl('net/ipv4/conf/eno2.100/rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
    expect(normalizeSysctl('net.ipv4.conf.eno2/100.rp_filter')).toBe('net.ipv4.conf.eno2/100.rp_filter');
  });
});

describe('rejectAtAdmission', () => {
  it('fails the pod once with the reason, one Event and one count', async () => {
    const kube = new FakeKubeClient();
    const counted: string[] = [];
    const deps = { kube, warnings: new PodWarnings(kube, () => new Date()), rejected: (r: string) => counted.push(r) };
    const refusal = admissionRefusal(withSysctls(['kernel.msgmax']))!;
    await rejectAtAdmission(deps, kube.emitPod(withSysctls(['kernel.msgmax'])), refusal, log);
    const failed = kube.pods.get('default/web-1')!;
    expect(failed.status).toMatchObject({ phase: 'Failed', reason: 'SysctlForbidden', message: refusal.message });
    await rejectAtAdmission(deps, failed, refusal, log);
    expect(kube.calls.filter((c) => c.startsWith('replacePodStatus'))).toHaveLength(1);
    expect(kube.events.map((e) => e.reason)).toEqual(['SysctlForbidden']);
    expect(counted).toEqual(['SysctlForbidden']);
  });
});

describe('allowed unsafe sysctls of a node (the kubelet NewAllowlist checks)', () => {
  it('takes namespaced names and prefixes, refuses the rest', () => {
    for (const ok of ['kernel.msgmax', 'kernel.msg*', 'net.*', 'net.core.somaxconn', 'kernel/sem', 'fs.mqueue.*'])
      expect(unsafeSysctlPatternProblem(ok)).toBe(undefined);
    expect(unsafeSysctlPatternProblem('kernel.*')).toBe('"kernel.*" is not known to be namespaced');
    expect(unsafeSysctlPatternProblem('*')).toBe('"*" is not known to be namespaced');
    expect(unsafeSysctlPatternProblem('vm.swappiness')).toBe('"vm.swappiness" is not known to be namespaced');
    for (const bad of ['', 'Net.core', 'net..core', 'net.*.x', 42, 'a'.repeat(300)])
      expect(unsafeSysctlPatternProblem(bad)).toBe('not a sysctl name or a prefix ending in *');
  });

  it("an EdgeNode's spec.allowedUnsafeSysctls: the valid entries kept, each other one a problem", () => {
    const { policy, problems } = policyOf(
      { metadata: { name: 'edge-1' }, spec: { allowedUnsafeSysctls: ['kernel.msg*', 'vm.swappiness', 'net.core.somaxconn'] } },
      [],
    );
    expect(policy.allowedUnsafeSysctls).toEqual(['kernel.msg*', 'net.core.somaxconn']);
    expect(problems).toEqual(['spec.allowedUnsafeSysctls[1]: "vm.swappiness" is not known to be namespaced; ignored']);
  });
});
