/**
 * SPDY/3.1 framing shared by the provider's SPDY server and the agent's SPDY client: frames (encode, FrameReader),
 * header blocks (HeaderCodec: one zlib context per direction, primed with SPDY3_DICTIONARY). Exported from the
 * package as the `spdy` namespace, since names like `Frame` and `encode` mean other things at its top level.
 */
export * from './dictionary.js';
export * from './frames.js';
export * from './headers.js';
