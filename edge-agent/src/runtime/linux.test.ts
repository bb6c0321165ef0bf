import { create } from '@bufbuild/protobuf';
import { cri, edge } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { podSpec } from '@edgefarm/testing';
import {
  imageUser,
  linuxResources,
  linuxSecurityContext,
  milliCpuToQuota,
  milliCpuToShares,
  oomScoreAdj,
  podQos,
  runAsNonRootViolation,
} from './linux.js';

const Mi = 1024n * 1024n;
const node = { memoryCapacityBytes: 8 * 1024 * 1024 * 1024, swapControllerV1: true };
type Res = MessageInitShape<typeof edge.ResourcesSchema>;
const ctr = (resources?: Res, securityContext?: MessageInitShape<typeof edge.SecurityContextSchema>) =>
  create(edge.EdgeContainerSchema, { name: 'app', image: 'img', resources, securityContext });
const podWith = (...rs: (Res | undefined)[]) => podSpec({ containers: rs.map((r, i) => ({ name: `c${i}`, image: 'img', resources: r })) });

describe('resources -> CRI LinuxContainerResources (kubelet)', () => {
  it.each([
    [0, 2],
    [1, 2],
    [2, 2],
    [3, 3],
    [100, 102],
    [250, 256],
    [1000, 1024],
    [1500, 1536],
    [256_000, 262_144],
    [1_000_000, 262_144],
    [-5, 2],
  ])('milliCpuToShares(%d) = %d', (milli, shares) => expect(milliCpuToShares(milli)).toBe(shares));

  it.each([
    [0, 0],
    [-1, 0],
    [1, 1000],
    [5, 1000],
    [10, 1000],
    [11, 1100],
    [250, 25_000],
    [1000, 100_000],
    [2500, 250_000],
  ])('milliCpuToQuota(%d) = %d', (milli, quota) => expect(milliCpuToQuota(milli)).toBe(quota));

  it.each<[string, (Res | undefined)[], string]>([
    ['nothing set', [undefined, {}], 'BestEffort'],
    ['limits only (requests default to them)', [{ cpuLimitMillis: 500n, memoryLimitBytes: 64n * Mi }], 'Guaranteed'],
    ['requests = limits', [{ cpuRequestMillis: 500n, cpuLimitMillis: 500n, memoryRequestBytes: Mi, memoryLimitBytes: Mi }], 'Guaranteed'],
    ['request below limit', [{ cpuRequestMillis: 100n, cpuLimitMillis: 500n, memoryLimitBytes: Mi }], 'Burstable'],
    ['memory limit only', [{ memoryLimitBytes: Mi }], 'Burstable'],
    ['one container without limits', [{ cpuLimitMillis: 1n, memoryLimitBytes: Mi }, undefined], 'Burstable'],
    ['request only', [{ cpuRequestMillis: 100n }], 'Burstable'],
    ['negative values are unset', [{ cpuRequestMillis: -1n, memoryLimitBytes: -5n }], 'BestEffort'],
  ])('QoS: %s', (_name, rs, qos) => expect(podQos(podWith(...rs))).toBe(qos));

  it('QoS counts init containers', () => {
    const pod = podSpec({
      containers: [{ name: 'a', image: 'img', resources: { cpuLimitMillis: 100n, memoryLimitBytes: Mi } }],
      initContainers: [{ name: 'i', image: 'img' }],
    });
    expect(podQos(pod)).toBe('Burstable');
  });

  it.each([
    ['Guaranteed', 0, -997],
    ['BestEffort', 0, 1000],
    ['Burstable', 0, 999], // 1000 - 0 would equal BestEffort's: one less
    ['Burstable', 4 * 1024 * 1024 * 1024, 500],
    ['Burstable', 8 * 1024 * 1024 * 1024, 3], // request = capacity: floor at 1000 - 997
    ['Burstable', 16 * 1024 * 1024 * 1024, 3],
    ['Burstable', 1, 999],
  ] as const)('oomScoreAdj(%s, request %d) = %d', (qos, request, adj) =>
    expect(oomScoreAdj(qos, request, node.memoryCapacityBytes)).toBe(adj),
  );

  it('container: shares from the request, quota and memory from the limits, swap pinned to the memory limit on cgroup v1', () => {
    const pod = podWith({ cpuRequestMillis: 250n, cpuLimitMillis: 500n, memoryRequestBytes: 32n * Mi, memoryLimitBytes: 64n * Mi });
    expect(linuxResources(pod, pod.containers[0]!, node)).toEqual({
      cpuShares: 256n,
      cpuPeriod: 100_000n,
      cpuQuota: 50_000n,
      memoryLimitInBytes: 64n * Mi,
      memorySwapLimitInBytes: 64n * Mi,
      oomScoreAdj: BigInt(1000 - Math.trunc((1000 * 32 * 1024 * 1024) / node.memoryCapacityBytes)),
    });
  });

  it('container: shares from the limit without a request; no swap limit without the v1 swap controller', () => {
    const pod = podWith({ cpuLimitMillis: 2000n, memoryLimitBytes: 32n * Mi });
    const r = linuxResources(pod, pod.containers[0]!, { ...node, swapControllerV1: false });
    expect(r).toEqual({ cpuShares: 2048n, cpuPeriod: 100_000n, cpuQuota: 200_000n, memoryLimitInBytes: 32n * Mi, oomScoreAdj: -997n });
  });

  it('container: BestEffort gets the minimum shares, no quota, no memory limit', () => {
    const pod = podWith(undefined);
    expect(linuxResources(pod, pod.containers[0]!, node)).toEqual({ cpuShares: 2n, cpuPeriod: 100_000n, cpuQuota: 0n, oomScoreAdj: 1000n });
  });
});

