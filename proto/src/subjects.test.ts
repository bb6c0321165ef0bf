import {
  decodeToken,
  desiredSubjects,
  encodeToken,
  forwardSubject,
  HUB_STREAM_CONFIGS,
  eventSubjects,
  forwardEvent,
  parseEventSubject,
  isSubjectError,
  outboxSubjects,
  parseDesiredSubject,
  sourcedSequence,
  sourceDeliverPrefix,
  sourceListSubject,
  parseStatusSubject,
  mapperSubjects,
  parseMapperReportSubject,
  statusSubjects,
  Streams,
} from './subjects.js';

describe('token encoding', () => {
  it.each([['edge-1'], ['a.b.c'], ['kube-system'], ['node_1'], ['weird~name'], ['ünïcødé'], ['*'], ['>'], ['a b']])(
    'round-trips %s as one subject token',
    (value) => {
      const token = encodeToken(value);
      expect(token).toMatch(/^[A-Za-z0-9_~-]+$/);
      expect(decodeToken(token)).toBe(value);
    },
  );
  it('keeps plain names readable', () => {
    expect(encodeToken('edge-1')).toBe('edge-1');
    expect(encodeToken('my.pod')).toBe('my~2Epod');
  });
  it.each([[''], ['~'], ['~zz'], ['a.b'], ['~2e'], ['a*']])('rejects malformed token %p', (token) => {
    expect(() => decodeToken(token)).toThrow();
    try {
      decodeToken(token);
    } catch (err) {
      expect(isSubjectError(err)).toBe(true);
    }
  });
  it('rejects an empty value', () => expect(() => encodeToken('')).toThrow(/empty/));

  // "\ud800" encoded as U+FFFD's bytes, the token of "\ufffd": two strings, one subject (found by subjects.fuzz).
  it('rejects a lone surrogate instead of encoding it as another string', () => {
    expect(() => encodeToken('a\ud800')).toThrow(/not well-formed Unicode/);
    expect(encodeToken('\ufffd')).toBe('~EF~BF~BD');
    expect(encodeToken('\ud83d\ude00')).toBe('~F0~9F~98~80');
  });
});

