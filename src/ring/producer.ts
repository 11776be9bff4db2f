import { Counter, MAX_MALFORMED_REASONS, RECORD_HEADER_BYTES, Slot, WRAP_MARK, recordSize, ringViews, type RingViews } from './layout';

/**
 * Under sustained traffic, wakes of the consumer are on average at least this far apart
 * (ms). At 50,000 events/s this makes one wake-up of the main thread per ~25 events
 * instead of one per event, which halves its CPU there (bench/README.md); a held event
 * waits at most about 1 ms longer (the consumer's own short wait picks it up).
 */
export const NOTIFY_HOLD_MS = 0.5;
/**
 * Wake-ups allowed back to back before the hold applies. Light traffic never meets the
 * hold: at 1,000 events/s two events 50 us apart both wake the consumer at once, where a
 * plain "once per hold" rule made the second wait ~1 ms (p99 1.2 ms on the socket path).
 */
export const NOTIFY_BURST = 4;
/** Longest single wait for room; between waits the producer asks whether to give up. */
const SPACE_WAIT_SLICE_MS = 20;

/**
 * The producing end of a ring: one per ingest thread (or the embedding thread for
 * `push()`). `offer` never blocks: when the ring is full the event is refused and
 * counted as ring_full. `offerWaiting` is the backpressure variant: the calling thread
 * waits for room instead (`ingestWhenFull: block`, the default for sockets and files).
 */
export class RingProducer {
  private readonly ring: RingViews;
  private write: number;
  /** Token bucket of wake-ups: refills at one per holdMs, holds at most NOTIFY_BURST. */
  private notifyTokens = NOTIFY_BURST;
  private lastRefillMs = 0;

  /**
   * `holdMs`: under sustained traffic a waiting consumer is woken about once per holdMs
   * (after a burst of NOTIFY_BURST wake-ups). The records published in between are picked
   * up by the next wake-up or by the consumer's own short wait (RingConsumer.waitForData
   * waits at most 1 ms while traffic is recent), so one wake-up carries many records; when
   * traffic is light every record wakes the consumer at once. 0 wakes it for every record.
   */
  constructor(
    sab: SharedArrayBuffer,
    private readonly holdMs = NOTIFY_HOLD_MS,
  ) {
    this.ring = ringViews(sab);
    this.write = Atomics.load(this.ring.header, Slot.WRITE) >>> 0;
  }

  /**
   * Copies one encoded event into the ring; false when it does not fit, which counts as
   * a ring_full drop unless the caller will retry (`retrying`: the unpaced generator).
   */
  offer(payload: Uint8Array, ingestedUs: number, retrying = false): boolean {
    const { header, capacity, mask, data, view, counters } = this.ring;
    const size = recordSize(payload.length);
    const read = Atomics.load(header, Slot.READ) >>> 0;
    const used = (this.write - read) >>> 0;
    let offset = this.write & mask;
    const tail = capacity - offset;
    // A record never wraps: if it does not fit before the end, the tail is skipped.
    const need = tail < size ? tail + size : size;
    if (size > capacity || used + need > capacity) {
      if (!retrying) Atomics.add(counters, Counter.DROPPED_FULL, 1n);
      return false;
    }
    if (tail < size) {
      if (tail >= 4) view.setUint32(offset, WRAP_MARK, true);
      this.write = (this.write + tail) >>> 0;
      offset = 0;
    }
    view.setUint32(offset, payload.length, true);
    view.setFloat64(offset + 4, ingestedUs, true);
    data.set(payload, offset + RECORD_HEADER_BYTES);
    this.write = (this.write + size) >>> 0;
    Atomics.store(header, Slot.WRITE, this.write | 0);
    Atomics.add(counters, Counter.EVENTS_IN, 1n);
    // A wake-up is held back only under sustained traffic (no token) and only while the
    // consumer's own wait is short; a consumer in a long wait is always woken.
    if (Atomics.load(header, Slot.WAITING) !== 0 && (this.takeNotifyToken() || Atomics.load(header, Slot.SHORT_WAIT) === 0)) this.wakeConsumer();
    return true;
  }

