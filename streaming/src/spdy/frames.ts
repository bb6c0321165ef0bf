/**
 * SPDY/3.1 framing (draft-mbelshe-httpbis-spdy-00 with the 3.1 connection window): a pure, synchronous frame reader
 * that turns a byte stream into frames, and encoders for every frame either side sends. Header blocks stay compressed
 * here; {@link ./headers.ts} owns the zlib contexts. Shared by the provider's SPDY server (kubelet API) and the
 * agent's SPDY client (containerd's CRI streaming server); the connections, whose roles differ, stay with each.
 *
 * Control frame: |1|version(15)=3|type(16)|flags(8)|length(24)|payload. Data frame: |0|stream-id(31)|flags(8)|length(24)|data.
 */

export const SPDY_VERSION = 3;
export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
/** SETTINGS id of the initial stream window. */
export const SETTINGS_INITIAL_WINDOW_SIZE = 7;
export const DEFAULT_WINDOW = 65_536;
export const MAX_WINDOW = 0x7fff_ffff;

export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

/** RST_STREAM status codes. */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  FrameTooLarge: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { Ok: 0, ProtocolError: 1, InternalError: 2 } as const;

export type Frame =
  | { type: 'data'; streamId: number; fin: boolean; data: Buffer }
  | { type: 'syn_stream'; streamId: number; associatedId: number; priority: number; fin: boolean; unidirectional: boolean; block: Buffer }
  | { type: 'syn_reply'; streamId: number; fin: boolean; block: Buffer }
  | { type: 'headers'; streamId: number; fin: boolean; block: Buffer }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; entries: { id: number; value: number }[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'window_update'; streamId: number; delta: number }
  /** A control frame of a type this implementation does not know: ignored, as the spec asks. */
  | { type: 'unknown'; frameType: number };

/** The peer broke the framing: the connection ends with GOAWAY PROTOCOL_ERROR. */
export class SpdyProtocolError extends Error {
  override name = 'SpdyProtocolError';
}
export function isSpdyProtocolError(err: unknown): err is SpdyProtocolError {
  return err instanceof SpdyProtocolError;
}

export interface FrameReaderLimits {
  /** Largest control frame accepted (a header block is at most this, compressed). Default 64 KiB. */
  maxControlFrame: number;
  /** Largest data frame accepted. Default 1 MiB (the protocol allows 16 MiB). */
  maxDataFrame: number;
}

