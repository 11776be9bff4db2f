/**
 * End-to-end latency per client in an HdrHistogram (hdr-histogram-js, JS
 * implementation: the wasm build would add a compile step and a memory we must free).
 * Values are microseconds; 3 significant digits, auto-resizing.
 */
import { build, decodeFromCompressedBase64, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import { summarizeLatency, type LatencySummary } from '../latency';

export type { LatencySummary };


/**
 * X positions of the percentile curve, HdrHistogram-plotter style: x = 1/(1-q),
 * so 10 is p90, 100 is p99, 1000 is p99.9. Four points per doubling up to 2^20.
 * Every client shares these, so the report plots them on one axis.
 */
export const percentileCurveX: readonly number[] = Array.from({ length: 81 }, (_, k) => 2 ** (k / 4));

export class LatencyRecorder {
  private readonly histogram: Histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    autoResize: true,
    useWebAssembly: false,
  });

  /** The histogram as compressed base64 (HdrHistogram's V2 encoding), to pass it between threads. */
  encode(): string {
    return encodeIntoCompressedBase64(this.histogram);
  }

  /** A recorder holding what `encode()` produced (in another thread). */
  static decode(encoded: string): LatencyRecorder {
    const r = new LatencyRecorder();
    if (encoded !== '') r.histogram.add(decodeFromCompressedBase64(encoded, 32, false));
    return r;
  }

  record(micros: number): void {
    // Clock steps can make a value negative; count it as 0 rather than lose the event.
    this.histogram.recordValue(micros > 0 ? Math.round(micros) : 0);
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  add(other: LatencyRecorder): void {
    this.histogram.add(other.histogram);
  }

  summary(): LatencySummary {
    return summarizeLatency(this.histogram);
  }

  /** Latency at each percentileCurveX point; null past the resolution the sample count allows. */
  curve(): (number | null)[] {
    const h = this.histogram;
    return percentileCurveX.map((x) => {
      if (h.totalCount === 0 || x > h.totalCount) return null;
      return Math.max(1, h.getValueAtPercentile(100 * (1 - 1 / x)));
    });
  }
}
