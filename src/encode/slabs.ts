/**
 * Output slabs: fixed slots of one SharedArrayBuffer that the encoders write a batch's
 * framed bytes into, so the bytes reach the fan-out without a fresh ArrayBuffer per
 * batch. Why: every buffer transferred from a worker counts as new external memory in
 * the main isolate, and at 250k+ events/s (over 100 MB/s of batches) V8 answered that
 * with a full mark-compact every ~60 ms, which cost the main thread and V8's helper
 * threads about a fifth of the broker's CPU (bench/README.md has the figures).
 *
 *   sab:  [ slot 0: alerts | logs ][ slot 1 ]...[ slot count-1 ]   slabBytes each
 *
 * Ownership is a reference count per slot, on the main thread only:
 *   acquire()          the pool, for one encode task (1)
 *   retain()/release() each client queue entry that views the bytes, and each write
 *                      handed to gRPC until grpc-js confirms it
 *   releaseLater()     a write still unconfirmed when its client went away: grpc-js
 *                      never calls back for a cancelled call, and node may still be
 *                      sending the bytes, so the slot is reused only after a grace
 *                      period longer than the keepalive timeout (5 s), by when the
 *                      session has either sent or dropped them
 * A slot is written again only once its count is back to 0. When every slot is taken
 * (stalled clients pin them) or a batch does not fit, the encoder falls back to a
 * buffer of its own: slower, never wrong.
 */

export const NO_SLAB = -1;

/** What client queues and subscribers hold: a reference per entry or write. */
export interface SlabRefs {
  retain(slab: number): void;
  release(slab: number): void;
  /** Releases after `ms` (a write whose confirmation may never come). */
  releaseLater(slab: number, ms: number): void;
}

/** For queues outside a feeder (the load tool, tests): bytes are never in a slab. */
export const noSlabs: SlabRefs = {
  retain() {},
  release() {},
  releaseLater() {},
};

/** How the encoders see the slabs (in workerData and the inline encoder). */
export interface SlabArea {
  sab: SharedArrayBuffer;
  slabBytes: number;
}

export interface SlabStats {
  slabs: number;
  slabBytes: number;
  inUse: number;
  /** Encode tasks that found no free slot and used a buffer of their own. */
  exhausted: number;
  /** Slots waiting out the grace period after their client went away mid-write. */
  quarantined: number;
}

/** Grace period before reusing a slot whose write was never confirmed. */
export const UNCONFIRMED_WRITE_GRACE_MS = 15_000;

export class SlabPool implements SlabRefs {
  readonly sab: SharedArrayBuffer;
  private readonly refs: Int32Array;
  private readonly free: number[] = [];
  private exhaustedCount = 0;
  private quarantinedCount = 0;

  constructor(
    readonly count: number,
    readonly slabBytes: number,
  ) {
    this.sab = new SharedArrayBuffer(count * slabBytes);
    this.refs = new Int32Array(count);
    for (let k = count - 1; k >= 0; k--) this.free.push(k);
  }

  get area(): SlabArea {
    return { sab: this.sab, slabBytes: this.slabBytes };
  }

  /** A free slot with one reference (the caller's), or NO_SLAB when all are taken. */
  acquire(): number {
    const k = this.free.pop();
    if (k === undefined) {
      if (this.count > 0) this.exhaustedCount++;
      return NO_SLAB;
    }
    this.refs[k] = 1;
    return k;
  }

  retain(slab: number): void {
    if (slab >= 0) this.refs[slab]++;
  }

  release(slab: number): void {
    if (slab < 0) return;
    const n = --this.refs[slab];
    if (n === 0) this.free.push(slab);
    else if (n < 0) throw new Error(`output slab ${slab} released more often than retained`);
  }

  releaseLater(slab: number, ms: number): void {
    if (slab < 0) return;
    this.quarantinedCount++;
    setTimeout(() => {
      this.quarantinedCount--;
      this.release(slab);
    }, ms).unref();
  }

  /**
   * A view of `length` bytes at `at` in slot `slab` (no copy, no new ArrayBuffer). A
   * plain Uint8Array, not a Buffer: Buffer#slice() returns a view, and code that copies
   * with slice() must get a copy.
   */
  view(slab: number, at: number, length: number): Uint8Array {
    return new Uint8Array(this.sab, slab * this.slabBytes + at, length);
  }

  stats(): SlabStats {
    return {
      slabs: this.count,
      slabBytes: this.slabBytes,
      inUse: this.count - this.free.length,
      exhausted: this.exhaustedCount,
      quarantined: this.quarantinedCount,
    };
  }
}
