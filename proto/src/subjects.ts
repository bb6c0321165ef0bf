/**
 * The one module that names every JetStream stream, domain, subject and header EdgeFarm uses, and the only place
 * that builds or parses a subject. Nothing else concatenates subjects.
 *
 * Layout (every subject a node touches carries the node's name right after its kind, so a later per-node NATS
 * permission can be `ef.*.<node>.>`):
 *
 *   hub  EF_DESIRED stream   ef.desired.<node>.pod.<ns>.<name>     EdgePodSpec, last value per subject, tombstones
 *                            ef.desired.<node>.configmap.<ns>.<name>  EdgeObject: a ConfigMap a pod on the node uses
 *                            ef.desired.<node>.secret.<ns>.<name>  EdgeObject: a Secret a pod on the node uses
 *                            ef.desired.<node>.token.<ns>.<pod>    EdgeObject: the ServiceAccount tokens of one pod
 *                            ef.desired.<node>.node.config         NodeConfig: how the node's desired state is kept
 *                            ef.desired.<node>.device.<ns>.<name>  EdgeDevice: a device the node's site reaches
 *   site EFD_<node> stream   (no subjects; sources EF_DESIRED filtered to ef.desired.<node>.>)
 *   site EFO_<node> stream   ef.outbox.<node>.pod.<uid>            PodStatusReport, last value per pod
 *                            ef.outbox.<node>.node                 NodeHeartbeat, last value
 *                            ef.outbox.<node>.metrics              the agent's Prometheus text, last value
 *                            ef.outbox.<node>.device.<uid>         DeviceStatusReport: a device's twin, last value
 *   hub  EF_STATUS stream    ef.status.<node>.pod.<uid> / .node / .metrics / .device.<uid>   what the forwarder moved
 *   site EFE_<node> stream   ef.eventbox.<node>.<id>               EdgeEvent, capped by size and age (drops oldest)
 *   hub  EF_EVENTS stream    ef.events.<node>.<id>                 what the forwarder moved from the events stream
 *
 * Interactive traffic (core NATS, no stream; docs/decisions/0005-interactive-traffic.md):
 *
 *   ef.rpc.<node>.<op>              request/reply, provider -> agent: StreamRequest / StreamReply (op: logs, exec,
 *                                   attach, portforward, stats)
 *   ef.session.<node>.<id>.up       session frames agent -> provider (output, credit for input, keepalive, end)
 *   ef.session.<node>.<id>.down     session frames provider -> agent (input, credit for output, resize, end)
 *
 * Tokens are encoded with {@link encodeToken}: Kubernetes names contain dots, which NATS reads as separators.
 *
 * `<node>` in every subject is the node's WIRE ID ({@link nodeWireId}): for a node that joined with a NATS identity
 * its user public key (an nkey, `U` + 55 base32 characters), otherwise its encoded name. Keying subjects by the key
 * the node proves at connect is what lets the hub's per-node permission template name the node by `{{subject()}}`,
 * which a signer cannot turn into a wildcard (permissions.ts). Site-local stream names keep the node's name.
 *
 * Reply and delivery subjects a node receives are node-scoped too, so its permissions never need `_INBOX.>` or
 * `$JS.S.>`: the agent's inbox prefix {@link siteInboxPrefix} (publish acks from the hub), the deliver prefix of its
 * site stream's source and of its listings {@link sourceDeliverPrefix}; the provider's inboxes are
 * {@link PROVIDER_INBOX_PREFIX}.
 */

/** JetStream domain of the cloud hub. Each site has its own domain, {@link siteDomain}. */
export const HUB_DOMAIN = 'hub';

export const Streams = {
  /** Hub: desired state for every node, last value per object. */
  desired: 'EF_DESIRED',
  /** Hub: status and heartbeats from every node, last value per object. */
  status: 'EF_STATUS',
  /** Site: the node's filtered, durable copy of its desired state. */
  siteDesired: (node: string): string => `EFD_${encodeToken(node)}`,
  /** Site: the node's store-and-forward outbox. */
  outbox: (node: string): string => `EFO_${encodeToken(node)}`,
  /** Hub: Kubernetes Events from every node, capped by size and age. */
  events: 'EF_EVENTS',
  /** Site: the node's outgoing Kubernetes Events, capped by size and age (best effort, like the API's event TTL). */
  siteEvents: (node: string): string => `EFE_${encodeToken(node)}`,
} as const;