describe('subjects', () => {
  it('builds and parses desired subjects with dotted names', () => {
    const s = desiredSubjects.pod('edge.1', { namespace: 'default', name: 'web.v2' });
    expect(s).toBe('ef.desired.edge~2E1.pod.default.web~2Ev2');
    expect(parseDesiredSubject(s)).toEqual({ node: 'edge.1', kind: 'pod', key: { namespace: 'default', name: 'web.v2' } });
    const cm = desiredSubjects.of('edge.1', 'configmap', { namespace: 'default', name: 'app.conf' });
    expect(cm).toBe('ef.desired.edge~2E1.configmap.default.app~2Econf');
    expect(parseDesiredSubject(cm)).toEqual({ node: 'edge.1', kind: 'configmap', key: { namespace: 'default', name: 'app.conf' } });
    expect(() => parseDesiredSubject('ef.desired.edge-1.service.default.x')).toThrow(/not a desired-state subject/);
    expect(s.startsWith(desiredSubjects.node('edge.1').slice(0, -1))).toBe(true);
  });
  it("names the node's NodeConfig inside the node's filter and parses it back", () => {
    const key = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';
    const s = desiredSubjects.nodeConfig(key);
    expect(s).toBe(`ef.desired.${key}.node.config`);
    expect(s.startsWith(desiredSubjects.node(key).slice(0, -1))).toBe(true);
    expect(parseDesiredSubject(s)).toEqual({ node: key, kind: 'node' });
    for (const bad of [`ef.desired.${key}.node.other`, `ef.desired.${key}.node.default.x`, `ef.desired.${key}.node`]) {
      expect(() => parseDesiredSubject(bad)).toThrow(/not a desired-state subject/);
    }
  });
  it('maps an outbox subject to its hub subject', () => {
    const out = outboxSubjects.of('edge-1', { kind: 'pod', uid: 'abc-123' });
    expect(forwardSubject(out)).toBe(statusSubjects.of('edge-1', { kind: 'pod', uid: 'abc-123' }));
    expect(parseStatusSubject(forwardSubject(outboxSubjects.of('n', { kind: 'node' })))).toEqual({
      place: 'status',
      node: 'n',
      key: { kind: 'node' },
    });
  });
  it("names a device's desired subject and its twin's outbox and hub subjects under the node", () => {
    const d = desiredSubjects.device('edge.1', { namespace: 'plant', name: 'pump.1' });
    expect(d).toBe('ef.desired.edge~2E1.device.plant.pump~2E1');
    expect(parseDesiredSubject(d)).toEqual({ node: 'edge.1', kind: 'device', key: { namespace: 'plant', name: 'pump.1' } });
    expect(d.startsWith(desiredSubjects.node('edge.1').slice(0, -1))).toBe(true);
    const out = outboxSubjects.of('edge.1', { kind: 'device', uid: 'u-1' });
    expect(out).toBe('ef.outbox.edge~2E1.device.u-1');
    expect(forwardSubject(out)).toBe('ef.status.edge~2E1.device.u-1');
    expect(parseStatusSubject('ef.status.n.device.u-1')).toEqual({ place: 'status', node: 'n', key: { kind: 'device', uid: 'u-1' } });
    for (const bad of ['ef.status.n.device', 'ef.status.n.device.a.b', 'ef.desired.n.device.ns']) {
      expect(() => (bad.includes('desired') ? parseDesiredSubject(bad) : parseStatusSubject(bad))).toThrow();
    }
  });
  it("names a mapper's report by node, protocol and device, and parses it back", () => {
    const s = mapperSubjects.report('edge.1', 'modbus', { namespace: 'plant', name: 'pump.1' });
    expect(s).toBe('ef.mapper.edge~2E1.report.modbus.plant.pump~2E1');
    expect(parseMapperReportSubject(s)).toEqual({ node: 'edge.1', protocol: 'modbus', key: { namespace: 'plant', name: 'pump.1' } });
    expect(s.startsWith(mapperSubjects.protocolReports('edge.1', 'modbus').slice(0, -1))).toBe(true);
    expect(s.startsWith(mapperSubjects.reports('edge.1').slice(0, -1))).toBe(true);
    for (const bad of ['ef.mapper.n.report.modbus.plant', 'ef.mapper.n.other.modbus.plant.x', 'ef.mapper.n.report.modbus.plant.x.y']) {
      expect(() => parseMapperReportSubject(bad)).toThrow(/not a mapper report subject/);
    }
  });
  it('names the agent metrics subject per node, forwarded like the others', () => {
    expect(outboxSubjects.of('a.b', { kind: 'metrics' })).toBe('ef.outbox.a~2Eb.metrics');
    expect(forwardSubject('ef.outbox.a~2Eb.metrics')).toBe('ef.status.a~2Eb.metrics');
    expect(parseStatusSubject('ef.status.n.metrics')).toEqual({ place: 'status', node: 'n', key: { kind: 'metrics' } });
  });
  it.each([
    ['ef.desired.n.pod.ns'],
    ['ef.desired.n.cm.ns.x'],
    ['foo'],
    ['ef.status.n.pod'],
    ['ef.status.n.nodes'],
    ['ef.outbox.n.pod.a.b'],
  ])('rejects malformed subject %s', (subject) => {
    expect(() => (subject.includes('desired') ? parseDesiredSubject(subject) : parseStatusSubject(subject))).toThrow();
  });
  it('refuses to forward a hub subject', () => {
    expect(() => forwardSubject(statusSubjects.of('n', { kind: 'node' }))).toThrow(/not an outbox subject/);
  });
  it('hub streams capture exactly the desired and status subjects', () => {
    const [desired, status, events] = HUB_STREAM_CONFIGS;
    expect(desired.subjects).toEqual([desiredSubjects.all]);
    expect(status.subjects).toEqual([statusSubjects.all]);
    expect(events.subjects).toEqual([eventSubjects.all]);
  });
  it('builds, parses and forwards event subjects', () => {
    const site = eventSubjects.site('edge.1', 'x-1');
    expect(site).toBe('ef.eventbox.edge~2E1.x-1');
    expect(parseEventSubject(site)).toEqual({ place: 'eventbox', node: 'edge.1', id: 'x-1' });
    expect(forwardEvent(site)).toEqual({ subject: 'ef.events.edge~2E1.x-1', msgId: site });
    expect(() => forwardEvent(eventSubjects.of('n', 'x'))).toThrow(/not a site event subject/);
    expect(() => parseEventSubject('ef.events.n')).toThrow(/not an event subject/);
    expect(Streams.siteEvents('edge-1')).toBe('EFE_edge-1');
  });
  it('names per-node streams with encoded names', () => {
    expect(Streams.siteDesired('a.b')).toBe('EFD_a~2Eb');
    expect(Streams.outbox('edge-1')).toBe('EFO_edge-1');
  });
});

describe('sourcedSequence', () => {
  it.each([
    ['EF_DESIRED:8gVQlBaZ 42 ef.desired.edge-1.> >', 42],
    ['EF_DESIRED 7', 7],
    [undefined, undefined],
    ['', undefined],
    ['EF_DESIRED', undefined],
    ['EF_DESIRED x', undefined],
    ['EF_DESIRED 0', undefined],
    ['EF_DESIRED 99999999999999999999', undefined],
  ])('%j -> %j', (header, want) => expect(sourcedSequence(header)).toBe(want));
});

describe('listings', () => {
  it("names a listing's deliver subject below the node's deliver prefix", () => {
    expect(sourceListSubject('edge.1', 'abc')).toBe('ef.src.edge~2E1.list.abc');
    expect(sourceListSubject('edge.1', 'abc').startsWith(`${sourceDeliverPrefix('edge.1')}.`)).toBe(true);
  });
});

describe('interactive traffic subjects', () => {
  it('names requests and sessions under the node, and parses requests back', async () => {
    const { rpcSubjects, sessionSubjects, parseRpcSubject } = await import('./subjects.js');
    expect(rpcSubjects.of('edge.1', 'exec')).toBe('ef.rpc.edge~2E1.exec');
    expect(rpcSubjects.node('edge.1')).toBe('ef.rpc.edge~2E1.*');
    expect(parseRpcSubject('ef.rpc.edge~2E1.portforward')).toEqual({ node: 'edge.1', op: 'portforward' });
    expect(() => parseRpcSubject('ef.rpc.edge-1.shell')).toThrow(/not an rpc subject/);
    expect(sessionSubjects.of('edge-1', 'abc', 'up')).toBe('ef.session.edge-1.abc.up');
    expect(sessionSubjects.node('edge-1')).toBe('ef.session.edge-1.>');
  });
});