  private takeNotifyToken(): boolean {
    if (this.holdMs <= 0) return true;
    const now = performance.now();
    this.notifyTokens = Math.min(NOTIFY_BURST, this.notifyTokens + (now - this.lastRefillMs) / this.holdMs);
    this.lastRefillMs = now;
    if (this.notifyTokens < 1) return false;
    this.notifyTokens -= 1;
    return true;
  }

  private wakeConsumer(): void {
    const { header } = this.ring;
    Atomics.store(header, Slot.WAITING, 0);
    Atomics.add(header, Slot.SIGNAL, 1);
    Atomics.notify(header, Slot.SIGNAL);
  }

  /**
   * Backpressure: like `offer`, but when the ring is full this thread waits until the
   * consumer releases room. Only for a thread whose whole job is to feed this ring (an
   * ingest thread): while it waits it reads nothing, so the kernel's socket buffer fills
   * and the producer's own writes wait in turn, which is the point. A blocking wait
   * (Atomics.wait) rather than an event-loop round trip: the thread resumes the moment the
   * consumer frees room, and nothing else on it can run usefully meanwhile.
   *
   * `giveUp` is asked between waits of at most SPACE_WAIT_SLICE_MS; when it says so, the
   * event is refused and counted as ring_full. An event larger than the ring is refused at
   * once. Time spent waiting is counted (BLOCKED_US, BLOCKS) for /stats.
   */
  offerWaiting(payload: Uint8Array, ingestedUs: number, giveUp: () => boolean): boolean {
    if (this.offer(payload, ingestedUs, true)) return true;
    const { header, counters, capacity } = this.ring;
    if (recordSize(payload.length) > capacity) {
      Atomics.add(counters, Counter.DROPPED_FULL, 1n);
      return false;
    }
    const started = performance.now();
    // Counted when the wait starts, so /stats shows a source that is blocked right now.
    Atomics.add(counters, Counter.BLOCKS, 1n);
    let queued = false;
    for (;;) {
      Atomics.store(header, Slot.SPACE_WAITING, 1);
      const space = Atomics.load(header, Slot.SPACE);
      if (this.offer(payload, ingestedUs, true)) {
        queued = true;
        break;
      }
      // The ring is full of records the consumer may not know about yet (held wake-up).
      if (Atomics.load(header, Slot.WAITING) !== 0) this.wakeConsumer();
      if (giveUp()) break;
      // Waiting for room is no wedge: the thread's timer cannot beat while it blocks here.
      this.beat();
      Atomics.wait(header, Slot.SPACE, space, SPACE_WAIT_SLICE_MS);
    }
    Atomics.store(header, Slot.SPACE_WAITING, 0);
    Atomics.add(counters, Counter.BLOCKED_US, BigInt(Math.round((performance.now() - started) * 1000)));
    if (!queued) Atomics.add(counters, Counter.DROPPED_FULL, 1n);
    return queued;
  }

  /** Counts `events` (1 unless told) this producer rejected before they reached the ring, with their reason slot. */
  countMalformed(reasonIndex: number, events = 1): void {
    const n = BigInt(events);
    Atomics.add(this.ring.counters, Counter.DROPPED_MALFORMED, n);
    if (reasonIndex >= 0 && reasonIndex < MAX_MALFORMED_REASONS) Atomics.add(this.ring.counters, Counter.MALFORMED_BY_REASON + reasonIndex, n);
  }

  /** Counts a producer connection opening (+1) or closing (-1). */
  countConnection(delta: 1 | -1): void {
    Atomics.add(this.ring.counters, Counter.CONNECTIONS, BigInt(delta));
  }

  /** Tells the main thread this thread still runs (Slot.HEARTBEAT). */
  beat(): void {
    Atomics.add(this.ring.header, Slot.HEARTBEAT, 1);
  }

  /** Counts a followed file that was replaced and is read again from its start. */
  countRotation(): void {
    Atomics.add(this.ring.counters, Counter.ROTATIONS, 1n);
  }

  /** Marks the source finished and wakes the consumer so it can drain and notice. */
  close(): void {
    Atomics.store(this.ring.header, Slot.CLOSED, 1);
    Atomics.add(this.ring.header, Slot.SIGNAL, 1);
    Atomics.notify(this.ring.header, Slot.SIGNAL);
  }
}
