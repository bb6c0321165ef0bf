import { translatePod } from './translate.js';
import { pod } from './testing.js';

describe('translation of what the managed /etc/hosts and the sandbox need', () => {
  it('carries hostAliases, the subdomain and the sysctls (normalized) to the edge', () => {
    const t = translatePod(
      pod({
        hostname: 'h',
        subdomain: 'sub',
        hostAliases: [{ ip: '123.45.67.89', hostnames: ['foo.remote', 'bar.remote'] }, { ip: '::1' }],
        securityContext: { sysctls: [{ name: 'net/ipv4/ip_local_port_range', value: '1024 65000' }] },
      }),
    );
    if (!t.ok) throw new Error(t.unsupported.join('; '));
    expect(t.spec.hostname).toBe('h');
    expect(t.spec.subdomain).toBe('sub');
    expect(t.spec.hostAliases.map((a) => ({ ip: a.ip, hostnames: a.hostnames }))).toEqual([
      { ip: '123.45.67.89', hostnames: ['foo.remote', 'bar.remote'] },
      { ip: '::1', hostnames: [] },
    ]);
    expect(t.spec.sysctls).toEqual({ 'net.ipv4.ip_local_port_range': '1024 65000' });
  });
});
