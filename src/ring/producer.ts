import { Counter, MAX_MALFORMED_REASONS, RECORD_HEADER_BYTES, Slot, WRAP_MARK, recordSize, ringViews, type RingViews } from './layout';

/**
 * Wakes of the consumer are at least this far apart (ms). At 50,000 events/s paced in
 * 200 us bursts this makes one wake-up of the main thread per ~3 bursts instead of one per
 * burst, which halves its CPU there (bench/README.md); an event waits at most about 1 ms
 * longer, and not at all when traffic is light.
 */
export const NOTIFY_HOLD_MS = 0.5;

/**
 * The producing end of a ring: one per ingest thread (or the embedding thread for
 * `push()`). `offer` never blocks: when the ring is full the event is refused and
 * counted as ring_full, the same non-blocking contract upstream's fan-out keeps.
 */
export class RingProducer {
  private readonly ring: RingViews;
  private write: number;
  private lastNotifyMs = -Infinity;

  /**
   * `holdMs`: a waiting consumer is woken at most once per holdMs. Under sustained
   * traffic the records published in between are picked up by the next wake-up or by the
   * consumer's own short wait (RingConsumer.waitForData waits at most 1 ms while traffic
   * is recent), so one wake-up carries several bursts; when traffic is light every record
   * wakes the consumer at once. 0 wakes it for every record.
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
    if (Atomics.load(header, Slot.WAITING) !== 0) {
      const now = performance.now();
      if (now - this.lastNotifyMs >= this.holdMs) {
        this.lastNotifyMs = now;
        Atomics.store(header, Slot.WAITING, 0);
        Atomics.add(header, Slot.SIGNAL, 1);
        Atomics.notify(header, Slot.SIGNAL);
      }
    }
    return true;
  }

  /** Counts an event this producer rejected before it reached the ring, with its reason slot. */
  countMalformed(reasonIndex: number): void {
    Atomics.add(this.ring.counters, Counter.DROPPED_MALFORMED, 1n);
    if (reasonIndex >= 0 && reasonIndex < MAX_MALFORMED_REASONS) Atomics.add(this.ring.counters, Counter.MALFORMED_BY_REASON + reasonIndex, 1n);
  }

  /** Marks the source finished and wakes the consumer so it can drain and notice. */
  close(): void {
    Atomics.store(this.ring.header, Slot.CLOSED, 1);
    Atomics.add(this.ring.header, Slot.SIGNAL, 1);
    Atomics.notify(this.ring.header, Slot.SIGNAL);
  }
}
