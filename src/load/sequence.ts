/**
 * Which sequence numbers one client received, so that every missing event is
 * known by number. A growable bitset: bit `seq` is set once the event arrived.
 * 10 M events cost 1.25 MB per client.
 */

export interface MissingReport {
  /** Events of the client's kinds, up to the last one sent, that never arrived. */
  missing: number;
  /** The first missing ranges, inclusive, in order (at most `maxRanges`). */
  ranges: [number, number][];
  /** True when there were more ranges than listed. */
  rangesTruncated: boolean;
  /** Missing events by the second (since the producer started) in which they were sent. */
  bySecond: number[];
}

/** A tracker's whole state, to pass it from a worker thread (the bitset's buffer can be transferred). */
export interface SequenceState {
  bits: Uint32Array<ArrayBuffer>;
  lastSeq: number;
  distinct: number;
  duplicates: number;
  outOfOrder: number;
}

export class SequenceTracker {
  private bits = new Uint32Array(1024);
  private lastSeq = 0;
  /** Distinct events received. */
  distinct = 0;
  duplicates = 0;
  /** Events that arrived after one with a higher number (on the same client). */
  outOfOrder = 0;

  state(): SequenceState {
    return { bits: this.bits, lastSeq: this.lastSeq, distinct: this.distinct, duplicates: this.duplicates, outOfOrder: this.outOfOrder };
  }

  static fromState(s: SequenceState): SequenceTracker {
    const t = new SequenceTracker();
    t.bits = s.bits;
    t.lastSeq = s.lastSeq;
    t.distinct = s.distinct;
    t.duplicates = s.duplicates;
    t.outOfOrder = s.outOfOrder;
    return t;
  }

  /** Records `seq`; returns false for a duplicate. */
  add(seq: number): boolean {
    const word = seq >>> 5;
    if (word >= this.bits.length) this.grow(word);
    const mask = 1 << (seq & 31);
    if ((this.bits[word] & mask) !== 0) {
      this.duplicates++;
      return false;
    }
    this.bits[word] |= mask;
    this.distinct++;
    if (seq < this.lastSeq) this.outOfOrder++;
    else this.lastSeq = seq;
    return true;
  }

  has(seq: number): boolean {
    const word = seq >>> 5;
    return word < this.bits.length && (this.bits[word] & (1 << (seq & 31))) !== 0;
  }

  private grow(word: number): void {
    let size = this.bits.length;
    while (size <= word) size *= 2;
    const next = new Uint32Array(size);
    next.set(this.bits);
    this.bits = next;
  }

  /**
   * Walks seq `first..last` and counts those `expected(seq)` says this client
   * should have got but did not. `secondStarts[s]` is the first seq sent in second s.
   */
  missing(first: number, last: number, expected: (seq: number) => boolean, secondStarts: readonly number[], maxRanges = 50): MissingReport {
    const report: MissingReport = { missing: 0, ranges: [], rangesTruncated: false, bySecond: secondStarts.map(() => 0) };
    let open: [number, number] | undefined;
    let second = 0;
    for (let seq = first; seq <= last; seq++) {
      while (second + 1 < secondStarts.length && secondStarts[second + 1] <= seq) second++;
      if (!expected(seq) || this.has(seq)) continue;
      report.missing++;
      if (report.bySecond.length > 0) report.bySecond[second]++;
      if (open !== undefined && open[1] === this.previousExpected(seq, first, expected)) {
        open[1] = seq;
      } else if (report.ranges.length < maxRanges) {
        open = [seq, seq];
        report.ranges.push(open);
      } else {
        open = undefined;
        report.rangesTruncated = true;
      }
    }
    return report;
  }

  /** The expected seq just before `seq` (so a range of missing alerts 5,10,15 reads as one range). */
  private previousExpected(seq: number, first: number, expected: (seq: number) => boolean): number {
    for (let s = seq - 1; s >= first; s--) if (expected(s)) return s;
    return first - 1;
  }
}