/**
 * The site's device board (docs/decisions/0012-devices.md): a key-value bucket in the site's JetStream where the agent
 * puts every desired device of its node, keyed `<protocol>.<namespace>.<name>` (tokens encoded), for the mappers at
 * the site: a mapper watches `<protocol>.>` and gets every device it serves at start, whatever the order of creation.
 * Named by the node's wire id, like its subjects, so the agent's site permissions (permissions.ts) can name it.
 */
export const deviceBoard = {
  bucket: (wireId: string): string => `EFDEV_${encodeToken(wireId)}`,
  key: (protocol: string, key: PodKey): string => `${encodeToken(protocol)}.${encodeToken(key.namespace)}.${encodeToken(key.name)}`,
  /** What a mapper of `protocol` watches. */
  protocol: (protocol: string): string => `${encodeToken(protocol)}.>`,
  /** The subjects of the bucket's puts and deletes (what the agent may publish). */
  subjects: (wireId: string): string => `$KV.${deviceBoard.bucket(wireId)}.>`,
};

/**
 * Mappers to the agent, at the site only (core request/reply; docs/decisions/0012-devices.md): a MapperReport of one
 * device at `ef.mapper.<node>.report.<protocol>.<ns>.<name>`. The protocol in the subject is what a mapper's
 * permission can pin it to.
 */
export const mapperSubjects = {
  /** Every report to the node's agent (what it subscribes to). */
  reports: (wireId: string): string => `ef.mapper.${encodeToken(wireId)}.report.>`,
  /** What a mapper of `protocol` may publish. */
  protocolReports: (wireId: string, protocol: string): string => `ef.mapper.${encodeToken(wireId)}.report.${encodeToken(protocol)}.>`,
  report: (wireId: string, protocol: string, key: PodKey): string =>
    `ef.mapper.${encodeToken(wireId)}.report.${encodeToken(protocol)}.${encodeToken(key.namespace)}.${encodeToken(key.name)}`,
};

export function parseMapperReportSubject(subject: string): { node: string; protocol: string; key: PodKey } {
  const t = subject.split('.');
  if (t.length === 7 && t[0] === 'ef' && t[1] === 'mapper' && t[3] === 'report') {
    return { node: decodeToken(t[2]!), protocol: decodeToken(t[4]!), key: { namespace: decodeToken(t[5]!), name: decodeToken(t[6]!) } };
  }
  throw new SubjectError(`not a mapper report subject: "${subject}"`);
}

/** Limits of the site events stream: events are capped by size and age, the oldest dropped first. */
export const SITE_EVENT_LIMITS = {
  max_bytes: 1024 * 1024,
  /** 1 hour, in nanoseconds (the API server's default event TTL). */
  max_age: 3600 * 1_000_000_000,
} as const;

/**
 * The canonical configuration of the hub streams (JetStream StreamConfig fields; string values as the JetStream
 * API takes them). The provider creates them; test harnesses create the same. Replicas are the caller's choice.
 */
export const HUB_STREAM_CONFIGS = [
  {
    name: Streams.desired,
    subjects: ['ef.desired.>'],
    description: 'EdgeFarm desired state per node: last value per object, tombstones for deletes',
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_msgs_per_subject: 1,
    /** Tombstones carry a Nats-TTL (see {@link TOMBSTONE_TTL}): deletes do not pile up in the hub for ever. */
    allow_msg_ttl: true,
  },
  {
    name: Streams.status,
    subjects: ['ef.status.>'],
    description: 'EdgeFarm status from every node: last value per pod and per node',
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_msgs_per_subject: 1,
    /** Nats-Msg-Id de-duplication window for forwarded reports: 2 minutes, in nanoseconds. */
    duplicate_window: 120 * 1_000_000_000,
  },
  {
    name: Streams.events,
    subjects: ['ef.events.>'],
    description: 'EdgeFarm Kubernetes Events from every node, capped by size and age',
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_bytes: 256 * 1024 * 1024,
    /** 1 hour, in nanoseconds. */
    max_age: 3600 * 1_000_000_000,
    /** Nats-Msg-Id (the event's site subject) de-duplication window: 2 minutes, in nanoseconds. */
    duplicate_window: 120 * 1_000_000_000,
  },
] as const;

