/**
 * SharedArrayBuffer ring queue: the only thing that crosses from an ingest thread to
 * the main thread and the encoder workers. One ring per producer (single producer,
 * single consumer: the main thread claims ranges and encoder workers read them).
 *
 *   SAB: [ header (HEADER_BYTES) ][ data (capacity bytes, a power of two) ]
 *
 *   header as Int32Array (i32 slots)                 header as BigInt64Array (i64 slots, from byte 64)
 *   0 WRITE         bytes published (producer)       0 EVENTS_IN         events published
 *   1 READ          bytes released (consumer)        1 DROPPED_FULL      events refused: ring_full
 *   2 SIGNAL        data wake-up counter (producer)  2 DROPPED_MALFORMED events refused: malformed_input
 *   3 WAITING       consumer is parked (0/1)         3 BLOCKED_US        time the producer waited for room
 *   4 CLOSED        producer finished (0/1)          4 BLOCKS            how many times it waited
 *                                                    5 ROTATIONS         followed file replaced (jsonl)
 *                                                    6 CONNECTIONS       producer connections open now
 *   5 SPACE         room wake-up counter (consumer)  8.. MALFORMED_BY_REASON, one slot per reason
 *   6 SPACE_WAITING producer is parked (0/1)             in errors.ts `inputReasons` order
 *   7 SHORT_WAIT    the parked consumer wakes by itself within HELD_WAIT_MS (0/1)
 *   8 HEARTBEAT     beats of the producing thread (producer, Atomics.add)
 *
 * HEARTBEAT is how the main thread tells a live ingest thread from a wedged one: the
 * thread adds 1 every HEARTBEAT_INTERVAL_MS from a timer, and on every slice of a wait
 * for room, so a thread blocked by backpressure (legitimately) still beats, and one stuck
 * in a loop or a blocking call does not. Nobody waits on it.
 *
 * Every counter is written by the producer only (Atomics.add) and read by anyone, so
 * /stats is exact at any instant without messages between threads.
 *
 * Two wake-ups, one each way: a parked consumer (WAITING) is woken through SIGNAL when
 * records are published; a producer parked on a full ring (SPACE_WAITING, backpressure)
 * is woken through SPACE when the consumer releases bytes. Each side sets its flag, reads
 * the counter, re-checks the ring, then waits on the counter's value, so a wake-up that
 * lands between the check and the wait changes the value and the wait returns at once.
 *
 *   data: records, each 8-byte aligned, never split across the end:
 *   +----------+----------------+------------------------+---------+
 *   | u32 len  | f64 ingestedUs | msgpack payload (len)  | padding |
 *   +----------+----------------+------------------------+---------+
 *   len == WRAP_MARK means "skip to offset 0"; the rest of the lap is unused.
 *   The f64 sits at offset 4, so records are read with a DataView (no alignment need).
 *
 * WRITE and READ are free-running u32 byte counters that wrap at 2^32; capacity divides
 * 2^32, so `(WRITE - READ) >>> 0` is the bytes in use and `pos & (capacity - 1)` the offset.
 * Memory order: the producer writes a record's bytes, then Atomics.store(WRITE) (release);
 * the consumer Atomics.load(WRITE) (acquire) before reading them. The consumer releases
 * space with Atomics.store(READ) only after every reader of those bytes is done.
 */
import { inputReasons } from '../errors';

export const HEADER_BYTES = 256;
export const RECORD_HEADER_BYTES = 12;
export const RECORD_ALIGN = 8;
export const WRAP_MARK = 0xffffffff;

export const Slot = {
  WRITE: 0,
  READ: 1,
  SIGNAL: 2,
  WAITING: 3,
  CLOSED: 4,
  SPACE: 5,
  SPACE_WAITING: 6,
  SHORT_WAIT: 7,
  HEARTBEAT: 8,
} as const;

/** How often a producing thread beats (Slot.HEARTBEAT). */
export const HEARTBEAT_INTERVAL_MS = 200;

export const Counter = {
  EVENTS_IN: 0,
  DROPPED_FULL: 1,
  DROPPED_MALFORMED: 2,
  BLOCKED_US: 3,
  BLOCKS: 4,
  ROTATIONS: 5,
  CONNECTIONS: 6,
  MALFORMED_BY_REASON: 8,
} as const;

export const MAX_MALFORMED_REASONS = 16;

// Every input-error reason needs its counter slot, or it would be counted in the total only.
if (inputReasons.length > MAX_MALFORMED_REASONS) {
  throw new Error(`ring layout: ${inputReasons.length} input reasons (errors.ts) but ${MAX_MALFORMED_REASONS} counter slots`);
}

const COUNTER_BYTE_OFFSET = 64;

export interface RingViews {
  readonly sab: SharedArrayBuffer;
  readonly capacity: number;
  readonly mask: number;
  readonly header: Int32Array;
  readonly counters: BigInt64Array;
  readonly data: Uint8Array;
  readonly view: DataView;
}

/** Allocates a ring whose data area is `capacity` bytes (rounded up to a power of two, min 64 KiB). */
export function allocateRing(capacity: number): SharedArrayBuffer {
  let size = 1 << 16;
  while (size < capacity) size *= 2;
  if (size > 1 << 30) throw new RangeError(`ring capacity ${capacity} is above 1 GiB`);
  return new SharedArrayBuffer(HEADER_BYTES + size);
}

export function ringViews(sab: SharedArrayBuffer): RingViews {
  const capacity = sab.byteLength - HEADER_BYTES;
  return {
    sab,
    capacity,
    mask: capacity - 1,
    header: new Int32Array(sab, 0, 16),
    counters: new BigInt64Array(sab, COUNTER_BYTE_OFFSET, Counter.MALFORMED_BY_REASON + MAX_MALFORMED_REASONS),
    data: new Uint8Array(sab, HEADER_BYTES, capacity),
    view: new DataView(sab, HEADER_BYTES, capacity),
  };
}

/** Bytes a record of `payloadLength` occupies, header and padding included. */
export function recordSize(payloadLength: number): number {
  return (RECORD_HEADER_BYTES + payloadLength + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

/**
 * Length of the record at `offset` of the data area, or WRAP_MARK where the producer
 * wrapped: a tail too short for a length header counts as a wrap mark too.
 */
export function recordLength(view: DataView, offset: number, capacity: number): number {
  return capacity - offset >= 4 ? view.getUint32(offset, true) : WRAP_MARK;
}
