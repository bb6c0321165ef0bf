import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ConfigError, MAPPER_SETTINGS, parseConfig } from './config.js';

const KEY = 'UAUGHQ5LGPGLOXD4D6ISNOP6CZDFXHUQA6IKOJ5FHIHWCQRBX4X4K2GX';

describe('mapper configuration', () => {
  it('applies defaults', () => {
    expect(parseConfig({ EF_NODE_KEY: KEY })).toEqual({
      natsUrl: 'nats://127.0.0.1:4222',
      natsCredsFile: undefined,
      nodeKey: KEY,
      protocol: 'modbus',
      logLevel: 'info',
    });
  });

  it.each([
    [{}, /EF_NODE_KEY/],
    [{ EF_NODE_KEY: 'edge-1' }, /EF_NODE_KEY.*not a NATS user public key/],
    [{ EF_NODE_KEY: KEY, EF_MAPPER_PROTOCOL: 'opcua' }, /EF_MAPPER_PROTOCOL.*not a protocol of this mapper \(modbus\)/],
    [{ EF_NODE_KEY: KEY, EF_NATS_URL: 'http://x:1' }, /EF_NATS_URL.*nats:\/\/host:port/],
  ])('refuses %j with a ConfigError that names the setting', (env, message) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(message);
  });

  it('declares every setting with a meaning', () => {
    for (const r of MAPPER_SETTINGS.rows()) expect(r.doc).not.toBe('');
  });

  it('the binary exits 2 on bad configuration, saying what is wrong', () => {
    const main = path.resolve(import.meta.dirname, '../dist/main.js');
    const r = spawnSync(process.execPath, [main], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^edgefarm-mapper: .*EF_NODE_KEY/);
  });
});