export const Headers = {
  /** Marks a tombstone; the same header and values the NATS KV API uses. */
  operation: 'KV-Operation',
  /** Nats-Msg-Id: de-duplication key on publishes to the hub. */
  msgId: 'Nats-Msg-Id',
  /** Per-message TTL (NATS 2.11+), set on tombstones in the hub's EF_DESIRED: `<seconds>s`. */
  ttl: 'Nats-TTL',
  /** Set by JetStream on a sourced message: `<origin stream id> <origin sequence> <filter> <transform>`. */
  streamSource: 'Nats-Stream-Source',
} as const;

/**
 * The sequence a sourced message had in its origin stream (from its Nats-Stream-Source header), or undefined when
 * the header is missing or not in the form JetStream writes.
 */
export function sourcedSequence(header: string | undefined): number | undefined {
  const token = header?.trim().split(/\s+/)[1];
  if (token === undefined || !/^\d+$/.test(token)) return undefined;
  const n = Number(token);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}
export const TOMBSTONE_OPERATIONS: readonly string[] = ['DEL', 'PURGE'];

/**
 * How long the hub keeps a tombstone (the compaction horizon of the desired state). A site that was out of touch
 * with the hub for longer may have missed deletes whose tombstones expired; it then lists its node's subjects on the
 * hub (see edge-agent/src/desired/compaction-check.ts). The provider tells every node the TTL it uses in the node's
 * NodeConfig ({@link desiredSubjects.nodeConfig}), which the site stream keeps like the rest of its desired state, so
 * the site needs no hub stream API to learn it; it also writes it into EF_DESIRED's metadata under `metadataKey`, for
 * operators.
 */
export const TOMBSTONE_TTL = {
  defaultSeconds: 24 * 3600,
  metadataKey: 'edgefarm.io/tombstone-ttl-seconds',
} as const;

export function siteDomain(site: string): string {
  return `site-${encodeToken(site)}`;
}

/** JetStream API prefix for reaching a domain from another one (used by the site stream's source). */
export function domainApiPrefix(domain: string): string {
  return `$JS.${domain}.API`;
}

/**
 * The filtered consumer-create subject a site uses on the hub's EF_DESIRED (its stream's source, its listings):
 * `$JS.hub.API.CONSUMER.CREATE.EF_DESIRED.<consumer>.<filter>`. The filter in the subject is what a permission can
 * pin to one node; `consumer` is `*` in a permission (the server names source consumers itself).
 */
export function hubDesiredConsumerCreate(consumer: string, filter: string): string {
  return `${domainApiPrefix(HUB_DOMAIN)}.CONSUMER.CREATE.${Streams.desired}.${consumer}.${filter}`;
}

/** Flow-control replies of consumers on the hub's EF_DESIRED (the server picks the rest of the subject). */
export const HUB_DESIRED_FLOW_CONTROL = `$JS.FC.${Streams.desired}.>`;

/** Deliveries of the node's consumers on the hub's EF_DESIRED (its site stream's source, its listings) go below this. */
export function sourceDeliverPrefix(node: string): string {
  return `ef.src.${encodeToken(node)}`;
}

/**
 * The deliver subject of one listing of the node's hub subjects (the compaction check's push consumer): below the
 * node's deliver prefix, so its leaf permissions cover it. `id` is the listing's own random token.
 */
export function sourceListSubject(node: string, id: string): string {
  return `${sourceDeliverPrefix(node)}.list.${encodeToken(id)}`;
}

