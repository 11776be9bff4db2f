/**
 * The export buffer: every event handed to the export, from the moment it is taken until
 * JetStream acknowledges it or it is given up, with a counter for each way out.
 *
 *   offer ──> [ fresh: taken, never sent ] ──next──> publisher ──ack──> settled: acked
 *     │                                    <─requeue─ (timeout,          ├─> export_rejected
 *     │       [ retry: sent, unanswered  ] ──next──>  disconnect)        ├─> export_timeout
 *     └─> export_buffer_full (not taken)                                 └─> export_shutdown
 *
 * Bounds: `held` (fresh + retry + in flight, i.e. taken and not settled) stays within
 * maxEvents and maxBytes of payload; an offer past either is dropped, counted
 * export_buffer_full, and never taken. The accounting identity, exact at every moment:
 *
 *   offered = acked + dropped(all reasons) + held
 *
 * An event settles once: `settle` on a settled event changes nothing and returns false,
 * so an ack that comes after a timeout, or twice (a retry and its original), is not
 * counted twice.
 */
import { Fifo } from './fifo';
import type { ExportStreamKind } from './subjects';

export type ExportDropReason = 'export_buffer_full' | 'export_rejected' | 'export_timeout' | 'export_shutdown';
export const exportDropReasons: readonly ExportDropReason[] = ['export_buffer_full', 'export_rejected', 'export_timeout', 'export_shutdown'];

export interface ExportEntry {
  readonly stream: ExportStreamKind;
  /** Per node run and stream, from 1, in the order the node produced the events. */
  readonly seq: number;
  /** The event's protobuf message, as on gRPC without the 5-byte frame header. */
  readonly payload: Uint8Array;
  readonly updatedTime: string;
  /** Publishes of it so far (the first, then retries). */
  sends: number;
  /** PubAck timeouts on a live connection so far (exportMaxAttempts gives up). */
  timeouts: number;
  settled: boolean;
}

/** An event as taken: not sent yet, nothing settled. */
export function newEntry(stream: ExportStreamKind, seq: number, payload: Uint8Array, updatedTime: string): ExportEntry {
  return { stream, seq, payload, updatedTime, sends: 0, timeouts: 0, settled: false };
}

export interface ExportCounts {
  /** Events handed to the export: the left side of the identity. */
  offered: number;
  /** Events JetStream acknowledged as stored (first time or as a duplicate of an earlier attempt). */
  acked: number;
  /** Of `acked`: acknowledged as a duplicate, i.e. an earlier attempt had been stored. */
  duplicates: number;
  dropped: Record<ExportDropReason, number>;
}

export class ExportBuffer {
  private readonly fresh = new Fifo<ExportEntry>();
  private readonly retry = new Fifo<ExportEntry>();
  readonly counts: ExportCounts = {
    offered: 0,
    acked: 0,
    duplicates: 0,
    dropped: { export_buffer_full: 0, export_rejected: 0, export_timeout: 0, export_shutdown: 0 },
  };
  private heldEvents = 0;
  private heldBytes = 0;

  constructor(
    readonly maxEvents: number,
    readonly maxBytes: number,
  ) {}

  /** Events taken and not settled: waiting, waiting for a retry, or in flight. */
  get events(): number {
    return this.heldEvents;
  }

  /** Payload bytes of those. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Whether an event of `bytes` would be taken now. */
  hasRoom(bytes: number): boolean {
    return this.heldEvents < this.maxEvents && this.heldBytes + bytes <= this.maxBytes;
  }

  /** Counts `n` events offered and dropped without being taken (full buffer, or the export is shutting down or failed). */
  refuse(n: number, reason: ExportDropReason): void {
    this.counts.offered += n;
    this.counts.dropped[reason] += n;
  }

  /** Takes an event the caller checked with hasRoom. */
  take(entry: ExportEntry): void {
    this.counts.offered++;
    this.heldEvents++;
    this.heldBytes += entry.payload.length;
    this.fresh.push(entry);
  }

  /** The next event to publish: retries first (they are older), then fresh ones; undefined when none waits. */
  next(): ExportEntry | undefined {
    for (;;) {
      const entry = this.retry.shift();
      if (entry === undefined) break;
      // Settled while waiting for its retry (a late ack of an earlier attempt).
      if (!entry.settled) return entry;
    }
    return this.fresh.shift();
  }

  /** Whether an event waits to be published. */
  hasWaiting(): boolean {
    return this.fresh.length > 0 || this.retry.length > 0;
  }

  /** Puts back an event whose attempt timed out or was cut off by a disconnect; it is sent again before fresh ones. */
  requeue(entry: ExportEntry): void {
    if (!entry.settled) this.retry.push(entry);
  }

  /** Settles an event as acked; false (and nothing counted) when it was settled already. */
  ack(entry: ExportEntry, duplicate: boolean): boolean {
    if (!this.release(entry)) return false;
    this.counts.acked++;
    if (duplicate) this.counts.duplicates++;
    return true;
  }

  /** Settles an event as dropped for `reason`; false (and nothing counted) when it was settled already. */
  drop(entry: ExportEntry, reason: ExportDropReason): boolean {
    if (!this.release(entry)) return false;
    this.counts.dropped[reason]++;
    return true;
  }

  /** Drops every waiting event (fresh and retry) for `reason`; in-flight ones are the publisher's to settle. Returns how many. */
  dropWaiting(reason: ExportDropReason): number {
    let n = 0;
    for (let e = this.next(); e !== undefined; e = this.next()) if (this.drop(e, reason)) n++;
    return n;
  }

  private release(entry: ExportEntry): boolean {
    if (entry.settled) return false;
    entry.settled = true;
    this.heldEvents--;
    this.heldBytes -= entry.payload.length;
    return true;
  }
}
