/**
 * The limits of the hub streams the provider owns, and what happens at them (docs/decisions/0004, amendment
 * "Bounded hub streams"). Every stream holds the last value per subject (max_msgs_per_subject 1) and no message
 * larger than one NATS message (max_msg_size, {@link MAX_PAYLOAD_BYTES}); on top of that:
 *
 * - EF_DESIRED (written by the provider only): `max_bytes` with discard **new**. At the limit a publish is refused
 *   ({@link HubStreamFullError}, counted `desired_publish_rejected_total{reason="stream_full"}`) and nothing stored is
 *   ever dropped to make room: dropping the oldest values would silently take pods and objects away from the sites
 *   (a site or a takeover reading the stream would never see them). The refused publish is retried by the next sync;
 *   a tombstone (small) still goes in and frees the space of the value it replaces.
 * - EF_STATUS (written by the sites' forwarders): `max_bytes` with discard **old**. At the limit the oldest report is
 *   dropped; it was applied to the API when it arrived (the API keeps it), and heartbeats are re-sent every 5 s.
 *   Discarding new instead would let one site that fills the stream stop every other site's reports.
 *
 * EF_EVENTS keeps its own caps (256 MiB, 1 h, discard old) from proto's HUB_STREAM_CONFIGS.
 */
import { JetStreamApiError, type StreamConfig } from '@nats-io/jetstream';
import { MAX_PAYLOAD_BYTES, Streams } from '@edgefarm/proto';

const MiB = 1024 * 1024;

/** Defaults of the byte limits (EF_HUB_DESIRED_MAX_MIB, EF_HUB_STATUS_MAX_MIB). */
export const DEFAULT_DESIRED_MAX_MIB = 4096;
export const DEFAULT_STATUS_MAX_MIB = 1024;

/** JetStream's API error codes for a refused publish (nats-server JSStreamStoreFailedF / JSStreamMessageExceedsMaximumErr). */
const CODE_MAX_BYTES = 10077;
const CODE_MESSAGE_TOO_LARGE = 10054;

export interface HubStreamLimits {
  /** EF_DESIRED's byte limit (discard new). */
  desiredMaxBytes: number;
  /** EF_STATUS's byte limit (discard old). */
  statusMaxBytes: number;
}

export const DEFAULT_HUB_STREAM_LIMITS: HubStreamLimits = {
  desiredMaxBytes: DEFAULT_DESIRED_MAX_MIB * MiB,
  statusMaxBytes: DEFAULT_STATUS_MAX_MIB * MiB,
};

/** The byte limits from the provider's settings (in MiB; unset: the defaults). */
export function hubStreamLimits(config: { hubDesiredMaxMiB?: number; hubStatusMaxMiB?: number }): HubStreamLimits {
  return {
    desiredMaxBytes: (config.hubDesiredMaxMiB ?? DEFAULT_DESIRED_MAX_MIB) * MiB,
    statusMaxBytes: (config.hubStatusMaxMiB ?? DEFAULT_STATUS_MAX_MIB) * MiB,
  };
}

/** The limit settings of a hub stream, merged over its configuration from proto; other streams are left as they are. */
export function streamLimits(name: string, limits: HubStreamLimits): Partial<StreamConfig> {
  if (name === Streams.desired) return { max_bytes: limits.desiredMaxBytes, discard: 'new', max_msg_size: MAX_PAYLOAD_BYTES };
  if (name === Streams.status) return { max_bytes: limits.statusMaxBytes, discard: 'old', max_msg_size: MAX_PAYLOAD_BYTES };
  return {};
}

/** Why the hub refused a desired-state publish: the stream is at its byte limit, or the message exceeds max_msg_size. */
export type PublishRejectReason = 'stream_full' | 'too_large';

/** A publish the hub refused because of a stream limit; nothing already stored was lost. */
export class HubStreamFullError extends Error {
  override name = 'HubStreamFullError';
  constructor(
    readonly stream: string,
    readonly subject: string,
    readonly reason: PublishRejectReason,
    options?: { cause?: unknown },
  ) {
    super(
      reason === 'stream_full'
        ? `${stream} is at its byte limit: ${subject} not stored (everything already stored is kept; ` +
            `tombstones still go in; raise EF_HUB_DESIRED_MAX_MIB or remove pods)`
        : `${stream} refused ${subject}: larger than its max_msg_size (${MAX_PAYLOAD_BYTES} bytes)`,
      options,
    );
  }
}

export function isHubStreamFull(err: unknown): err is HubStreamFullError {
  return err instanceof HubStreamFullError;
}

/** A JetStream publish error mapped to a {@link HubStreamFullError} when a stream limit refused it; else undefined. */
export function limitError(err: unknown, stream: string, subject: string): HubStreamFullError | undefined {
  if (!(err instanceof JetStreamApiError)) return undefined;
  if (err.code === CODE_MAX_BYTES) return new HubStreamFullError(stream, subject, 'stream_full', { cause: err });
  if (err.code === CODE_MESSAGE_TOO_LARGE) return new HubStreamFullError(stream, subject, 'too_large', { cause: err });
  return undefined;
}
