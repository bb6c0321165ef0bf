import { create } from '@bufbuild/protobuf';
import { edge } from '@edgefarm/proto';
import { pino } from 'pino';
import { FakeKubeClient } from '../kube/fake.js';
import { ProviderAsNodes } from '../kube/node-clients.js';
import { FakeBus } from '../bus/fake.js';
import { translatePod } from './translate.js';
import { podControllerBed, withToken } from './testing.js';
import { TokenManager } from './tokens.js';
import { PodWarnings } from './warnings.js';

const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function setup(nowMs = 1_000_000) {
  const clock = { ms: nowMs };
  const bed = podControllerBed({ now: () => new Date(clock.ms) });
  bed.kube.now = () => clock.ms;
  return { ...bed, clock };
}

describe('ServiceAccount tokens', () => {
  it('requests ServiceAccount tokens bound to the pod and renews them after 80% of their lifetime', async () => {
    const { kube, bus, ctl, clock, membership } = setup();
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(withToken());
    await ctl.drained();
    expect(kube.tokens).toHaveLength(1);
    expect(kube.tokens[0]).toMatchObject({
      namespace: 'default',
      serviceAccount: 'robot',
      request: { audience: '', expirationSeconds: 3600, pod: { name: 'web-1', uid: 'uid-1' } },
    });
    expect(bus.log).toEqual([`token edge-1 default/web-1@${clock.ms}`, 'pod edge-1 default/web-1']);
    expect(text(bus.objects[0]!.object.data['3600/'])).toBe('token-1');
    expect(bus.objects[0]!.object.podUid).toBe('uid-1');

    clock.ms += 2000 * 1000; // 56% of the lifetime: not yet
    ctl.renewDueTokens();
    await ctl.drained();
    expect(kube.tokens).toHaveLength(1);
    clock.ms += 900 * 1000; // 81%
    ctl.renewDueTokens();
    await ctl.drained();
    expect(kube.tokens).toHaveLength(2);
    expect(bus.log.at(-1)).toBe(`token edge-1 default/web-1@${clock.ms}`);
    expect(bus.published).toHaveLength(1);

    kube.emitDelete('default', 'web-1');
    await ctl.drained();
    expect(bus.log.slice(-2)).toEqual(['-pod edge-1 default/web-1', '-token edge-1 default/web-1']);
    await ctl.stop();
  });

  it('a failed TokenRequest is a Warning Event; the pod is still published', async () => {
    const { kube, bus, ctl, membership } = setup();
    kube.failNext('createToken', new Error('serviceaccounts "robot" not found'));
    await ctl.start();
    await membership.take(['edge-1']);
    kube.emitPod(withToken());
    await ctl.drained();
    expect(bus.log).toEqual(['pod edge-1 default/web-1']);
    expect(kube.events.map((e) => [e.reason, e.message])).toEqual([['FailedTokenRequest', expect.stringMatching(/robot" not found/)]]);
    await ctl.stop();
  });
});

describe('TokenManager', () => {
  const log = pino({ level: 'silent' });
  const REF = 'token/default/web-1';
  function manager() {
    const clock = { ms: 1_000_000 };
    const kube = new FakeKubeClient();
    kube.now = () => clock.ms;
    const bus = new FakeBus();
    const now = () => new Date(clock.ms);
    const tokens = new TokenManager({ nodes: new ProviderAsNodes(kube), bus, warnings: new PodWarnings(kube, now), now });
    tokens.addNode('edge-1');
    const t = translatePod(withToken());
    if (!t.ok) throw new Error('fixture');
    return { kube, bus, tokens, clock, spec: t.spec };
  }

  it('is due at 80% of the lifetime of what the hub holds, and renews then', async () => {
    const { kube, tokens, clock, spec } = manager();
    tokens.seed(
      'edge-1',
      REF,
      create(edge.EdgeObjectSchema, {
        namespace: 'default',
        name: 'web-1',
        resourceVersion: String(clock.ms),
        expiresAtMs: BigInt(clock.ms + 1000_000),
        podUid: 'uid-1',
        data: { '3600/': new Uint8Array([1]) },
      }),
    );
    expect(await tokens.deliver('edge-1', withToken(), spec, REF, log)).toBe(true);
    expect(kube.tokens).toHaveLength(0); // still valid
    clock.ms += 799_999;
    expect(tokens.due(clock.ms)).toEqual([]);
    clock.ms += 1;
    expect(tokens.due(clock.ms)).toEqual(['default/web-1']);
    await tokens.deliver('edge-1', withToken(), spec, REF, log);
    expect(kube.tokens).toHaveLength(1);
    expect(tokens.due(clock.ms)).toEqual([]);
  });

  it('requests again for a new pod of the same name or other audiences/lifetimes', async () => {
    const { kube, tokens, spec } = manager();
    await tokens.deliver('edge-1', withToken(), spec, REF, log);
    await tokens.deliver('edge-1', withToken(), { ...spec, uid: 'uid-2' }, REF, log);
    expect(kube.tokens).toHaveLength(2);
    const other = structuredClone(spec);
    const v = other.volumes[0]!.source;
    if (v.case === 'projected' && v.value.sources[0]!.source.case === 'serviceAccountToken') v.value.sources[0]!.source.value.key = '600/';
    await tokens.deliver('edge-1', withToken(), { ...other, uid: 'uid-2' }, REF, log);
    expect(kube.tokens).toHaveLength(3);
  });

  it('releases only what the node has, and forgets a node given up', async () => {
    const { bus, tokens, spec } = manager();
    expect(await tokens.release('edge-1', REF)).toBe(false);
    await tokens.deliver('edge-1', withToken(), spec, REF, log);
    expect(tokens.keysOn('edge-1')).toEqual([REF]);
    expect(await tokens.release('edge-1', REF)).toBe(true);
    expect(bus.log.at(-1)).toBe('-token edge-1 default/web-1');
    await tokens.deliver('edge-1', withToken(), spec, REF, log);
    tokens.forgetNode('edge-1');
    expect(tokens.due(Number.MAX_SAFE_INTEGER)).toEqual([]);
  });
});
