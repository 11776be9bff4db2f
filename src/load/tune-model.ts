/**
 * What a tune sweep found: one point per (settings, rate, consumers) run, and per
 * (rate, consumers) the recommendation drawn from those points.
 */
import type { LoadReport } from './report-model';

export interface BrokerSettings {
  queueSize: number;
  encoderThreads: number | null;
  batchSize: number | null;
  ringSize: number | null;
}

export interface TunePoint {
  settings: BrokerSettings;
  rate: number;
  burst: number;
  /** Human description of the consumers, e.g. "3 clients, 1 slow at 200us/event". */
  consumers: string;
  sent: number;
  /** Highest missing/expected over all clients, in %. */
  worstDropPct: number;
  /** Highest missing/expected over the fast clients, in %. */
  fastDropPct: number;
  /** p99 latency (from UpdatedTime) of the worst client and of the fast ones, in µs. */
  worstP99Us: number;
  fastP99Us: number;
  meanEventBytes: number;
  /** Worst case memory one client's queue can hold: queueSize x mean encoded event size. */
  queueBytesPerClient: number;
  brokerMaxRssBytes: number | null;
  brokerMeanCpuPct: number | null;
  /** Client-side loss equals the broker's drop counters for every client. */
  lossAccounted: boolean | null;
  /** Why this point says nothing about the broker (the load tool's own thread was the limit), or null. */
  notMeasured: string | null;
  meetsTarget: boolean;
  failures: string[];
}

export interface TuneRecommendation {
  rate: number;
  burst: number;
  consumers: string;
  /** The chosen point, or null when no point met the target. */
  chosen: TunePoint | null;
  /** The best point tried (lowest drop rate) when none met the target. */
  best: TunePoint | null;
  text: string;
}

/** The automatic sweep's first run: the highest rate the machine sustains. */
export interface TuneProbe {
  /** Events/s the slowest client received when the producer went as fast as the broker took them. */
  deliveredEps: number;
  /** The highest rate swept: 90% of that, in thousands. */
  rateEps: number;
  note: string;
}

export interface TuneReport {
  kind: 'tune';
  version: 1;
  startedAt: string;
  wallSec: number;
  targetDropPct: number;
  /** The probe that chose the rates; null when the rates were given. */
  probe?: TuneProbe | null;
  pointDurationSec: number;
  points: TunePoint[];
  recommendations: TuneRecommendation[];
  /** The full load report of the first recommended point (or the last point), for its latency and throughput charts. */
  detail: LoadReport | null;
  machine: LoadReport['machine'];
}
