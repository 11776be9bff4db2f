import { Counter, MAX_MALFORMED_REASONS, RECORD_HEADER_BYTES, Slot, WRAP_MARK, recordLength, recordSize, ringViews, type RingViews } from './layout';

export interface RingStats {
  capacity: number;
  usedBytes: number;
  eventsIn: number;
  droppedFull: number;
  droppedMalformed: number;
  /** Backpressure: how often and how long (us) the producer waited for room. */
  blocks: number;
  blockedUs: number;
  /** A followed file that was replaced (renamed away, or truncated) and read again from its start. */
  rotations: number;
  /** Producer connections open now (socket and TCP sources). */
  connections: number;
  /** Per reason slot, in errors.ts `inputReasons` order. */
  malformedByReason: number[];
  closed: boolean;
}

/** Longest wait while traffic is recent: longer than the producer's hold (NOTIFY_HOLD_MS). */
export const HELD_WAIT_MS = 1;
/** How long after the last claimed record traffic counts as recent. */
const RECENT_TRAFFIC_MS = 1000;

/** A claimed span of records: [start, end) in ring positions, `events` records. */
export interface RingSpan {
  start: number;
  end: number;
  events: number;
}

/**
 * The consuming end, on the main thread. It claims spans of whole records for the
 * encoders (`claim`), and gives bytes back (`release`) only once the encoder that read
 * them has finished, strictly in order. Between claim and release the bytes are owned
 * by exactly one encoder task, so encoders never copy them first.
 */
export class RingConsumer {
  private readonly ring: RingViews;
  private claimed: number;
  private lastDataMs = -Infinity;

  constructor(sab: SharedArrayBuffer) {
    this.ring = ringViews(sab);
    this.claimed = Atomics.load(this.ring.header, Slot.READ) >>> 0;
  }

  get sab(): SharedArrayBuffer {
    return this.ring.sab;
  }

  /** True when records are published but not yet claimed. */
  hasUnclaimed(): boolean {
    return (Atomics.load(this.ring.header, Slot.WRITE) >>> 0) !== this.claimed;
  }

  isClosed(): boolean {
    return Atomics.load(this.ring.header, Slot.CLOSED) !== 0;
  }

  /** True when nothing is published, claimed or in flight. */
  isDrained(): boolean {
    const h = this.ring.header;
    return (Atomics.load(h, Slot.WRITE) >>> 0) === (Atomics.load(h, Slot.READ) >>> 0);
  }

  /** Claims up to `maxEvents` whole records (and at most `maxBytes`, but at least one). */
  claim(maxEvents: number, maxBytes: number): RingSpan | null {
    const { header, mask, view, capacity } = this.ring;
    const write = Atomics.load(header, Slot.WRITE) >>> 0;
    const start = this.claimed;
    let pos = start;
    let events = 0;
    // Walking the 4-byte length headers costs a few ns per record; it keeps spans on
    // record boundaries without the producer having to publish an index.
    while (pos !== write && events < maxEvents && (pos - start) >>> 0 < maxBytes) {
      const offset = pos & mask;
      const len = recordLength(view, offset, capacity);
      if (len === WRAP_MARK) {
        pos = (pos + capacity - offset) >>> 0;
        continue;
      }
      pos = (pos + recordSize(len)) >>> 0;
      events++;
    }
    if (events === 0) {
      this.claimed = pos;
      return null;
    }
    this.claimed = pos;
    this.lastDataMs = performance.now();
    return { start, end: pos, events };
  }

  /** Returns the bytes of every span up to `end` to the producer, waking it if it waits for room. */
  release(end: number): void {
    const h = this.ring.header;
    Atomics.store(h, Slot.READ, end | 0);
    if (Atomics.load(h, Slot.SPACE_WAITING) !== 0) {
      Atomics.store(h, Slot.SPACE_WAITING, 0);
      Atomics.add(h, Slot.SPACE, 1);
      Atomics.notify(h, Slot.SPACE);
    }
  }

