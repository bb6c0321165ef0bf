/**
 * A mapper's configuration: {@link MAPPER_SETTINGS} declares every setting (docs/reference/settings.md is generated
 * from it); {@link parseConfig} turns an environment record into a {@link MapperConfig}. Only main.ts passes
 * process.env.
 */
import { ValueError, custom, defineSettings, logLevel, text, type Env } from '@edgefarm/settings';
import { isUserPublicKey } from '@edgefarm/proto';
import { MODBUS_PROTOCOL } from './modbus.js';

export { ConfigError, isConfigError } from '@edgefarm/settings';

/** The protocols this build has a driver for. */
export const PROTOCOLS = [MODBUS_PROTOCOL] as const;

export interface MapperConfig {
  natsUrl: string;
  natsCredsFile?: string;
  nodeKey: string;
  protocol: (typeof PROTOCOLS)[number];
  logLevel: string;
}

export const MAPPER_SETTINGS = defineSettings(
  {
    title: 'mapper',
    source: 'mapper/src/config.ts',
    intro:
      "A mapper (`node mapper/dist/main.js`) at a site: serves the node's devices of one protocol from the site's device board and reports their twins to the agent (docs/devices.md).",
  },
  {
    natsUrl: {
      env: 'EF_NATS_URL',
      type: custom('nats:// URL', (raw) => {
        if (!/^nats:\/\/[^\s/"]+:\d{1,5}$/.test(raw)) throw new ValueError('is not nats://host:port');
        return raw;
      }),
      default: 'nats://127.0.0.1:4222',
      doc: "the site's nats-server",
    },
    natsCredsFile: {
      env: 'EF_NATS_CREDS',
      type: text('file'),
      unset: 'no credentials (a site server without authentication: tests)',
      doc: "the mapper's NATS credentials at the site",
    },
    nodeKey: {
      env: 'EF_NODE_KEY',
      type: custom('user public key (U...)', (raw) => {
        if (!isUserPublicKey(raw)) throw new ValueError('is not a NATS user public key');
        return raw;
      }),
      required: true,
      doc: "the node's public key (its wire id: the device board's and the report subjects' name)",
    },
    protocol: {
      env: 'EF_MAPPER_PROTOCOL',
      type: custom(PROTOCOLS.join(' or '), (raw) => {
        if (!(PROTOCOLS as readonly string[]).includes(raw))
          throw new ValueError(`is not a protocol of this mapper (${PROTOCOLS.join(', ')})`);
        return raw as MapperConfig['protocol'];
      }),
      default: MODBUS_PROTOCOL,
      doc: 'the protocol it serves (the devices whose protocolName it is)',
    },
    logLevel: { env: 'EF_LOG_LEVEL', type: logLevel(), default: 'info', doc: 'log level' },
  },
);

export function parseConfig(env: Env): MapperConfig {
  return MAPPER_SETTINGS.parse(env);
}
