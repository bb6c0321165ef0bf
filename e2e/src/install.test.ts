/**
 * The install as a user makes it (`make e2e-install`, instance inst, EF_DEPLOY=cluster; skipped on the other suites'
 * process-based stacks): the provider, the registrar and the NATS hub run as pods of the shipped manifests on a real
 * kubelet node, from the images built here pinned by digest; edge-1 joined by token is Ready; the kubelet API of the
 * edge nodes is served by the provider pod with a certificate the cluster issued; the site runs from the site
 * package's installed files, and `make package` writes a .deb whose programs run; the manifests pass server-side
 * apply on this cluster; a deleted provider pod is replaced without touching the site's pods.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { jest } from '@jest/globals';
import { ROOT, deleteAndWait, eventually, kubeconfig, kubectl, kubectlJson, layout } from './stack.js';

const run = promisify(execFile);
jest.setTimeout(10 * 60_000);

interface Pod {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  spec: { nodeName?: string; hostNetwork?: boolean; containers: { image: string }[] };
  status: { phase?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { restartCount: number }[] };
}
interface List<T> {
  items: T[];
}
interface Csr {
  metadata: { name: string };
  spec: { signerName: string; username: string };
  status: { conditions?: { type: string; status: string; reason?: string }[]; certificate?: string };
}

const NS = 'edgefarm-system';
const deployed = (await layout('echo "$EF_DEPLOY"')) === 'cluster';
const describeInstalled = deployed ? describe : describe.skip;
const ready = (p: Pod) => p.status.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
const component = (pods: Pod[], name: string) => pods.filter((p) => p.metadata.labels?.['app.kubernetes.io/name'] === name);

describeInstalled('EdgeFarm installed into the cluster from the shipped manifests', () => {
  afterAll(async () => {
    await deleteAndWait('app=install-check', ['pod/install-check']);
  });

  it('runs the hub, the provider and the registrar as Ready pods on the kubelet node, from the images built here', async () => {
    const images = JSON.parse(await readFile(path.join(ROOT, 'build/images/images.json'), 'utf8')) as { name: string; index: string }[];
    const pinned = images.map((i) => `${i.name.replace(/:[^:/]+$/, '')}@${i.index}`);
    const pods = await eventually('the EdgeFarm pods Ready', 120_000, async () => {
      const list = (await kubectlJson<List<Pod>>('-n', NS, 'get', 'pods')).items;
      const want = ['edgefarm-hub', 'edgefarm-provider', 'edgefarm-registrar'];
      return want.every((n) => component(list, n).some(ready)) ? list : undefined;
    });
    for (const p of pods) {
      expect(p.spec.nodeName).toBe('cloud-1');
      expect(pinned).toContain(p.spec.containers[0]!.image);
    }
    const nodes = await kubectlJson<List<{ metadata: { name: string; labels: Record<string, string> } }>>('get', 'nodes');
    const cloud = nodes.items.find((n) => n.metadata.name === 'cloud-1');
    expect(cloud?.metadata.labels['node-role.kubernetes.io/control-plane']).toBe('');
  });

  it('has edge-1 joined by a token and Ready', async () => {
    const edge = await kubectlJson<{ status: { identity?: { publicKey?: string } } }>('get', 'edgenode', 'edge-1');
    expect(edge.status.identity?.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    await eventually('node edge-1 Ready', 60_000, async () =>
      (await kubectl('get', 'node', 'edge-1', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')) === 'True'
        ? true
        : undefined,
    );
  });

  it("serves the edge nodes' kubelet API from the provider pod with a certificate the cluster issued", async () => {
    const csrs = (await kubectlJson<List<Csr>>('get', 'csr')).items.filter((c) => c.spec.signerName === 'kubernetes.io/kubelet-serving');
    const own = csrs.filter((c) => c.spec.username === `system:serviceaccount:${NS}:edgefarm-provider`);
    expect(own.length).toBeGreaterThan(0);
    expect(
      own.some(
        (c) => c.status.certificate && c.status.conditions?.some((x) => x.type === 'Approved' && x.reason === 'EdgeFarmProviderServing'),
      ),
    ).toBe(true);
    await kubectl(
      'run',
      'install-check',
      '--image=docker.io/edgefarm/busybox:1.35',
      '--image-pull-policy=IfNotPresent',
      '--labels=app=install-check',
      '--overrides={"spec":{"nodeSelector":{"kubernetes.io/hostname":"edge-1"},"tolerations":[{"key":"edgefarm.io/edge","operator":"Exists"}]}}',
      '--',
      'sh',
      '-c',
      'echo install-check-started; sleep 3600',
    );
    await eventually('pod install-check Running', 60_000, async () =>
      (await kubectl('get', 'pod', 'install-check', '-o', 'jsonpath={.status.phase}')) === 'Running' ? true : undefined,
    );
    const logs = await eventually('its log', 30_000, async () => {
      const l = await kubectl('logs', 'install-check');
      return l.includes('install-check-started') ? l : undefined;
    });
    expect(logs).toContain('install-check-started');
    expect((await kubectl('exec', 'install-check', '--', 'sh', '-c', 'echo $((6*7))')).trim()).toBe('42');
  });

  it("runs the site from the site package's installed files, as a gateway does", async () => {
    const [pids, tree] = [await layout('echo "$EF_PIDS"'), await layout('echo "$EF_STATE/site-root"')];
    const cmdline = async (name: string) =>
      (await readFile(`/proc/${(await readFile(path.join(pids, `${name}.pid`), 'utf8')).trim()}/cmdline`, 'utf8')).split('\0');
    const agent = await cmdline('agent-edge-1');
    expect(path.resolve(agent[0]!)).toBe(path.join(tree, 'usr/lib/edgefarm/bin/node'));
    expect(path.resolve(agent.at(-2)!)).toBe(path.join(tree, 'usr/lib/edgefarm/edge-agent/dist/main.js'));
    expect((await cmdline('nats-edge-1'))[0]).toBe(path.join(tree, 'usr/lib/edgefarm/bin/nats-server'));
    const join = JSON.parse(await readFile(path.join(await layout('ef_site_state edge-1'), 'join.json'), 'utf8')) as { node: string };
    expect(join.node).toBe('edge-1');
  });

  it('packages the site: make package writes a .deb whose programs run (amd64)', async () => {
    await run('bash', [path.join(ROOT, 'hack/package.sh'), '--arch', 'amd64'], {
      maxBuffer: 16 << 20,
      env: { ...process.env, EF_SKIP_BUNDLE: '1' },
    });
    const version = JSON.parse(await readFile(path.join(ROOT, 'edge-agent/package.json'), 'utf8')) as { version: string };
    const deb = path.join(ROOT, `build/package/edgefarm-site_${version.version}_amd64.deb`);
    const info = (await run('dpkg-deb', ['--field', deb, 'Package', 'Architecture', 'Depends'])).stdout;
    expect(info).toContain('Package: edgefarm-site');
    expect(info).toContain('Architecture: amd64');
    expect(info).toMatch(/Depends: .*containerd/);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ef-deb-'));
    try {
      await run('dpkg-deb', ['-x', deb, dir]);
      expect((await run(path.join(dir, 'usr/bin/edgefarm'), ['--help'])).stdout).toContain('join');
      expect((await run(path.join(dir, 'usr/lib/edgefarm/bin/nats-server'), ['--version'])).stdout).toContain('v2.');
      const agent = await run(path.join(dir, 'usr/lib/edgefarm/bin/edgefarm-agent'), [], { env: { PATH: '/usr/bin:/bin' } }).then(
        () => 0,
        (err: { code?: number }) => err.code,
      );
      expect(agent).toBe(2); // a configuration error: nothing set
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ships manifests that the cluster accepts by server-side apply (crds, base, base + monitoring, overlays local and pod-network)', async () => {
    const { stdout } = await run('bash', [path.join(ROOT, 'hack/lint-manifests.sh'), 'server', await kubeconfig()], {
      maxBuffer: 16 << 20,
    });
    expect(stdout).toContain('base + components/monitoring: server-side apply (dry run, as a new install) accepted');
    expect(stdout.match(/accepted/g)).toHaveLength(5);
  });

  it('replaces a deleted provider pod; edge-1 stays Ready and its pods are not touched', async () => {
    const before = (await kubectlJson<Pod>('get', 'pod', 'install-check')).metadata.uid;
    const old = component((await kubectlJson<List<Pod>>('-n', NS, 'get', 'pods')).items, 'edgefarm-provider').map((p) => p.metadata.name);
    await kubectl('-n', NS, 'delete', 'pod', ...old, '--wait=true');
    await eventually('a new provider pod Ready', 120_000, async () => {
      const fresh = component((await kubectlJson<List<Pod>>('-n', NS, 'get', 'pods')).items, 'edgefarm-provider');
      return fresh.some((p) => !old.includes(p.metadata.name) && ready(p)) ? true : undefined;
    });
    // the new replica serves the kubelet API again (its own certificate, from a new CSR)
    const logs = await eventually('logs through the new provider pod', 60_000, async () => {
      const l = await kubectl('logs', 'install-check').catch(() => '');
      return l.includes('install-check-started') ? l : undefined;
    });
    expect(logs).toContain('install-check-started');
    expect((await kubectlJson<Pod>('get', 'pod', 'install-check')).metadata.uid).toBe(before);
    expect(await kubectl('get', 'pod', 'install-check', '-o', 'jsonpath={.status.containerStatuses[0].restartCount}')).toBe('0');
    expect(await kubectl('get', 'node', 'edge-1', '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')).toBe('True');
  });
});
