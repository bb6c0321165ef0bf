import { isConfigError } from '../config.js';
import { HOLLOW_SETTINGS, hollowConfigFromEnv } from './config.js';

const env = {
  EF_SITE: 'h01',
  EF_NATS_URL: 'nats://127.0.0.1:4222',
  EF_NODE_IP: '10.203.2.2',
  EF_HOLLOW_COUNT: '3',
  EF_HOLLOW_FIRST: '251',
  EF_HOLLOW_DIR: '/tmp/hollow',
};

describe('hollowConfigFromEnv', () => {
  it('makes one agent configuration per node, named and placed per node', () => {
    const c = hollowConfigFromEnv(env);
    expect(c.startConcurrency).toBe(25);
    expect(c.agents.map((a) => a.nodeName)).toEqual(['hollow-0251', 'hollow-0252', 'hollow-0253']);
    expect(c.agents.map((a) => a.wireId)).toEqual(['hollow-0251', 'hollow-0252', 'hollow-0253']);
    expect(c.agents[0]).toMatchObject({
      site: 'h01',
      criEndpoint: 'unix:///hollow/cri.sock',
      metricsAddr: undefined,
      volumeRoot: '/tmp/hollow/hollow-0251/pods',
      logLevel: 'warn',
      agentVersion: 'hollow',
    });
  });

  it('names each node by its own name on the wire, whatever wire id the environment carries', () => {
    const c = hollowConfigFromEnv({ ...env, EF_NODE_WIRE_ID: 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX' });
    expect(c.agents.map((a) => a.wireId)).toEqual(c.agents.map((a) => a.nodeName));
  });

  it("passes the agent's own settings to every node", () => {
    const c = hollowConfigFromEnv({
      ...env,
      EF_RESYNC_MS: '30000',
      EF_RELIST_MS: '2000',
      EF_METRICS_PUBLISH_SECONDS: '0',
      EF_LOG_LEVEL: 'error',
    });
    for (const a of c.agents) expect(a).toMatchObject({ resyncMs: 30_000, relistMs: 2000, metricsPublishSeconds: 0, logLevel: 'error' });
  });

  it.each([
    [{ EF_HOLLOW_COUNT: undefined }, 'EF_HOLLOW_COUNT is required'],
    [{ EF_HOLLOW_COUNT: '0' }, 'EF_HOLLOW_COUNT="0"'],
    [{ EF_HOLLOW_DIR: 'rel' }, 'EF_HOLLOW_DIR="rel"'],
    [{ EF_HOLLOW_START_CONCURRENCY: 'x' }, 'EF_HOLLOW_START_CONCURRENCY="x"'],
    [{ EF_RESYNC_MS: '0' }, 'EF_RESYNC_MS="0"'],
  ])('refuses %j', (over, message) => {
    let err: unknown;
    try {
      hollowConfigFromEnv({ ...env, ...over });
    } catch (e) {
      err = e;
    }
    expect(isConfigError(err)).toBe(true);
    expect((err as Error).message).toContain(message);
  });

  it('declares its own settings only', () => {
    expect(HOLLOW_SETTINGS.rows().map((r) => r.name)).toEqual([
      'EF_HOLLOW_COUNT',
      'EF_HOLLOW_FIRST',
      'EF_HOLLOW_DIR',
      'EF_HOLLOW_START_CONCURRENCY',
    ]);
  });
});