/** Every node's deliveries from EF_DESIRED (what the hub's accounts export and import). */
export const SOURCE_DELIVERIES_ALL = 'ef.src.>';

/** Inbox prefix of every site-side client of the node (the agent): replies from the hub reach only this node. */
export function siteInboxPrefix(node: string): string {
  return `ef.inbox.${encodeToken(node)}`;
}

/** Inbox prefix of the provider's connections. */
export const PROVIDER_INBOX_PREFIX = 'ef.provider.inbox';

/**
 * The system account's request that installs an account JWT on every hub server (a full resolver stores it and
 * passes it to the other members): how a revocation reaches the hub. Answered with code 200 when stored.
 */
export const SYSTEM_CLAIMS_UPDATE = '$SYS.REQ.CLAIMS.UPDATE';

/** The default inbox prefix of a NATS client (the system-account user that pushes claims keeps it). */
export const DEFAULT_INBOX_PREFIX = '_INBOX';

/** A NATS user public key (nkey): `U` and 55 base32 characters. */
const USER_NKEY = /^U[A-Z2-7]{55}$/;

/**
 * The token that names a node in every subject: its NATS user public key once it joined with one, otherwise its name
 * (encoded by the subject builders). An nkey is its own encoding ([A-Z2-7] only), so builders take either.
 */
export function nodeWireId(node: { name: string; publicKey?: string | undefined }): string {
  return node.publicKey !== undefined && USER_NKEY.test(node.publicKey) ? node.publicKey : node.name;
}

/** True for a NATS user public key (what {@link nodeWireId} returns for a joined node). */
export function isUserPublicKey(value: string): boolean {
  return USER_NKEY.test(value);
}

const TOKEN_SAFE = /^[A-Za-z0-9_-]$/;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Encodes an arbitrary non-empty string as one NATS subject token (and a valid stream-name fragment): every byte
 * outside [A-Za-z0-9_-] becomes `~XX` (upper-case hex of its UTF-8 byte). Reversible with {@link decodeToken}. A string
 * with a lone surrogate (no UTF-8 encoding) is a {@link SubjectError}.
 */
