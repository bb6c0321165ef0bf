import { create, edge, type ObjectKind } from '@edgefarm/proto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { podSpec } from '@edgefarm/testing';
import { fc, fuzzDecoder } from '@edgefarm/testing/fuzz';
import {
  ContainerConfigError,
  expand,
  isContainerConfigError,
  isEnvVarName,
  needsPodIps,
  resolveContainerConfig,
  type ObjectSource,
} from './env.js';

const enc = new TextEncoder();

function objects(list: { kind: ObjectKind; name: string; data: Record<string, string>; namespace?: string }[]): ObjectSource {
  return {
    object(kind, namespace, name) {
      const o = list.find((x) => x.kind === kind && x.name === name && (x.namespace ?? 'default') === namespace);
      if (!o) return undefined;
      return create(edge.EdgeObjectSchema, {
        namespace,
        name,
        resourceVersion: '1',
        data: Object.fromEntries(Object.entries(o.data).map(([k, v]) => [k, enc.encode(v)])),
      });
    },
  };
}

const store = objects([
  { kind: 'configmap', name: 'app', data: { greeting: 'hello', 'log.level': 'debug', '1bad': 'x', MODE: 'cm' } },
  { kind: 'secret', name: 'creds', data: { user: 'admin', pass: 's3cret', MODE: 'secret' } },
  { kind: 'configmap', name: 'app', namespace: 'other', data: { greeting: 'wrong namespace' } },
]);
const ctx = { podIps: ['10.0.0.7', 'fd00::7'], hostIps: ['192.168.1.2'] };

function container(init: MessageInitShape<typeof edge.EdgeContainerSchema>): edge.EdgeContainer {
  return create(edge.EdgeContainerSchema, { name: 'c', image: 'i', ...init });
}
function resolve(init: MessageInitShape<typeof edge.EdgeContainerSchema>, src = store) {
  return resolveContainerConfig(podSpec(), container(init), src, ctx);
}
const asRecord = (env: { name: string; value: string }[]) => Object.fromEntries(env.map((e) => [e.name, e.value]));

describe('$(VAR) expansion (Kubernetes third_party/forked/golang/expansion)', () => {
  const vars: Record<string, string> = { A: 'a', B: 'b', EMPTY: '' };
  const lookup = (n: string) => vars[n];
  it.each([
    ['plain', 'plain'],
    ['$(A)', 'a'],
    ['x$(A)y$(B)z', 'xaybz'],
    ['$(EMPTY)-', '-'],
    ['$(UNDEFINED)', '$(UNDEFINED)'],
    ['$$(A)', '$(A)'],
    ['$$$(A)', '$a'],
    ['$$', '$'],
    ['$$$$', '$$'],
    ['$', '$'],
    ['a$', 'a$'],
    ['$A', '$A'],
    ['$(A', '$(A'],
    ['$(', '$('],
    ['$()', '$()'],
    ['$(A)$(B', 'a$(B'],
    ['((A))', '((A))'],
    ['$((A))', '$((A))'],
    ['${A}', '${A}'],
  ])('%s -> %s', (input, want) => {
    expect(expand(input, lookup)).toBe(want);
  });

  // Every unterminated `$(` once scanned to the end of the input for its `)`: quadratic, a 1 MiB value of `$($($(...`
  // (what one message may carry) cost ~2.7e11 character steps of the agent's event loop per container start. Now one
  // pass: a step count of at most a few per character, and the hang bound.
  it('is linear: huge values of unterminated $( cost a few steps per character', () => {
    const mib = 1024 * 1024;
    fuzzDecoder('expand of 1 MiB of $(', {
      inputs: fc.constantFrom('$('.repeat(mib / 2), `${'$('.repeat(mib / 2 - 2)}$(A)`, `${'$(A'.repeat(mib / 3)})`, '$$'.repeat(mib / 2)),
      decode: (input) => {
        const meter = { steps: 0 };
        const out = expand(input, lookup, meter);
        if (meter.steps > 3 * input.length) throw new Error(`${meter.steps} steps for ${input.length} characters`);
        return out;
      },
      numRuns: 4,
    });
    expect(expand(`${'$('.repeat(1000)})$(A)`, lookup)).toBe(`${'$('.repeat(1000)})a`);
  });
});

describe('environment variable names (IsEnvVarName)', () => {
  it.each([
    ['A', true],
    ['a_b', true],
    ['log.level', true],
    ['my-var', true],
    ['.hidden', true],
    ['1bad', false],
    ['', false],
    ['.', false],
    ['..', false],
    ['..x', false],
    ['a b', false],
    ['a=b', false],
  ])('%s: %s', (name, ok) => expect(isEnvVarName(name)).toBe(ok));
});

