/**
 * What crosses between the main thread and the encoder workers. Defined once here and
 * imported by both sides (`encoder.worker.ts` and the main thread's `pump.ts` / `strategy.ts`).
 */
import type { EventContext } from '../event';

/** Fixed per-run settings, handed to every encoder worker as workerData. */
export interface EncoderSettings extends EventContext {
  /** Mark alerts that the user-space throttle applies to (config alertThrottling). */
  throttling: boolean;
  /** Also render upstream's logPath JSON line for every event. */
  logLines: boolean;
}

/** One task: the records of a claimed ring span, read in place from the shared memory. */
export interface EncodeTask {
  ring: SharedArrayBuffer;
  start: number;
  end: number;
  /**
   * Fill `attrs` (namespace, operation, type per message). Only server-side filters read
   * them, so without a filtered subscriber the encoders skip the work (about a tenth of it).
   */
  attrs: boolean;
  /** Output slot to write the framed bytes into (slabs.ts); absent or NO_SLAB: a buffer of the encoder's own. */
  slab?: number;
}

/**
 * One stream's share of a batch: gRPC-framed messages back to back in `bytes`
 * (5-byte prefix: compressed flag 0, u32 big-endian length; then the protobuf), so a
 * run of consecutive messages is one contiguous slice that every client can share.
 *
 *   bytes:  [0|len|Alert][0|len|Alert][0|len|Alert]...
 *   ends:   end offset of message i (message i starts at ends[i-1], or 0)
 *   attrs:  3 indexes per message into EncodedBatch.strings: namespace, operation, type
 */
export interface EncodedStream {
  count: number;
  bytes: Uint8Array;
  ends: Uint32Array;
  ingestedUs: Float64Array;
  attrs: Uint16Array;
  /**
   * Set when the bytes are in an output slab (slabs.ts): the slot and the offset in it.
   * From a worker `bytes` is then empty and the main thread makes it a view of the slot.
   */
  slab?: number;
  slabAt?: number;
}

export interface EncodedBatch {
  alerts: EncodedStream;
  logs: EncodedStream;
  /** Per alert: index into `strings` of its throttle bucket key, or -1 when not throttled. */
  throttleKeys: Int32Array;
  /** Distinct attribute values of this batch (server-side filters, throttle keys). */
  strings: string[];
  /** upstream logPath JSON lines, newline-terminated, in ring order ('' when disabled). */
  logLines: string;
  /** False when `attrs` were not filled (no filtered subscriber when the span was claimed). */
  attrsValid: boolean;
  /** Records that failed to decode here (should be 0: sources validate first). */
  failed: number;
  failure: string;
  /** Events dropped because their encoded message was over MAX_MESSAGE_BYTES (encoded_oversized). */
  oversized: number;
  /** Size of the largest of those, for the daemon's message. */
  oversizedBytes: number;
}

/**
 * Largest Alert/Log sent to a client, in bytes of protobuf: grpc-go's (karmor, the relay)
 * and grpc-js's default max receive message size. A larger one would end the client's
 * stream with RESOURCE_EXHAUSTED, so the encoder drops it (counted encoded_oversized).
 * An event's protobuf can be several times its msgpack (ATags from Tags, EventData from
 * Data), so no maxEventBytes alone can guarantee this.
 */
export const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

export const ATTR_NAMESPACE = 0;
export const ATTR_OPERATION = 1;
export const ATTR_TYPE = 2;
export const ATTRS_PER_EVENT = 3;
