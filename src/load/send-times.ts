/**
 * When each event left the producer (its frame was flushed to the kernel), by
 * sequence number, so subscribers can measure latency from the send as well as
 * from UpdatedTime (which is stamped earlier, when the event was built).
 *
 *   slot = seq & mask:  [ seqs: Int32Array | seq ]  [ times: Float64Array | performance.now() ]
 *
 * A ring of 2^20 slots (12 MB): an event received more than a million events
 * after it was sent finds its slot reused (seq mismatch) and gets no send latency.
 */
export class SendTimes {
  private readonly seqs: Int32Array;
  private readonly times: Float64Array;
  private readonly mask: number;

  constructor(slotsLog2 = 20) {
    this.seqs = new Int32Array(1 << slotsLog2);
    this.times = new Float64Array(1 << slotsLog2);
    this.mask = (1 << slotsLog2) - 1;
  }

  /** Marks seq `first..last` as sent at `at` (performance.now() ms). */
  markSent(first: number, last: number, at: number): void {
    for (let seq = first; seq <= last; seq++) {
      const slot = seq & this.mask;
      this.seqs[slot] = seq;
      this.times[slot] = at;
    }
  }

  /** performance.now() of the send of `seq`, or NaN if unknown. */
  sentAt(seq: number): number {
    const slot = seq & this.mask;
    return this.seqs[slot] === seq ? this.times[slot] : Number.NaN;
  }
}
