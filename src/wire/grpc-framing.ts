/**
 * Splits the bytes of a gRPC response stream into messages, in place.
 *
 *   | flag: 1 byte | length: 4 bytes BE | message: length bytes | flag | length | ...
 *
 * HTTP/2 DATA chunks cut this stream anywhere: one chunk usually holds dozens of
 * messages and the last one is often cut off. A message that lies wholly in one chunk
 * is handed over as (chunk, start, end) with no copy; only a message cut by a chunk
 * boundary is copied into one buffer.
 *
 * The visitor may stop the split after any message (it returns false): the rest stays
 * here until `resume` is called. That is how a slow or stalled load client stops
 * reading at an exact event, not at a chunk boundary.
 */
import { ArmorfeedError } from '../errors';
import { GRPC_FRAME_HEADER } from './framing';

/** Return false to stop after this message; the split goes on at the next `resume`. */
export type MessageVisitor = (buf: Buffer, start: number, end: number) => boolean;

/** A frame this reader cannot take: compressed (we never ask for compression) or over the size limit. */
export class GrpcFramingError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_GRPC_FRAMING', message);
  }
}

const prefixBytes = GRPC_FRAME_HEADER;
/** grpc-go's and grpc-js's default receive limit. */
export const maxMessageBytes = 4 << 20;

export class GrpcMessageSplitter {
  /** Bytes not yet visited: `rest[restStart..]`, or null. */
  private rest: Buffer | null = null;
  private restStart = 0;
  private stopped = false;

  constructor(private readonly visit: MessageVisitor) {}

  /** Whether the visitor stopped the split (call `resume` to go on). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** Bytes received but not yet handed to the visitor (a partial message, or what a stop left). */
  get pendingBytes(): number {
    return this.rest === null ? 0 : this.rest.length - this.restStart;
  }

  /** Takes the next chunk of the stream. Returns false if the visitor stopped the split (now or before). */
  push(chunk: Buffer): boolean {
    if (this.rest === null) {
      this.rest = chunk;
      this.restStart = 0;
      return this.stopped ? false : this.resume();
    }
    const tail = this.rest.subarray(this.restStart);
    // Not stopped, what is left is less than one message: the chunk's first bytes complete it.
    const take = this.stopped ? -1 : bytesToComplete(tail, chunk);
    this.restStart = 0;
    if (take < 0) {
      this.rest = Buffer.concat([tail, chunk]);
      return this.stopped ? false : this.resume();
    }
    // Only the message the boundary cut is copied; the rest of the chunk is read in place.
    this.rest = Buffer.concat([tail, chunk.subarray(0, take)]);
    const goOn = this.resume(); // visits exactly that message, and leaves nothing of it
    this.rest = take < chunk.length ? chunk : null;
    this.restStart = take;
    return goOn ? this.resume() : false;
  }

  /** Goes on after a stop. Returns false if the visitor stopped it again. */
  resume(): boolean {
    this.stopped = false;
    const buf = this.rest;
    if (buf === null) return true;
    let pos = this.restStart;
    const end = buf.length;
    while (end - pos >= prefixBytes) {
      if (buf[pos] !== 0) throw new GrpcFramingError(`compressed message (flag ${buf[pos]}): this reader asks for none and accepts none`);
      const len = buf.readUInt32BE(pos + 1);
      if (len > maxMessageBytes) throw new GrpcFramingError(`message of ${len} bytes is over the ${maxMessageBytes}-byte limit`);
      const start = pos + prefixBytes;
      if (end - start < len) break;
      pos = start + len;
      if (!this.visit(buf, start, pos)) {
        this.stopped = true;
        break;
      }
    }
    if (pos >= end) this.rest = null;
    else this.restStart = pos;
    return !this.stopped;
  }
}

/** One message with its 5-byte prefix, as a request body (wire/framing.ts). */
export { frameMessage } from './framing';

/**
 * How many of `chunk`'s first bytes complete the message `tail` begins, or -1 when the
 * chunk does not (or its prefix is not whole yet, or its length is over the limit:
 * `resume` then reads and rejects it).
 */
function bytesToComplete(tail: Buffer, chunk: Buffer): number {
  if (tail.length + chunk.length < prefixBytes) return -1;
  const at = (i: number): number => (i < tail.length ? tail[i] : chunk[i - tail.length]);
  const len = ((at(1) << 24) >>> 0) + (at(2) << 16) + (at(3) << 8) + at(4);
  if (len > maxMessageBytes) return -1;
  const need = prefixBytes + len - tail.length;
  return need <= chunk.length ? need : -1;
}