export function encodeToken(value: string): string {
  if (value.length === 0) throw new SubjectError('cannot encode an empty subject token');
  // A lone surrogate has no UTF-8: it would encode as U+FFFD, the token of another string (two names, one subject).
  if (LONE_SURROGATE.test(value)) throw new SubjectError('cannot encode a subject token that is not well-formed Unicode');
  let out = '';
  for (const ch of value) {
    if (TOKEN_SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += '~' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

export function decodeToken(token: string): string {
  if (token.length === 0) throw new SubjectError('empty subject token');
  if (!/^(?:[A-Za-z0-9_-]|~[0-9A-F]{2})+$/.test(token)) throw new SubjectError(`malformed subject token "${token}"`);
  const bytes: number[] = [];
  for (let i = 0; i < token.length;) {
    if (token[i] === '~') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  const decoded = Buffer.from(bytes).toString('utf8');
  if (encodeToken(decoded) !== token) throw new SubjectError(`non-canonical subject token "${token}"`);
  return decoded;
}

export class SubjectError extends Error {
  override name = 'SubjectError';
}
export function isSubjectError(err: unknown): err is SubjectError {
  return err instanceof SubjectError;
}

// ---- desired state (cloud -> edge) ----

export interface PodKey {
  namespace: string;
  name: string;
}

/**
 * Kinds of desired-state messages: pods, the objects their specs refer to, the node's own NodeConfig (one per node,
 * {@link desiredSubjects.nodeConfig}), and devices (docs/decisions/0012-devices.md).
 */
export const DESIRED_KINDS = ['pod', 'configmap', 'secret', 'token', 'node', 'device'] as const;
export type DesiredKind = (typeof DESIRED_KINDS)[number];
/** Kinds of desired messages named by a namespace and a name: pods, objects and devices. */
export type KeyedKind = Exclude<DesiredKind, 'node'>;
/** Desired objects other than pods and devices (what pods use). A token object is named after its pod. */
export type ObjectKind = Exclude<KeyedKind, 'pod' | 'device'>;

/** The last token of the node's NodeConfig subject. */
const NODE_CONFIG = 'config';

export const desiredSubjects = {
  /** Every subject of the hub's desired stream. */
  all: 'ef.desired.>',
  /** Everything desired for one node: the site stream's source filter. */
  node: (node: string): string => `ef.desired.${encodeToken(node)}.>`,
  pod: (node: string, key: PodKey): string => desiredSubjects.of(node, 'pod', key),
  device: (node: string, key: PodKey): string => desiredSubjects.of(node, 'device', key),
  of: (node: string, kind: KeyedKind, key: PodKey): string =>
    `ef.desired.${encodeToken(node)}.${kind}.${encodeToken(key.namespace)}.${encodeToken(key.name)}`,
  /** The node's NodeConfig (within {@link desiredSubjects.node}, so the site stream sources it). */
  nodeConfig: (node: string): string => `ef.desired.${encodeToken(node)}.node.${NODE_CONFIG}`,
};

/** A parsed desired-state subject: a pod or object with its namespace and name, or the node's NodeConfig. */
export type DesiredSubject =
  | {
      node: string;
      kind: KeyedKind;
      /** Namespace and name of the object (for a token object: of its pod). */
      key: PodKey;
    }
  | { node: string; kind: 'node' };

export function parseDesiredSubject(subject: string): DesiredSubject {
  const t = subject.split('.');
  if (t[0] === 'ef' && t[1] === 'desired') {
    const kind = t[3] as DesiredKind;
    if (t.length === 5 && kind === 'node' && t[4] === NODE_CONFIG) return { node: decodeToken(t[2]!), kind };
    if (t.length === 6 && kind !== 'node' && DESIRED_KINDS.includes(kind)) {
      return { node: decodeToken(t[2]!), kind, key: { namespace: decodeToken(t[4]!), name: decodeToken(t[5]!) } };
    }
  }
  throw new SubjectError(`not a desired-state subject: "${subject}"`);
}

// ---- status (edge -> cloud) ----

/** `metrics`: the agent's Prometheus text exposition (last value), not a protobuf message. */
export type StatusKey = { kind: 'pod'; uid: string } | { kind: 'node' } | { kind: 'metrics' } | { kind: 'device'; uid: string };

function statusTail(key: StatusKey): string {
  return key.kind === 'pod' || key.kind === 'device' ? `${key.kind}.${encodeToken(key.uid)}` : key.kind;
}

export const outboxSubjects = {
  node: (node: string): string => `ef.outbox.${encodeToken(node)}.>`,
  of: (node: string, key: StatusKey): string => `ef.outbox.${encodeToken(node)}.${statusTail(key)}`,
};

export const statusSubjects = {
  all: 'ef.status.>',
  node: (node: string): string => `ef.status.${encodeToken(node)}.>`,
  of: (node: string, key: StatusKey): string => `ef.status.${encodeToken(node)}.${statusTail(key)}`,
};

export interface ParsedStatusSubject {
  /** 'outbox' at the site, 'status' on the hub. */
  place: 'outbox' | 'status';
  node: string;
  key: StatusKey;
}

export function parseStatusSubject(subject: string): ParsedStatusSubject {
  const t = subject.split('.');
  if (t[0] === 'ef' && (t[1] === 'outbox' || t[1] === 'status') && t.length >= 4) {
    const place = t[1];
    const node = decodeToken(t[2]!);
    if (t.length === 4 && t[3] === 'node') return { place, node, key: { kind: 'node' } };
    if (t.length === 4 && t[3] === 'metrics') return { place, node, key: { kind: 'metrics' } };
    if (t.length === 5 && t[3] === 'pod') return { place, node, key: { kind: 'pod', uid: decodeToken(t[4]!) } };
    if (t.length === 5 && t[3] === 'device') return { place, node, key: { kind: 'device', uid: decodeToken(t[4]!) } };
  }
  throw new SubjectError(`not a status subject: "${subject}"`);
}

/** The hub subject an outbox message is forwarded to. */
export function forwardSubject(outboxSubject: string): string {
  const p = parseStatusSubject(outboxSubject);
  if (p.place !== 'outbox') throw new SubjectError(`not an outbox subject: "${outboxSubject}"`);
  return statusSubjects.of(p.node, p.key);
}

/** Nats-Msg-Id for a forwarded report: the same report forwarded twice is stored once. */
export function forwardMsgId(outboxSubject: string, generation: bigint): string {
  return `${outboxSubject}#${generation}`;
}

// ---- Kubernetes Events (edge -> cloud) ----

export const eventSubjects = {
  /** Site: every event of one node (the site events stream's subject). */
  siteNode: (node: string): string => `ef.eventbox.${encodeToken(node)}.>`,
  /** Site: one event message; `id` is the EdgeEvent's per-agent unique id. */
  site: (node: string, id: string): string => `ef.eventbox.${encodeToken(node)}.${encodeToken(id)}`,
  /** Hub: every event (the hub events stream's subject). */
  all: 'ef.events.>',
  /** Hub: every event of one node. */
  node: (node: string): string => `ef.events.${encodeToken(node)}.>`,
  of: (node: string, id: string): string => `ef.events.${encodeToken(node)}.${encodeToken(id)}`,
};

export interface ParsedEventSubject {
  /** 'eventbox' at the site, 'events' on the hub. */
  place: 'eventbox' | 'events';
  node: string;
  id: string;
}

export function parseEventSubject(subject: string): ParsedEventSubject {
  const t = subject.split('.');
  if (t.length === 4 && t[0] === 'ef' && (t[1] === 'eventbox' || t[1] === 'events')) {
    return { place: t[1], node: decodeToken(t[2]!), id: decodeToken(t[3]!) };
  }
  throw new SubjectError(`not an event subject: "${subject}"`);
}

/** The hub subject a site event is forwarded to, and its Nats-Msg-Id (the site subject: node and unique id). */
export function forwardEvent(siteSubject: string): { subject: string; msgId: string } {
  const p = parseEventSubject(siteSubject);
  if (p.place !== 'eventbox') throw new SubjectError(`not a site event subject: "${siteSubject}"`);
  return { subject: eventSubjects.of(p.node, p.id), msgId: siteSubject };
}

// ---- interactive traffic (core NATS request/reply and per-session subjects) ----

/** Operations of the kubelet API the edge serves over {@link rpcSubjects}. */
export const RPC_OPS = ['logs', 'exec', 'attach', 'portforward', 'stats'] as const;
export type RpcOp = (typeof RPC_OPS)[number];

export const rpcSubjects = {
  /** Every request to every node (what the hub's accounts export and import). */
  all: 'ef.rpc.>',
  /** Every request to one node: what its agent subscribes to. */
  node: (node: string): string => `ef.rpc.${encodeToken(node)}.*`,
  of: (node: string, op: RpcOp): string => `ef.rpc.${encodeToken(node)}.${op}`,
};

export function parseRpcSubject(subject: string): { node: string; op: RpcOp } {
  const t = subject.split('.');
  const op = t[3] as RpcOp;
  if (t.length === 4 && t[0] === 'ef' && t[1] === 'rpc' && RPC_OPS.includes(op)) return { node: decodeToken(t[2]!), op };
  throw new SubjectError(`not an rpc subject: "${subject}"`);
}

/** Direction of a session subject: `up` edge -> cloud, `down` cloud -> edge. */
export type SessionDirection = 'up' | 'down';

export const sessionSubjects = {
  /** Every session subject of one node. */
  node: (node: string): string => `ef.session.${encodeToken(node)}.>`,
  /** Every session subject of one node in one direction. */
  direction: (node: string, direction: SessionDirection): string => `ef.session.${encodeToken(node)}.*.${direction}`,
  /** Every session subject of every node in one direction (what the hub's accounts export and import). */
  allDirection: (direction: SessionDirection): string => `ef.session.*.*.${direction}`,
  of: (node: string, session: string, direction: SessionDirection): string =>
    `ef.session.${encodeToken(node)}.${encodeToken(session)}.${direction}`,
};