/** Turns bytes into frames. push() the bytes as they come; next() returns a frame once one is complete. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly limits: FrameReaderLimits;

  constructor(limits: Partial<FrameReaderLimits> = {}) {
    this.limits = { maxControlFrame: 65_536, maxDataFrame: 1 << 20, ...limits };
  }

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** Bytes held that do not make a whole frame yet. */
  get buffered(): number {
    return this.buf.length;
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws SpdyProtocolError on bad framing. */
  next(): Frame | undefined {
    if (this.buf.length < 8) return undefined;
    const control = (this.buf[0]! & 0x80) !== 0;
    const flags = this.buf[4]!;
    const length = this.buf.readUIntBE(5, 3);
    const max = control ? this.limits.maxControlFrame : this.limits.maxDataFrame;
    if (length > max) throw new SpdyProtocolError(`${control ? 'control' : 'data'} frame of ${length} bytes exceeds the limit of ${max}`);
    if (this.buf.length < 8 + length) return undefined;
    const head = this.buf.subarray(0, 8);
    const payload = this.buf.subarray(8, 8 + length);
    this.buf = this.buf.subarray(8 + length);
    if (!control) {
      return { type: 'data', streamId: head.readUInt32BE(0) & 0x7fff_ffff, fin: (flags & FLAG_FIN) !== 0, data: Buffer.from(payload) };
    }
    const version = head.readUInt16BE(0) & 0x7fff;
    if (version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${version}`);
    return parseControl(head.readUInt16BE(2), flags, payload);
  }
}

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) throw new SpdyProtocolError(`${what} frame too short (${payload.length} bytes)`);
}

function parseControl(type: number, flags: number, p: Buffer): Frame {
  const fin = (flags & FLAG_FIN) !== 0;
  switch (type) {
    case FrameType.SynStream:
      need(p, 10, 'SYN_STREAM');
      return {
        type: 'syn_stream',
        streamId: p.readUInt32BE(0) & 0x7fff_ffff,
        associatedId: p.readUInt32BE(4) & 0x7fff_ffff,
        priority: p[8]! >> 5,
        fin,
        unidirectional: (flags & FLAG_UNIDIRECTIONAL) !== 0,
        block: Buffer.from(p.subarray(10)),
      };
    case FrameType.SynReply:
    case FrameType.Headers:
      need(p, 4, type === FrameType.SynReply ? 'SYN_REPLY' : 'HEADERS');
      return {
        type: type === FrameType.SynReply ? 'syn_reply' : 'headers',
        streamId: p.readUInt32BE(0) & 0x7fff_ffff,
        fin,
        block: Buffer.from(p.subarray(4)),
      };
    case FrameType.RstStream:
      need(p, 8, 'RST_STREAM');
      return { type: 'rst_stream', streamId: p.readUInt32BE(0) & 0x7fff_ffff, status: p.readUInt32BE(4) };
    case FrameType.Settings: {
      need(p, 4, 'SETTINGS');
      const n = p.readUInt32BE(0);
      if (p.length !== 4 + n * 8) throw new SpdyProtocolError(`SETTINGS frame says ${n} entries but has ${p.length - 4} bytes`);
      const entries = [];
      for (let i = 0; i < n; i++) entries.push({ id: p.readUInt32BE(4 + i * 8) & 0xff_ffff, value: p.readUInt32BE(8 + i * 8) });
      return { type: 'settings', entries };
    }
    case FrameType.Ping:
      need(p, 4, 'PING');
      return { type: 'ping', id: p.readUInt32BE(0) };
    case FrameType.GoAway:
      need(p, 4, 'GOAWAY');
      // SPDY/3 GOAWAY has a status; some peers send the SPDY/2 form without it.
      return { type: 'goaway', lastGoodStreamId: p.readUInt32BE(0) & 0x7fff_ffff, status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WindowUpdate: {
      need(p, 8, 'WINDOW_UPDATE');
      const delta = p.readUInt32BE(4) & 0x7fff_ffff;
      if (delta === 0) throw new SpdyProtocolError('WINDOW_UPDATE with a delta of 0');
      return { type: 'window_update', streamId: p.readUInt32BE(0) & 0x7fff_ffff, delta };
    }
    default:
      return { type: 'unknown', frameType: type };
  }
}

function control(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > 0xff_ffff) throw new RangeError(`control frame payload of ${payload.length} bytes`);
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head[4] = flags;
  head.writeUIntBE(payload.length, 5, 3);
  return Buffer.concat([head, payload]);
}

function u32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, i * 4));
  return b;
}

/** Frame encoders (header blocks already compressed). */
export const encode = {
  data(streamId: number, data: Uint8Array, fin: boolean): Buffer {
    if (data.length > 0xff_ffff) throw new RangeError(`data frame of ${data.length} bytes`);
    const head = Buffer.alloc(8);
    head.writeUInt32BE(streamId & 0x7fff_ffff, 0);
    head[4] = fin ? FLAG_FIN : 0;
    head.writeUIntBE(data.length, 5, 3);
    return Buffer.concat([head, data]);
  },
  synStream(streamId: number, block: Buffer, fin: boolean, associatedId = 0, priority = 0): Buffer {
    const p = Buffer.concat([u32s(streamId, associatedId), Buffer.from([(priority & 7) << 5, 0]), block]);
    return control(FrameType.SynStream, fin ? FLAG_FIN : 0, p);
  },
  synReply(streamId: number, block: Buffer, fin: boolean): Buffer {
    return control(FrameType.SynReply, fin ? FLAG_FIN : 0, Buffer.concat([u32s(streamId), block]));
  },
  headers(streamId: number, block: Buffer, fin: boolean): Buffer {
    return control(FrameType.Headers, fin ? FLAG_FIN : 0, Buffer.concat([u32s(streamId), block]));
  },
  rstStream(streamId: number, status: number): Buffer {
    return control(FrameType.RstStream, 0, u32s(streamId, status));
  },
  settings(entries: { id: number; value: number }[]): Buffer {
    return control(FrameType.Settings, 0, u32s(entries.length, ...entries.flatMap((e) => [e.id & 0xff_ffff, e.value])));
  },
  ping(id: number): Buffer {
    return control(FrameType.Ping, 0, u32s(id));
  },
  goAway(lastGoodStreamId: number, status: number): Buffer {
    return control(FrameType.GoAway, 0, u32s(lastGoodStreamId, status));
  },
  windowUpdate(streamId: number, delta: number): Buffer {
    return control(FrameType.WindowUpdate, 0, u32s(streamId, delta & 0x7fff_ffff));
  },
};
