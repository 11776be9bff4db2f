/**
 * Writes runs of pre-framed gRPC messages through @grpc/grpc-js in one write each.
 *
 * grpc-js frames whatever a call's serialise step returns with a 5-byte prefix, once
 * per `write()`, and its per-write path costs ~10 us on this class of machine, which
 * caps one-message-per-write below the upstream Go design. Its server call object
 * (BaseServerInterceptingCall, reached as `call.call`) does the framing in a method
 * `serializeMessage`. For calls whose chunks are already framed, this module wraps
 * that method on the call instance so a FramedChunk passes through unchanged; every
 * other value still takes grpc-js's own path. Keepalive, flow control, status and
 * metadata handling are untouched.
 *
 * This relies on grpc-js internals (pinned to 1.14.7 in package.json). If the shape
 * is not what is expected, `framedSink` falls back to one `write()` per message,
 * which is always correct; test/server-framed-write.test.ts fails loudly if the
 * batched mode stops being available.
 */
import type { ServerWritableStream } from '@grpc/grpc-js';
import type { FramedSink } from '../fanout';
import { splitFrames } from '../wire/framing';

export type WriteMode = 'batched' | 'per-message';

/** A run of complete gRPC frames, to be written as is. */
export class FramedChunk {
  constructor(readonly bytes: Uint8Array) {}
}

interface InternalCall {
  serializeMessage?: (value: unknown) => Buffer;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Tries to enable batched writes on one call; false when grpc-js's internals differ. */
export function enableBatchedWrites(call: ServerWritableStream<unknown, unknown>): boolean {
  const internal = (call as unknown as { call?: InternalCall }).call;
  if (internal === undefined || internal === null || typeof internal.serializeMessage !== 'function') return false;
  if (internal.constructor?.name !== 'BaseServerInterceptingCall') return false;
  const original = internal.serializeMessage;
  internal.serializeMessage = function (this: unknown, value: unknown): Buffer {
    return value instanceof FramedChunk ? asBuffer(value.bytes) : original.call(this, value);
  };
  return true;
}

/**
 * A sink for one Watch* call. `preferred` = 'per-message' forces the fallback
 * (benchmarks and tests compare both). The call's response serialiser must be the
 * identity on Buffers, as logServiceDefinition() in src/server/index.ts defines it.
 */
export function framedSink(call: ServerWritableStream<unknown, unknown>, preferred: WriteMode = 'batched'): FramedSink & { mode: WriteMode } {
  if (preferred === 'batched' && enableBatchedWrites(call)) {
    return {
      mode: 'batched',
      write(chunk, done) {
        call.write(new FramedChunk(chunk), done);
      },
    };
  }
  return {
    mode: 'per-message',
    write(chunk, done) {
      let last: Uint8Array | undefined;
      for (const body of splitFrames(chunk)) {
        if (last !== undefined) call.write(asBuffer(last));
        last = body;
      }
      if (last === undefined) done(null);
      else call.write(asBuffer(last), done);
    },
  };
}
