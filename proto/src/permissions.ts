/**
 * Who may touch which subject: the NATS permission sets and the hub's account layout, built from the same subject
 * builders as the subjects themselves (subjects.ts), so the two cannot drift. Decision 0008 says why it looks so.
 *
 * The hub has three accounts besides the system account:
 *
 * - `EF_DESIRED`: only the EF_DESIRED stream and the provider's desired-state connection. Exports the filtered
 *   consumer create on EF_DESIRED, its flow-control replies and the deliveries below `ef.src.`.
 * - `EF_CLOUD`: EF_STATUS, EF_EVENTS and the provider's other connection. Exports the status and event subjects as
 *   services (the sites' JetStream publishes get their acks as service replies) and the sessions' cloud->edge half;
 *   imports the requests to nodes and the sessions' edge->cloud half from EF_SITES.
 * - `EF_SITES`: where every site's leaf connection binds. No JetStream, so nothing a site injects where the hub does
 *   not check it (`$JS.ACK.*`, `_R_.*`) reaches a stream or a consumer. Holds the scoped signing key whose template
 *   is {@link nodeLeafPermissionTemplate}.
 *
 * A node's permissions name it by its wire id (subjects.ts nodeWireId): in the scoped key's template by
 * `{{subject()}}`, the public key the user proves at connect, which a signer cannot turn into a wildcard.
 * A leaf user's permissions read from the leaf's side: `pub` is what the site may send to the hub, `sub` what the hub
 * delivers into it.
 */
import {
  DEFAULT_INBOX_PREFIX,
  HUB_DESIRED_FLOW_CONTROL,
  PROVIDER_INBOX_PREFIX,
  SYSTEM_CLAIMS_UPDATE,
  SOURCE_DELIVERIES_ALL,
  Streams,
  desiredSubjects,
  deviceBoard,
  mapperSubjects,
  eventSubjects,
  hubDesiredConsumerCreate,
  outboxSubjects,
  rpcSubjects,
  sessionSubjects,
  siteInboxPrefix,
  sourceDeliverPrefix,
  statusSubjects,
} from './subjects.js';

export interface SubjectList {
  allow: string[];
  deny: string[];
}

export interface SubjectPermissions {
  pub: SubjectList;
  sub: SubjectList;
  /** Replies allowed to requests delivered to the user: at most `max` each, within `ttlMs`. */
  resp?: { max: number; ttlMs: number };
}

/** The scoped signing key's template function for the node's wire id: the user's public key. */
export const NODE_KEY_TEMPLATE = '{{subject()}}';

/** Role name of the scoped signing key that issues node users. */
export const NODE_SIGNER_ROLE = 'edge-node';

/** A subject token no real wire id can be (nkeys are upper-case, names are encoded with `~XX` escapes). */
const PLACEHOLDER = 'ef-node-wire-id-placeholder';

/**
 * What a node's leaf connection may send to the hub and receive from it. `node` is the node's wire id. Never grants
 * `$JS.hub.API.>`, DIRECT.GET or STREAM.MSG.GET on hub streams, `_INBOX.>` or `$JS.S.>`.
 *
 * Nothing in `sub.deny` may overlap a subject the site must publish: a site server applies its leaf user's sub-deny
 * to what it sends into the hub's wildcard interest too (decision 0008).
 */
export function nodeLeafPermissions(node: string): SubjectPermissions {
  return {
    pub: {
      allow: [
        // the site stream's source and the compaction check's listing: the filter sits in the subject
        hubDesiredConsumerCreate('*', desiredSubjects.node(node)),
        // flow-control replies of those consumers (the server names them; cannot be narrowed to a node)
        HUB_DESIRED_FLOW_CONTROL,
        // the forwarders' JetStream publishes (acks come back below the site's inbox prefix)
        statusSubjects.node(node),
        eventSubjects.node(node),
        // interactive sessions, edge -> cloud
        sessionSubjects.direction(node, 'up'),
        // replies to requests from the provider travel as service replies (`_R_.`); the hub never checks `_R_` from a
        // leaf, this entry only makes it announce the reply interest to the site so the site forwards the reply
        '_R_.>',
      ],
      deny: ['$JS.hub.API.STREAM.>', '$JS.hub.API.DIRECT.>', '$JS.API.>', '_INBOX.>', '$JS.S.>', '$SYS.>'],
    },
    sub: {
      allow: [
        // deliveries, heartbeats and flow-control requests of the node's consumers on EF_DESIRED
        `${sourceDeliverPrefix(node)}.>`,
        // the reply to the site server's own consumer create (the server picks this subject)
        '$JSC.R.*',
        `${siteInboxPrefix(node)}.>`,
        rpcSubjects.node(node),
        sessionSubjects.direction(node, 'down'),
      ],
      deny: ['$JS.S.>', '_INBOX.>', '$SYS.>'],
    },
  };
}

/** {@link nodeLeafPermissions} with the wire id replaced by {@link NODE_KEY_TEMPLATE}: the scoped key's template. */
export function nodeLeafPermissionTemplate(): SubjectPermissions {
  return replaceNodeToken(NODE_KEY_TEMPLATE);
}

/**
 * BENCH ONLY: the leaf user of a hollow site (`make bench`: many hollow nodes behind one leaf link, each named by its
 * name). {@link nodeLeafPermissions} with `*` for the node: whatever one node may do, for every node at once. Never
 * issued outside the bench: it reads and writes every node's subjects.
 */
export function hollowLeafPermissions(): SubjectPermissions {
  return replaceNodeToken('*');
}