describe('security context -> CRI LinuxContainerSecurityContext (kubelet)', () => {
  const root = imageUser(undefined);

  it('imageUser: numeric uid, else user name, else root', () => {
    expect(imageUser({ uid: { value: 1000n }, username: '' })).toEqual({ uid: 1000n, username: '' });
    expect(imageUser({ username: 'nobody' })).toEqual({ username: 'nobody' });
    expect(imageUser({ username: '' })).toEqual({ uid: 0n, username: '' });
    expect(root).toEqual({ uid: 0n, username: '' });
  });

  it('no security context: the image user, unconfined seccomp, privileges may escalate', () => {
    expect(linuxSecurityContext(ctr(), { uid: 5n, username: '' })).toEqual({
      privileged: false,
      readonlyRootfs: false,
      capabilities: { addCapabilities: [], dropCapabilities: [] },
      supplementalGroups: [],
      noNewPrivs: false,
      seccomp: { profileType: cri.SecurityProfile_ProfileType.Unconfined },
      runAsUser: { value: 5n },
      runAsUsername: '',
    });
    const named = linuxSecurityContext(ctr(), { username: 'app' });
    expect(named.runAsUser).toBeUndefined();
    expect(named.runAsUsername).toBe('app');
  });

  it('everything set', () => {
    const sc = linuxSecurityContext(
      ctr(undefined, {
        runAsUser: 1000n,
        runAsGroup: 0n,
        readOnlyRootFilesystem: true,
        privileged: true,
        capabilitiesAdd: ['NET_ADMIN', 'SYS_TIME'],
        capabilitiesDrop: ['ALL'],
        allowPrivilegeEscalation: false,
        supplementalGroups: [2000n, 3000n],
        seccompProfile: 'RuntimeDefault',
      }),
      root,
    );
    expect(sc).toEqual({
      privileged: true,
      readonlyRootfs: true,
      capabilities: { addCapabilities: ['NET_ADMIN', 'SYS_TIME'], dropCapabilities: ['ALL'] },
      supplementalGroups: [2000n, 3000n],
      noNewPrivs: true,
      seccomp: { profileType: cri.SecurityProfile_ProfileType.RuntimeDefault },
      runAsUser: { value: 1000n },
      runAsGroup: { value: 0n },
    });
  });

  it.each([
    [undefined, false],
    [true, false],
    [false, true],
  ])('allowPrivilegeEscalation %s -> no_new_privs %s', (allow, nnp) => {
    expect(linuxSecurityContext(ctr(undefined, { allowPrivilegeEscalation: allow }), root).noNewPrivs).toBe(nnp);
  });

  it.each([
    ['', cri.SecurityProfile_ProfileType.Unconfined],
    ['Unconfined', cri.SecurityProfile_ProfileType.Unconfined],
    ['RuntimeDefault', cri.SecurityProfile_ProfileType.RuntimeDefault],
    ['Localhost', cri.SecurityProfile_ProfileType.Unconfined],
  ])('seccomp %j', (profile, type) => {
    expect(linuxSecurityContext(ctr(undefined, { seccompProfile: profile }), root).seccomp).toEqual({ profileType: type });
  });

  describe('runAsNonRoot (verifyRunAsNonRoot)', () => {
    const pod = { name: 'web', namespace: 'ns', uid: 'u-1' };
    const who = '(pod: "web_ns(u-1)", container: app)';
    it.each<[string, MessageInitShape<typeof edge.SecurityContextSchema> | undefined, ReturnType<typeof imageUser>, string]>([
      ['not asked', undefined, root, ''],
      ['false', { runAsNonRoot: false }, root, ''],
      [
        'runAsUser 0',
        { runAsNonRoot: true, runAsUser: 0n },
        { uid: 1000n, username: '' },
        `container's runAsUser breaks non-root policy ${who}`,
      ],
      ['runAsUser 1000 over a root image', { runAsNonRoot: true, runAsUser: 1000n }, root, ''],
      ['root image', { runAsNonRoot: true }, root, `container has runAsNonRoot and image will run as root ${who}`],
      ['numeric image user', { runAsNonRoot: true }, { uid: 65534n, username: '' }, ''],
      [
        'named image user',
        { runAsNonRoot: true },
        { username: 'nobody' },
        `container has runAsNonRoot and image has non-numeric user (nobody), cannot verify user is non-root ${who}`,
      ],
    ])('%s', (_name, sc, image, message) => {
      expect(runAsNonRootViolation(pod, ctr(undefined, sc), image)).toBe(message);
    });
  });
});
