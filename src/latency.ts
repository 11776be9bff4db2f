/**
 * Latency as armorfeed reports it, broker side (per client, /stats latencyUs) and load
 * side (armorfeed load's report): percentiles of an HdrHistogram, in microseconds.
 */
import type { Histogram } from 'hdr-histogram-js';

/** Latency percentiles in microseconds; all 0 when nothing was recorded. */
export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export function summarizeLatency(h: Histogram): LatencySummary {
  if (h.totalCount === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}
