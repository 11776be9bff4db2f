/**
 * gRPC's length-prefixed message framing, in one place: the encoders write frame
 * headers in place (encode/encodeSpan.ts), the fan-out frames the few messages made on
 * the main thread (daemon Messages, throttle notices), and the server's fallback write
 * path splits runs of frames back into messages (server/framedWrite.ts).
 *
 *   frame:  [flag u8 = 0 (not compressed)][length u32 big-endian][protobuf message]
 */

/** Bytes of gRPC's frame header. */
export const GRPC_FRAME_HEADER = 5;

/** Writes a gRPC frame header for a `length`-byte message at `offset`. */
export function writeFrameHeader(into: Uint8Array, offset: number, length: number): void {
  into[offset] = 0;
  into[offset + 1] = length >>> 24;
  into[offset + 2] = (length >>> 16) & 0xff;
  into[offset + 3] = (length >>> 8) & 0xff;
  into[offset + 4] = length & 0xff;
}

/** Frames one encoded message into a fresh buffer (for messages made on the main thread). */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(message.length + GRPC_FRAME_HEADER);
  writeFrameHeader(out, 0, message.length);
  out.set(message, GRPC_FRAME_HEADER);
  return out;
}

/** Splits a run of frames into the message bodies (views, no copy). */
export function* splitFrames(bytes: Uint8Array): Generator<Uint8Array> {
  let offset = 0;
  while (offset + GRPC_FRAME_HEADER <= bytes.length) {
    const len = ((bytes[offset + 1] << 24) | (bytes[offset + 2] << 16) | (bytes[offset + 3] << 8) | bytes[offset + 4]) >>> 0;
    yield bytes.subarray(offset + GRPC_FRAME_HEADER, offset + GRPC_FRAME_HEADER + len);
    offset += GRPC_FRAME_HEADER + len;
  }
}