describe('resolveContainerConfig', () => {
  it('envFrom: all valid keys, prefix, later sources override, invalid keys skipped and reported', () => {
    const r = resolve({ envFrom: [{ configMap: 'app' }, { secret: 'creds', prefix: 'S_' }, { secret: 'creds' }] });
    expect(asRecord(r.env)).toEqual({
      greeting: 'hello',
      'log.level': 'debug',
      MODE: 'secret',
      S_user: 'admin',
      S_pass: 's3cret',
      S_MODE: 'secret',
      user: 'admin',
      pass: 's3cret',
    });
    expect(r.invalidKeys).toEqual(['1bad']);
  });

  it('env entries override envFrom, in order; literal values expand against what is defined so far', () => {
    const r = resolve({
      envFrom: [{ configMap: 'app' }],
      env: [
        { name: 'EARLY', value: '$(LATE)' },
        { name: 'MODE', value: 'literal' },
        { name: 'G', configMapKeyRef: { name: 'app', key: 'greeting' } },
        { name: 'MSG', value: '$(G), $(user)! mode=$(MODE) $$(G)' },
        { name: 'LATE', value: 'late' },
        { name: 'PW', secretKeyRef: { name: 'creds', key: 'pass' } },
        { name: 'NOEXPAND', secretKeyRef: { name: 'creds', key: 'pass' } },
        { name: 'EMPTY' },
      ],
    });
    expect(asRecord(r.env)).toMatchObject({
      EARLY: '$(LATE)',
      MODE: 'literal',
      G: 'hello',
      MSG: 'hello, $(user)! mode=literal $(G)',
      LATE: 'late',
      PW: 's3cret',
      EMPTY: '',
    });
  });

  it('references are read in the pod namespace', () => {
    const pod = podSpec({ namespace: 'other' });
    const r = resolveContainerConfig(
      pod,
      container({ env: [{ name: 'G', configMapKeyRef: { name: 'app', key: 'greeting' } }] }),
      store,
      ctx,
    );
    expect(asRecord(r.env)).toEqual({ G: 'wrong namespace' });
  });

  it('field paths from the pod and host IPs', () => {
    const r = resolve({
      env: [
        { name: 'IP', fieldPath: 'status.podIP' },
        { name: 'IPS', fieldPath: 'status.podIPs' },
        { name: 'HOST', fieldPath: 'status.hostIP' },
        { name: 'HOSTS', fieldPath: 'status.hostIPs' },
        { name: 'URL', value: 'http://$(IP):8080' },
      ],
    });
    expect(asRecord(r.env)).toEqual({
      IP: '10.0.0.7',
      IPS: '10.0.0.7,fd00::7',
      HOST: '192.168.1.2',
      HOSTS: '192.168.1.2',
      URL: 'http://10.0.0.7:8080',
    });
    expect(needsPodIps(container({ env: [{ name: 'IP', fieldPath: 'status.podIP' }] }))).toBe(true);
    expect(
      needsPodIps(
        container({
          env: [
            { name: 'H', fieldPath: 'status.hostIP' },
            { name: 'V', value: 'x', fieldPath: 'status.podIP' },
          ],
        }),
      ),
    ).toBe(false);
  });

  it('optional references to missing objects or keys leave the variable unset (an earlier value stays)', () => {
    const r = resolve({
      envFrom: [{ configMap: 'nope', optional: true }, { configMap: 'app' }],
      env: [
        { name: 'greeting', configMapKeyRef: { name: 'nope', key: 'k', optional: true } },
        { name: 'X', configMapKeyRef: { name: 'app', key: 'missing', optional: true } },
        { name: 'Y', secretKeyRef: { name: 'nope', key: 'k', optional: true } },
      ],
    });
    expect(asRecord(r.env).greeting).toBe('hello');
    expect(r.env.some((e) => e.name === 'X' || e.name === 'Y')).toBe(false);
  });

  it.each([
    [{ envFrom: [{ configMap: 'nope' }] }, 'configmap "nope" not found'],
    [{ envFrom: [{ secret: 'nope' }] }, 'secret "nope" not found'],
    [{ env: [{ name: 'A', configMapKeyRef: { name: 'nope', key: 'k' } }] }, 'configmap "nope" not found'],
    [{ env: [{ name: 'A', secretKeyRef: { name: 'nope', key: 'k' } }] }, 'secret "nope" not found'],
    [{ env: [{ name: 'A', configMapKeyRef: { name: 'app', key: 'k' } }] }, "couldn't find key k in ConfigMap default/app"],
    [{ env: [{ name: 'A', secretKeyRef: { name: 'creds', key: 'k' } }] }, "couldn't find key k in Secret default/creds"],
    [{ env: [{ name: 'A', fieldPath: 'spec.nodeName' }] }, 'unsupported fieldPath: spec.nodeName'],
  ] as [MessageInitShape<typeof edge.EdgeContainerSchema>, string][])('missing non-optional: %j -> %s', (init, message) => {
    let err: unknown;
    try {
      resolve(init);
    } catch (e) {
      err = e;
    }
    expect(isContainerConfigError(err)).toBe(true);
    expect(err).toBeInstanceOf(ContainerConfigError);
    expect((err as Error).message).toBe(message);
  });

  it('expands command and args against the final environment', () => {
    const r = resolve({
      command: ['sh', '-c', 'echo $(G) $$(G) $(NOPE)'],
      args: ['$(G)', '$(IP)'],
      env: [
        { name: 'G', configMapKeyRef: { name: 'app', key: 'greeting' } },
        { name: 'IP', fieldPath: 'status.podIP' },
      ],
    });
    expect(r.command).toEqual(['sh', '-c', 'echo hello $(G) $(NOPE)']);
    expect(r.args).toEqual(['hello', '10.0.0.7']);
  });
});

