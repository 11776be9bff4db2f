/**
 * The ingest frame: a 4-byte big-endian unsigned length N, then N bytes of a msgpack
 * map with upstream's log keys. FrameReader reassembles frames from socket chunks
 * without copying a frame that arrives whole.
 *
 *   +---------+------------------------------+
 *   | u32 BE N| msgpack map (N bytes)        |  repeated
 *   +---------+------------------------------+
 */
import { InputError } from '../errors';

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Reassembles frames from chunks. Invariant: `pending` holds the bytes of an incomplete
 * frame (or header), `pendingBytes` of them, and fewer than `need`, the bytes that
 * complete it; they are joined only once `need` is reached, so a frame arriving in many
 * small pieces is copied about once, not once per piece (1 MiB in 4-byte pieces: ~11 s).
 */
export class FrameReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private need = FRAME_HEADER_BYTES;

  constructor(private readonly maxFrameBytes: number) {}

  /**
   * Feeds a chunk; calls `onFrame` for each complete frame (a view valid only during
   * the call; empty for a length-0 frame, after which the framing is still intact).
   * Throws InputError when the stream cannot be framed any more (a length over the
   * limit): the peer is then disconnected, since nothing after a bad length can be
   * trusted. Frames before it have been handed to `onFrame`; nothing after it is kept.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    if (this.pendingBytes + chunk.length < this.need) {
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
      return;
    }
    let buf: Buffer;
    if (this.pendingBytes === 0) buf = chunk;
    else {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
    }
    this.pending = [];
    this.pendingBytes = 0;
    this.need = FRAME_HEADER_BYTES;
    let offset = 0;
    while (buf.length - offset >= FRAME_HEADER_BYTES) {
      const n = buf.readUInt32BE(offset);
      if (n > this.maxFrameBytes) {
        throw new InputError('ERR_INPUT_OVERSIZED', `frame of ${n} bytes is over the limit of ${this.maxFrameBytes} (maxEventBytes)`);
      }
      if (buf.length - offset - FRAME_HEADER_BYTES < n) {
        this.need = FRAME_HEADER_BYTES + n;
        break;
      }
      onFrame(buf.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + n));
      offset += FRAME_HEADER_BYTES + n;
    }
    if (offset < buf.length) {
      const rest = buf.subarray(offset);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get buffered(): number {
    return this.pendingBytes;
  }

  /** Forgets the incomplete frame, if any (the connection is ending). */
  clear(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.need = FRAME_HEADER_BYTES;
  }
}
