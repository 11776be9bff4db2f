/**
 * When each event left the producer (its frame was handed to the socket), by
 * sequence number, so subscribers can measure latency from the send as well as
 * from UpdatedTime (which is stamped earlier, when the event was built).
 *
 *   slot = seq & mask:  [ seqs: Int32Array | seq ]  [ times: Float64Array | epoch ms ]
 *
 * Both arrays live in SharedArrayBuffers: the producer's thread writes, the
 * subscribers' threads read. Times are epoch milliseconds (performance.timeOrigin
 * + performance.now()), a clock every thread of the process shares. The writer
 * stores the time before the seq (the seq with Atomics.store), so a reader that
 * finds its seq also finds that seq's time.
 *
 * A ring of 2^20 slots (12 MB): an event received more than a million events
 * after it was sent finds its slot reused (seq mismatch) and gets no send latency.
 */
export interface SendTimesBuffers {
  seqs: SharedArrayBuffer;
  times: SharedArrayBuffer;
}

/** This thread's start as epoch ms (read once: the getter costs more than now()). */
const timeOrigin = performance.timeOrigin;

/** Epoch milliseconds with sub-ms resolution, comparable across worker threads. */
export function epochMs(): number {
  return timeOrigin + performance.now();
}

export class SendTimes {
  private readonly seqs: Int32Array;
  private readonly times: Float64Array;
  private readonly mask: number;

  constructor(slotsLog2OrBuffers: number | SendTimesBuffers = 20) {
    const buffers =
      typeof slotsLog2OrBuffers === 'number'
        ? { seqs: new SharedArrayBuffer(4 << slotsLog2OrBuffers), times: new SharedArrayBuffer(8 << slotsLog2OrBuffers) }
        : slotsLog2OrBuffers;
    this.seqs = new Int32Array(buffers.seqs);
    this.times = new Float64Array(buffers.times);
    this.mask = this.seqs.length - 1;
  }

  /** The shared memory, to open the same ring in another thread. */
  get buffers(): SendTimesBuffers {
    return { seqs: this.seqs.buffer as SharedArrayBuffer, times: this.times.buffer as SharedArrayBuffer };
  }

  /** Marks seq `first..last` as sent at `at` (epoch ms). */
  markSent(first: number, last: number, at: number): void {
    for (let seq = first; seq <= last; seq++) {
      const slot = seq & this.mask;
      this.times[slot] = at;
      Atomics.store(this.seqs, slot, seq);
    }
  }

  /** Epoch ms of the send of `seq`, or NaN if unknown. */
  sentAt(seq: number): number {
    const slot = seq & this.mask;
    return Atomics.load(this.seqs, slot) === seq ? this.times[slot] : Number.NaN;
  }
}
