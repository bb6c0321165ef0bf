/**
 * The hollow site's configuration: {@link HOLLOW_SETTINGS} declares its own settings; every node's agent settings
 * come from the same environment through the agent's declaration (configFromEnv), with the node name (also its wire
 * id: hollow nodes never join), CRI endpoint, metrics server and volume directory set per node here. main.ts passes process.env; nothing else reads it.
 */
import path from 'node:path';
import { absolutePath, defineSettings, int, type Env } from '@edgefarm/settings';
import { configFromEnv, type AgentConfig } from '../config.js';

/** The hollow nodes are named this + a 4-digit index (bench/fleet.ts hollowNodeName names them the same). */
export const HOLLOW_NODE_PREFIX = 'hollow-';

export const HOLLOW_SETTINGS = defineSettings(
  {
    title: 'hollow site',
    source: 'edge-agent/src/hollow/config.ts',
    intro:
      'N hollow edge nodes in one process (`node edge-agent/dist/hollow/main.js`, started by hack/site.sh for `EF_SITE_HOLLOW`): real agents over an in-memory runtime, for `make bench`. Every edge-agent setting applies to all of its nodes, except EF_NODE_NAME, EF_NODE_WIRE_ID (the node name: hollow nodes never join), EF_CRI_ENDPOINT, EF_METRICS_ADDR (off) and EF_VOLUME_DIR, which it sets per node; EF_LOG_LEVEL defaults to warn here.',
  },
  {
    count: { env: 'EF_HOLLOW_COUNT', type: int(1), required: true, doc: 'number of hollow nodes' },
    first: {
      env: 'EF_HOLLOW_FIRST',
      type: int(0),
      default: '1',
      doc: `index of the first node; the nodes are ${HOLLOW_NODE_PREFIX}<index, 4 digits>`,
    },
    dir: { env: 'EF_HOLLOW_DIR', type: absolutePath(), required: true, doc: "directory of the nodes' volume directories" },
    startConcurrency: { env: 'EF_HOLLOW_START_CONCURRENCY', type: int(1), default: '25', doc: 'agents started in parallel' },
  },
);

export interface HollowConfig {
  /** One agent configuration per hollow node, in index order. */
  agents: AgentConfig[];
  startConcurrency: number;
}

/** The hollow site's configuration from an environment record; throws ConfigError naming every problem. */
export function hollowConfigFromEnv(env: Env): HollowConfig {
  const h = HOLLOW_SETTINGS.parse(env);
  const agents = Array.from({ length: h.count }, (_, i) => {
    const node = `${HOLLOW_NODE_PREFIX}${String(h.first + i).padStart(4, '0')}`;
    return configFromEnv(
      {
        ...env,
        EF_NODE_NAME: node,
        EF_NODE_WIRE_ID: node,
        EF_CRI_ENDPOINT: 'unix:///hollow/cri.sock',
        EF_METRICS_ADDR: 'off',
        EF_VOLUME_DIR: path.join(h.dir, node, 'pods'),
        EF_LOG_LEVEL: env.EF_LOG_LEVEL?.trim() || 'warn',
      },
      'hollow',
    );
  });
  return { agents, startConcurrency: h.startConcurrency };
}
