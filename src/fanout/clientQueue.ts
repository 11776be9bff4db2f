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
 * Counters live here, on the queue they describe (nats.js QueuedIterator style). Every
 * event the fan-out offers this client is counted once, in exactly one outcome:
 *
 *   received = filtered + throttled + dropped client_queue_full + queued
 *   queued   = written + depth + (closed + grace expired) while queued
 *   written  = delivered + in flight + (closed + grace expired) in flight
 *
 * filtered and throttled are intentional (decided before the queue, which those events
 * never reach); client_queue_full, client_closed and shutdown_grace_expired are losses.
 *
 * Output slab references (encode/slabs.ts) on the fan-out side are all taken and given
 * back here: an entry viewing a slab holds one; takeWrite() hands the references of
 * what it takes to the Write, which gives them back when gRPC confirms it
 * (settleWrite) or, for a client gone mid-write, after a grace period (abandonWrite);
 * discard() gives back those of the entries it drops.
 */
import type { EncodedStream } from '../encode';
import { NO_SLAB, noSlabs, UNCONFIRMED_WRITE_GRACE_MS, type SlabRefs } from '../encode';
import { SlowNotifier } from './slowNotifier';

export interface QueueEntry {
  bytes: Uint8Array;
  times: Float64Array;
  count: number;
  /** Output slab `bytes` views (one reference held by this entry), or NO_SLAB. */
  slab: number;
}

/** One chunk handed to the sink: its bytes, and the output slab they view until gRPC is done with them. */
export interface Write {
  readonly bytes: Uint8Array;
  readonly events: number;
  readonly slab: number;
  settled: boolean;
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

/** Why events already queued or written are lost. */
export type LossReason = 'client_closed' | 'shutdown_grace_expired';


/** A run is copied out of its batch when it is smaller than 1/COPY_OUT_RATIO of the batch. */
const COPY_OUT_RATIO = 4;

export class ClientQueue {
  private entries: QueueEntry[] = [];
  private head = 0;
  private depthEvents = 0;
  /** Events offered to this client, whatever became of them. */
  received = 0;
  /** Not for this client: its server-side filter refused them (never queued). */
  filtered = 0;
  /** Throttled alerts (never queued). */
  throttled = 0;
  /** Did not fit: client_queue_full. */
  queueFull = 0;
  /** Put in the queue. */
  queued = 0;
  /** Taken from the queue and handed to gRPC. */
  written = 0;
  /** Writes gRPC confirmed. */
  delivered = 0;
  /** Lost because the client went away: still queued, or written and never confirmed. */
  closed = 0;
  /** Lost because the shutdown grace period ran out: still queued, or written and never confirmed. */
  graceExpired = 0;
  /** Signals the first overflow of a run of them (the slow-client warning). */
  readonly slow: SlowNotifier;

  constructor(
    readonly capacity: number,
    private readonly slabs: SlabRefs = noSlabs,
  ) {
    this.slow = new SlowNotifier(Math.max(1, Math.floor(capacity / 2)));
  }

  get depth(): number {
    return this.depthEvents;
  }

  /** The drops of this client by reason, as stats and metrics show them. */
  get dropped(): DropCounts {
    return { client_queue_full: this.queueFull, throttled: this.throttled, filtered: this.filtered, client_closed: this.closed, shutdown_grace_expired: this.graceExpired };
  }

  /** Events the fan-out decided this client does not get (never queued). */
  countFiltered(n: number): void {
    this.received += n;
    this.filtered += n;
  }

  countThrottled(n: number): void {
    this.received += n;
    this.throttled += n;
  }

  private overflow(n: number): void {
    this.queueFull += n;
    this.slow.overflowed();
  }

  /** Offers messages [from, to) of a stream; returns how many were queued. */
  offerRun(stream: EncodedStream, from: number, to: number): number {
    this.received += to - from;
    const free = this.capacity - this.depthEvents;
    const n = Math.min(to - from, free);
    if (n < to - from) this.overflow(to - from - n);
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
    this.received++;
    if (this.depthEvents >= this.capacity) {
      this.overflow(1);
      return false;
    }
    this.push({ bytes: framed, times: Float64Array.of(ingestedUs), count: 1, slab: NO_SLAB });
    return true;
  }

  private push(entry: QueueEntry): void {
    this.entries.push(entry);
    this.depthEvents += entry.count;
    this.queued += entry.count;
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
    this.slow.drainedTo(this.depthEvents);
    return events;
  }

  /**
   * Takes up to `maxBytes` (at least one entry) from the head as one write, counted as
   * written; with `oneEvent`, the head message alone (takeOne: the shutdown's one-event
   * writes, subscriber.ts). The taken entries go to `taken` (for their times); the write
   * holds the slab reference its bytes need, until settleWrite or abandonWrite.
   */
  takeWrite(maxBytes: number, taken: QueueEntry[], oneEvent = false): Write {
    const events = oneEvent ? this.takeOne(taken) : this.take(maxBytes, taken);
    this.written += events;
    if (taken.length === 1) return { bytes: taken[0].bytes, events, slab: taken[0].slab, settled: false };
    // The copy owns its bytes: the entries' slab references end here.
    const bytes = Buffer.concat(taken.map((e) => e.bytes));
    for (const e of taken) this.slabs.release(e.slab);
    return { bytes, events, slab: NO_SLAB, settled: false };
  }

  /**
   * Removes the head message alone, splitting its run. The caller owns one slab
   * reference for it; the rest of the run keeps its own.
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
    this.slow.drainedTo(this.depthEvents);
    return 1;
  }

  /** gRPC confirmed (or failed) the write: node is done with its bytes. False when it was settled before. */
  settleWrite(write: Write): boolean {
    if (write.settled) return false;
    write.settled = true;
    this.slabs.release(write.slab);
    return true;
  }

  /**
   * The client went away with this write unconfirmed. grpc-js does not call back for a
   * write on a cancelled call, and node may still be sending its bytes: the slab is
   * reused only after a grace period.
   */
  abandonWrite(write: Write): void {
    if (write.settled) return;
    write.settled = true;
    this.slabs.releaseLater(write.slab, UNCONFIRMED_WRITE_GRACE_MS);
  }

  /**
   * Written events that will never be confirmed: the client went away (client_closed) or
   * the shutdown grace period ended it (shutdown_grace_expired).
   */
  countLost(reason: LossReason, n: number): void {
    if (reason === 'shutdown_grace_expired') this.graceExpired += n;
    else this.closed += n;
  }

  /** Empties the queue (client gone, or the shutdown grace period over); the events are counted under `reason`. */
  discard(reason: LossReason = 'client_closed'): number {
    const n = this.depthEvents;
    this.countLost(reason, n);
    for (let i = this.head; i < this.entries.length; i++) this.slabs.release(this.entries[i].slab);
    this.entries = [];
    this.head = 0;
    this.depthEvents = 0;
    return n;
  }
}