describe('resolveContainerConfig: service environment variables (kubelet makeEnvironmentVariables)', () => {
  const serviceEnv = [
    { name: 'KUBERNETES_SERVICE_HOST', value: '10.96.0.1' },
    { name: 'KUBERNETES_SERVICE_PORT', value: '443' },
    { name: 'MODE', value: 'from-service' },
    { name: 'greeting', value: 'from-service' },
    { name: 'WEB_SERVICE_HOST', value: '10.96.0.9' },
  ];
  const withServices = (init: MessageInitShape<typeof edge.EdgeContainerSchema>) =>
    resolveContainerConfig(podSpec({ serviceEnv }), container(init), store, ctx);

  it('a container with no env of its own gets them all', () => {
    expect(asRecord(withServices({}).env)).toEqual(Object.fromEntries(serviceEnv.map((e) => [e.name, e.value])));
  });

  it("envFrom and env override them; $(VAR) in env values, command and args sees them, the container's own first", () => {
    const r = withServices({
      envFrom: [{ configMap: 'app' }],
      env: [
        { name: 'MODE', value: 'literal' },
        { name: 'URL', value: 'https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT) $(greeting) $(MODE)' },
      ],
      command: ['sh', '-c', 'echo $(WEB_SERVICE_HOST) $(MODE)'],
    });
    const env = asRecord(r.env);
    expect(env).toMatchObject({
      MODE: 'literal',
      greeting: 'hello',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      WEB_SERVICE_HOST: '10.96.0.9',
      URL: 'https://10.96.0.1:443 hello literal',
    });
    expect(r.env.filter((e) => e.name === 'MODE')).toHaveLength(1);
    expect(r.command).toEqual(['sh', '-c', 'echo 10.96.0.9 literal']);
  });

  it('an optional reference to a missing object leaves the service value in place', () => {
    const r = withServices({ env: [{ name: 'MODE', configMapKeyRef: { name: 'nope', key: 'k', optional: true } }] });
    expect(asRecord(r.env).MODE).toBe('from-service');
  });
});

describe('resolveContainerConfig: the node conformance shapes (test/e2e/common/node/configmap.go, secrets.go)', () => {
  const data = { 'data-1': 'value-1', 'data-2': 'value-2', 'data-3': 'value-3' };
  const src = objects([
    { kind: 'configmap', name: 'configmap-test-1', data },
    { kind: 'secret', name: 'secret-test-1', data },
  ]);
  const expected = { ...data, 'p-data-1': 'value-1', 'p-data-2': 'value-2', 'p-data-3': 'value-3' };
  it.each([
    ['configMap', { configMap: 'configmap-test-1' }],
    ['secret', { secret: 'secret-test-1' }],
  ])('envFrom the same %s twice, without and with the prefix "p-"', (_kind, from) => {
    const r = resolve({ command: ['sh', '-c', 'env'], envFrom: [from, { ...from, prefix: 'p-' }] }, src);
    expect(asRecord(r.env)).toEqual(expected);
    expect(r.invalidKeys).toEqual([]);
  });
});