/** The system-account user that installs account JWTs on the hub ({@link SYSTEM_CLAIMS_UPDATE}): that request only. */
export function claimsPusherPermissions(): SubjectPermissions {
  return {
    pub: { allow: [SYSTEM_CLAIMS_UPDATE], deny: [] },
    sub: { allow: [`${DEFAULT_INBOX_PREFIX}.>`], deny: [] },
  };
}

function replaceNodeToken(token: string): SubjectPermissions {
  return mapSubjects(nodeLeafPermissions(PLACEHOLDER), (subject) =>
    subject
      .split('.')
      .map((t) => (t === PLACEHOLDER ? token : t))
      .join('.'),
  );
}

/**
 * The agent's user on its own site server (a static account with JetStream, domain `site-<node>`): its site streams,
 * the hub subjects its node may use through the leaf, nothing of another node. One reply per request it receives.
 */
export function agentLocalPermissions(node: string): SubjectPermissions {
  return {
    pub: {
      allow: [
        // the site's own JetStream: the agent is its only tenant
        '$JS.API.>',
        '$JS.ACK.>',
        hubDesiredConsumerCreate('*', desiredSubjects.node(node)),
        outboxSubjects.node(node),
        eventSubjects.siteNode(node),
        // the device board the site's mappers read (KV puts and deletes)
        deviceBoard.subjects(node),
        statusSubjects.node(node),
        eventSubjects.node(node),
        sessionSubjects.direction(node, 'up'),
      ],
      deny: [],
    },
    sub: {
      allow: [
        `${siteInboxPrefix(node)}.>`,
        rpcSubjects.node(node),
        sessionSubjects.direction(node, 'down'),
        `${sourceDeliverPrefix(node)}.>`,
        // the mappers' reports (request/reply at the site)
        mapperSubjects.reports(node),
      ],
      deny: [],
    },
    resp: { max: 1, ttlMs: 60_000 },
  };
}

/** The JetStream API calls that manage and read one stream: info, create, update, consumers. */
function streamApi(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
    `$JS.API.STREAM.UPDATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
  ];
}

/** The provider's two hub users: one in EF_DESIRED (publishes desired state), one in EF_CLOUD (status, events, rpc). */
export const providerPermissions = {
  desired: (): SubjectPermissions => ({
    pub: { allow: ['$JS.API.INFO', ...streamApi(Streams.desired), desiredSubjects.all], deny: [] },
    sub: { allow: [`${PROVIDER_INBOX_PREFIX}.>`], deny: [] },
  }),
  cloud: (): SubjectPermissions => ({
    pub: {
      allow: [
        '$JS.API.INFO',
        ...streamApi(Streams.status),
        ...streamApi(Streams.events),
        // a pod's report is purged from EF_STATUS when the pod is gone
        `$JS.API.STREAM.PURGE.${Streams.status}`,
        rpcSubjects.all,
        sessionSubjects.allDirection('down'),
      ],
      deny: [],
    },
    sub: { allow: [`${PROVIDER_INBOX_PREFIX}.>`, sessionSubjects.allDirection('up')], deny: [] },
  }),
};

/** Names of the hub's accounts (besides the system account). */
export const HubAccounts = { desired: 'EF_DESIRED', cloud: 'EF_CLOUD', sites: 'EF_SITES' } as const;
export type HubAccount = (typeof HubAccounts)[keyof typeof HubAccounts];

export interface AccountExport {
  name: string;
  subject: string;
  type: 'service' | 'stream';
}
export interface AccountImport extends AccountExport {
  /** The exporting account. */
  from: HubAccount;
}
export interface AccountLayout {
  /** JetStream enabled for the account. */
  jetstream: boolean;
  exports: AccountExport[];
  imports: AccountImport[];
}

const desiredExports: AccountExport[] = [
  { name: 'desired-consumer-create', subject: `$JS.API.CONSUMER.CREATE.${Streams.desired}.*.${desiredSubjects.all}`, type: 'service' },
  { name: 'desired-flow-control', subject: HUB_DESIRED_FLOW_CONTROL, type: 'service' },
  { name: 'desired-deliveries', subject: SOURCE_DELIVERIES_ALL, type: 'stream' },
];
const cloudExports: AccountExport[] = [
  { name: 'status', subject: statusSubjects.all, type: 'service' },
  { name: 'events', subject: eventSubjects.all, type: 'service' },
  { name: 'session-down', subject: sessionSubjects.allDirection('down'), type: 'stream' },
];
const sitesExports: AccountExport[] = [
  { name: 'rpc', subject: rpcSubjects.all, type: 'service' },
  { name: 'session-up', subject: sessionSubjects.allDirection('up'), type: 'stream' },
];
const from = (account: HubAccount, exports: AccountExport[]): AccountImport[] => exports.map((e) => ({ ...e, from: account }));

/** The hub's accounts: what each exports, and what each imports from which. */
export const HUB_ACCOUNT_LAYOUT: Record<HubAccount, AccountLayout> = {
  [HubAccounts.desired]: { jetstream: true, exports: desiredExports, imports: [] },
  [HubAccounts.cloud]: { jetstream: true, exports: cloudExports, imports: from(HubAccounts.sites, sitesExports) },
  [HubAccounts.sites]: {
    jetstream: false,
    exports: sitesExports,
    imports: [...from(HubAccounts.desired, desiredExports), ...from(HubAccounts.cloud, cloudExports)],
  },
};

function mapSubjects(p: SubjectPermissions, f: (s: string) => string): SubjectPermissions {
  const list = (l: SubjectList): SubjectList => ({ allow: l.allow.map(f), deny: l.deny.map(f) });
  return { pub: list(p.pub), sub: list(p.sub), ...(p.resp ? { resp: p.resp } : {}) };
}
