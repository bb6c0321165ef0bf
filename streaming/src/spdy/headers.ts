/**
 * SPDY/3 header blocks: |count(32)| then per pair |name length(32)|name|value length(32)|value|, values of one name
 * joined by NUL, names lower case; the block is compressed with zlib primed with {@link SPDY3_DICTIONARY}, with ONE
 * context per direction for the whole connection (each block ends with a sync flush). So blocks must be decoded in
 * the order they arrive and encoded in the order they are written: callers serialize (both SpdyConnections do).
 */
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyProtocolError } from './frames.js';

/** Header names (lower case) to their values. */
export type SpdyHeaders = Map<string, string[]>;

export function serializeHeaders(headers: SpdyHeaders): Buffer {
  const parts: Buffer[] = [u32(headers.size)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function parseHeaders(raw: Buffer): SpdyHeaders {
  const out: SpdyHeaders = new Map();
  let off = 0;
  const take = (what: string): Buffer => {
    if (off + 4 > raw.length) throw new SpdyProtocolError(`header block truncated at the length of a ${what}`);
    const len = raw.readUInt32BE(off);
    off += 4;
    if (off + len > raw.length) throw new SpdyProtocolError(`header block truncated in a ${what} of ${len} bytes`);
    const b = raw.subarray(off, off + len);
    off += len;
    return b;
  };
  if (raw.length < 4) throw new SpdyProtocolError('header block without a count');
  const count = raw.readUInt32BE(0);
  off = 4;
  for (let i = 0; i < count; i++) {
    const name = take('name').toString('utf8');
    if (name === '' || name !== name.toLowerCase()) throw new SpdyProtocolError(`invalid header name "${name}"`);
    if (out.has(name)) throw new SpdyProtocolError(`duplicate header "${name}"`);
    out.set(name, take('value').toString('utf8').split('\0'));
  }
  if (off !== raw.length) throw new SpdyProtocolError(`${raw.length - off} stray bytes after the header block`);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Runs one block through a streaming zlib context and returns what the sync flush produced. */
function pass(z: zlib.Inflate | zlib.Deflate, input: Buffer, maxOut: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed: Error | undefined;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > maxOut) failed ??= new SpdyProtocolError(`header block inflates to more than ${maxOut} bytes`);
      else chunks.push(c);
    };
    const onError = (err: Error) => {
      z.off('data', onData);
      reject(new SpdyProtocolError(`header block compression: ${err.message}`, { cause: err }));
    };
    z.on('data', onData);
    z.once('error', onError);
    z.write(input);
    z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
      z.off('data', onData);
      z.off('error', onError);
      if (failed) reject(failed);
      else resolve(Buffer.concat(chunks));
    });
  });
}

/** The two zlib contexts of one connection. close() frees them. */
export class HeaderCodec {
  private readonly inflate = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
  private readonly deflate = zlib.createDeflate({ dictionary: SPDY3_DICTIONARY });

  /** @param maxHeaderBytes largest uncompressed header block accepted (oversized headers are a protocol error). */
  constructor(private readonly maxHeaderBytes = 64 * 1024) {
    // Errors are reported through the pending pass(); keep an emitter without listeners from throwing.
    this.inflate.on('error', () => undefined);
    this.deflate.on('error', () => undefined);
  }

  async decode(block: Buffer): Promise<SpdyHeaders> {
    return parseHeaders(await pass(this.inflate, block, this.maxHeaderBytes));
  }

  encode(headers: SpdyHeaders): Promise<Buffer> {
    return pass(this.deflate, serializeHeaders(headers), Number.MAX_SAFE_INTEGER);
  }

  close(): void {
    this.inflate.close();
    this.deflate.close();
  }
}

/** Builds a header map from a plain record (one value each). */
export function headersOf(record: Record<string, string>): SpdyHeaders {
  return new Map(Object.entries(record).map(([k, v]) => [k.toLowerCase(), [v]]));
}

/** First value of a header, or undefined. */
export function header(headers: SpdyHeaders, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0];
}
