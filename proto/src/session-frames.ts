/**
 * Session frames of interactive traffic: what travels on ef.session.<node>.<id>.{up,down} (subjects.ts). One NATS
 * message is one frame: a one-byte kind, then the kind's body. Data stays raw bytes behind a two-byte header.
 *
 *   0x01 DATA    <channel u8> <bytes...>      output (up) or input (down); counts against the receiver's window
 *   0x02 EOF     <channel u8>                 no more data on that channel (stdin closed, stdout ended)
 *   0x03 CREDIT  <bytes u32 BE>               the receiver consumed this many bytes: the sender may send them again
 *   0x04 RESIZE  <width u16 BE> <height u16 BE>  terminal size (down only)
 *   0x05 PING                                 keepalive; any frame proves the peer is alive
 *   0x06 END     <SessionEnd protobuf>        the session is over (either side); nothing follows
 *
 * Channels: 0 stdin (down), 1 stdout (up; logs and port-forward data up too), 2 stderr (up). Port-forward data
 * toward the pod uses channel 0.
 */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { SessionEndSchema } from './gen/edgefarm/v1/edge_pb.js';

export const Channel = { stdin: 0, stdout: 1, stderr: 2 } as const;
export type ChannelId = (typeof Channel)[keyof typeof Channel];
const CHANNELS: readonly number[] = [0, 1, 2];

export const FrameKind = { data: 1, eof: 2, credit: 3, resize: 4, ping: 5, end: 6 } as const;

export type Frame =
  | { kind: 'data'; channel: ChannelId; data: Uint8Array }
  | { kind: 'eof'; channel: ChannelId }
  | { kind: 'credit'; bytes: number }
  | { kind: 'resize'; width: number; height: number }
  | { kind: 'ping' }
  | { kind: 'end'; exitCode: number; error?: string };

/** A frame that is not one of the above: the session ends with a protocol error. */
export class FrameError extends Error {
  override name = 'FrameError';
}
export function isFrameError(err: unknown): err is FrameError {
  return err instanceof FrameError;
}

export function encodeFrame(f: Frame): Uint8Array {
  switch (f.kind) {
    case 'data': {
      const out = new Uint8Array(2 + f.data.length);
      out[0] = FrameKind.data;
      out[1] = f.channel;
      out.set(f.data, 2);
      return out;
    }
    case 'eof':
      return Uint8Array.of(FrameKind.eof, f.channel);
    case 'credit': {
      const out = new Uint8Array(5);
      out[0] = FrameKind.credit;
      new DataView(out.buffer).setUint32(1, f.bytes);
      return out;
    }
    case 'resize': {
      const out = new Uint8Array(5);
      out[0] = FrameKind.resize;
      const v = new DataView(out.buffer);
      v.setUint16(1, Math.max(0, Math.min(0xffff, f.width)));
      v.setUint16(3, Math.max(0, Math.min(0xffff, f.height)));
      return out;
    }
    case 'ping':
      return Uint8Array.of(FrameKind.ping);
    case 'end': {
      const body = toBinary(SessionEndSchema, create(SessionEndSchema, { exitCode: f.exitCode, error: f.error ?? '' }));
      const out = new Uint8Array(1 + body.length);
      out[0] = FrameKind.end;
      out.set(body, 1);
      return out;
    }
  }
}

function channelOf(b: Uint8Array): ChannelId {
  if (b.length < 2 || !CHANNELS.includes(b[1]!)) throw new FrameError(`frame ${b[0]}: bad channel ${b[1]}`);
  return b[1] as ChannelId;
}

function fixedLength(b: Uint8Array, n: number): DataView {
  if (b.length !== n) throw new FrameError(`frame ${b[0]}: ${b.length} bytes, want ${n}`);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Decodes one frame; a DATA frame's data is a view into `b` (no copy). */
export function decodeFrame(b: Uint8Array): Frame {
  if (b.length === 0) throw new FrameError('empty frame');
  switch (b[0]) {
    case FrameKind.data:
      return { kind: 'data', channel: channelOf(b), data: b.subarray(2) };
    case FrameKind.eof:
      fixedLength(b, 2);
      return { kind: 'eof', channel: channelOf(b) };
    case FrameKind.credit:
      return { kind: 'credit', bytes: fixedLength(b, 5).getUint32(1) };
    case FrameKind.resize: {
      const v = fixedLength(b, 5);
      return { kind: 'resize', width: v.getUint16(1), height: v.getUint16(3) };
    }
    case FrameKind.ping:
      fixedLength(b, 1);
      return { kind: 'ping' };
    case FrameKind.end: {
      try {
        const m = fromBinary(SessionEndSchema, b.subarray(1));
        return { kind: 'end', exitCode: m.exitCode, ...(m.error ? { error: m.error } : {}) };
      } catch (cause) {
        throw new FrameError(`END frame: malformed SessionEnd: ${(cause as Error).message}`, { cause });
      }
    }
    default:
      throw new FrameError(`unknown frame kind ${b[0]}`);
  }
}