  /**
   * Resolves when the producer publishes more or closes, or after `timeoutMs`. Uses
   * Atomics.waitAsync, so the main thread is woken by the producer's notify instead of
   * polling a timer. Within a second of the last claimed record the wait is at most
   * HELD_WAIT_MS: the producer wakes a consumer at most once per hold (producer.ts), and
   * this short wait picks up what it held back.
   */
  waitForData(timeoutMs: number): Promise<void> {
    if (performance.now() - this.lastDataMs < RECENT_TRAFFIC_MS) timeoutMs = Math.min(timeoutMs, HELD_WAIT_MS);
    const h = this.ring.header;
    // The producer may hold back a wake-up only while this wait ends by itself soon.
    Atomics.store(h, Slot.SHORT_WAIT, timeoutMs <= HELD_WAIT_MS ? 1 : 0);
    Atomics.store(h, Slot.WAITING, 1);
    const signal = Atomics.load(h, Slot.SIGNAL);
    if (this.hasUnclaimed() || this.isClosed()) {
      Atomics.store(h, Slot.WAITING, 0);
      return Promise.resolve();
    }
    const res = Atomics.waitAsync(h, Slot.SIGNAL, signal, timeoutMs);
    if (!res.async) return Promise.resolve();
    return res.value.then(() => undefined);
  }

  /** The producing thread's heartbeat (Slot.HEARTBEAT): unchanged over time means it no longer runs. */
  heartbeat(): number {
    return Atomics.load(this.ring.header, Slot.HEARTBEAT);
  }

  /**
   * The producing thread is gone (it died, or was terminated as wedged) and a new one
   * will take over this ring. What it published stays and is consumed as usual; a record
   * it had begun but not published (WRITE not yet advanced) is simply overwritten. Its
   * connections closed with it, and it can no longer be parked waiting for room.
   */
  producerGone(): void {
    const { header, counters } = this.ring;
    Atomics.store(counters, Counter.CONNECTIONS, 0n);
    Atomics.store(header, Slot.SPACE_WAITING, 0);
  }

  stats(): RingStats {
    const { header, counters, capacity } = this.ring;
    const write = Atomics.load(header, Slot.WRITE) >>> 0;
    const read = Atomics.load(header, Slot.READ) >>> 0;
    return {
      capacity,
      usedBytes: (write - read) >>> 0,
      eventsIn: Number(Atomics.load(counters, Counter.EVENTS_IN)),
      droppedFull: Number(Atomics.load(counters, Counter.DROPPED_FULL)),
      droppedMalformed: Number(Atomics.load(counters, Counter.DROPPED_MALFORMED)),
      blocks: Number(Atomics.load(counters, Counter.BLOCKS)),
      blockedUs: Number(Atomics.load(counters, Counter.BLOCKED_US)),
      rotations: Number(Atomics.load(counters, Counter.ROTATIONS)),
      connections: Number(Atomics.load(counters, Counter.CONNECTIONS)),
      malformedByReason: Array.from({ length: MAX_MALFORMED_REASONS }, (_, i) => Number(Atomics.load(counters, Counter.MALFORMED_BY_REASON + i))),
      closed: Atomics.load(header, Slot.CLOSED) !== 0,
    };
  }
}

/**
 * Reads the records of a claimed span, in order, from any thread holding the SAB
 * (the encoder workers). Calls `visit(payload, ingestedUs)` with a view into the
 * shared bytes: valid only until the span is released, so visitors must not keep it.
 */
export function forEachRecord(
  sab: SharedArrayBuffer,
  span: { start: number; end: number },
  visit: (payload: Uint8Array, ingestedUs: number) => void,
): void {
  const { mask, view, data, capacity } = ringViews(sab);
  let pos = span.start >>> 0;
  const end = span.end >>> 0;
  while (pos !== end) {
    const offset = pos & mask;
    const len = recordLength(view, offset, capacity);
    if (len === WRAP_MARK) {
      pos = (pos + capacity - offset) >>> 0;
      continue;
    }
    const ingestedUs = view.getFloat64(offset + 4, true);
    visit(data.subarray(offset + RECORD_HEADER_BYTES, offset + RECORD_HEADER_BYTES + len), ingestedUs);
    pos = (pos + recordSize(len)) >>> 0;
  }
}
