/**
 * A client's bounded queue of encoded messages, counted in events. The fan-out offers
 * runs of consecutive messages; what does not fit is dropped for this client only and
 * counted as client_queue_full (upstream's non-blocking send, with the count upstream
 * never keeps). The queue never grows past `capacity` events.
 *
 *   entries (FIFO):  [ run: bytes=[0|len|msg][0|len|msg]..., times[i], count ] ...
 *   depth = sum(count) <= capacity
 *
 * Invariant: each entry's `bytes` holds exactly `count` gRPC-framed messages and
 * `times` their ingest times. Entries usually view a shared batch buffer (zero copy);
 * a run much smaller than its batch is copied out so a slow client never pins whole
 * batches in memory for the sake of a few events.
 *
 * An entry viewing an output slab (encode/slabs.ts) holds one reference to it; whoever
 * takes the entry (the subscriber's pump) takes over that reference, and discard()
 * gives back those of the entries it drops.
 */
import type { EncodedStream } from '../encode/batch';
import { NO_SLAB, noSlabs, type SlabRefs } from '../encode/slabs';

export interface QueueEntry {
  bytes: Uint8Array;
  times: Float64Array;
  count: number;
  /** Output slab `bytes` views (one reference held by this entry), or NO_SLAB. */
  slab: number;
}

export interface DropCounts {
  client_queue_full: number;
  throttled: number;
  filtered: number;
  client_closed: number;
  /** Still queued, or written but unconfirmed, when the shutdown grace period ran out. */
  shutdown_grace_expired: number;
}

export type DropReason = keyof DropCounts;

export function emptyDrops(): DropCounts {
  return { client_queue_full: 0, throttled: 0, filtered: 0, client_closed: 0, shutdown_grace_expired: 0 };
}

/** A run is copied out of its batch when it is smaller than 1/COPY_OUT_RATIO of the batch. */
const COPY_OUT_RATIO = 4;

export class ClientQueue {
  private entries: QueueEntry[] = [];
  private head = 0;
  private depthEvents = 0;
  readonly dropped: DropCounts = emptyDrops();
  accepted = 0;

  constructor(
    readonly capacity: number,
    readonly slabs: SlabRefs = noSlabs,
  ) {}

  get depth(): number {
    return this.depthEvents;
  }

  /** Offers messages [from, to) of a stream; returns how many were queued. */
  offerRun(stream: EncodedStream, from: number, to: number): number {
    const free = this.capacity - this.depthEvents;
    const n = Math.min(to - from, free);
    if (n < to - from) this.dropped.client_queue_full += to - from - n;
    if (n <= 0) return 0;
    const end = from + n;
    const startByte = from === 0 ? 0 : stream.ends[from - 1];
    const endByte = stream.ends[end - 1];
    let bytes = stream.bytes.subarray(startByte, endByte);
    let times = stream.ingestedUs.subarray(from, end);
    let slab = stream.slab ?? NO_SLAB;
    if (n * COPY_OUT_RATIO < stream.count) {
      // Copies, whatever the view's class (Buffer#slice would not copy).
      bytes = new Uint8Array(bytes);
      times = new Float64Array(times);
      slab = NO_SLAB;
    }
    this.slabs.retain(slab);
    this.push({ bytes, times, count: n, slab });
    return n;
  }

  /** Offers one message that is not part of a batch (a notice, a daemon Message). */
  offerOne(framed: Uint8Array, ingestedUs: number): boolean {
    if (this.depthEvents >= this.capacity) {
      this.dropped.client_queue_full++;
      return false;
    }
    this.push({ bytes: framed, times: Float64Array.of(ingestedUs), count: 1, slab: NO_SLAB });
    return true;
  }

  private push(entry: QueueEntry): void {
    this.entries.push(entry);
    this.depthEvents += entry.count;
    this.accepted += entry.count;
  }

  /** Removes up to `maxBytes` (at least one entry) from the head; the caller owns their slab references. */
  take(maxBytes: number, into: QueueEntry[]): number {
    let bytes = 0;
    let events = 0;
    while (this.head < this.entries.length) {
      const e = this.entries[this.head];
      if (events > 0 && bytes + e.bytes.length > maxBytes) break;
      this.entries[this.head] = undefined as unknown as QueueEntry;
      this.head++;
      into.push(e);
      bytes += e.bytes.length;
      events += e.count;
    }
    // Compact lazily: shifting an array per take would be O(n) each time.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    this.depthEvents -= events;
    return events;
  }

  /**
   * Removes the head message alone, splitting its run: the shutdown's one-event writes
   * (subscriber.ts). The caller owns one slab reference for it; the rest of the run keeps its own.
   */
  takeOne(into: QueueEntry[]): number {
    if (this.head >= this.entries.length) return 0;
    const e = this.entries[this.head];
    if (e.count === 1) return this.take(0, into);
    const b = e.bytes;
    // The gRPC prefix: a flag byte, then the message length (u32 big-endian).
    const end = 5 + (((b[1] << 24) | (b[2] << 16) | (b[3] << 8) | b[4]) >>> 0);
    this.slabs.retain(e.slab);
    into.push({ bytes: b.subarray(0, end), times: e.times.subarray(0, 1), count: 1, slab: e.slab });
    this.entries[this.head] = { bytes: b.subarray(end), times: e.times.subarray(1), count: e.count - 1, slab: e.slab };
    this.depthEvents--;
    return 1;
  }

  /** Empties the queue (client gone, or the shutdown grace period over); the events are counted under `reason`. */
  discard(reason: 'client_closed' | 'shutdown_grace_expired' = 'client_closed'): number {
    const n = this.depthEvents;
    this.dropped[reason] += n;
    for (let i = this.head; i < this.entries.length; i++) this.slabs.release(this.entries[i].slab);
    this.entries = [];
    this.head = 0;
    this.depthEvents = 0;
    return n;
  }
}
