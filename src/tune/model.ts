/**
 * What a tune sweep found: one point per (settings, rate, consumers) run, and per
 * (rate, consumers) the recommendation drawn from those points.
 */
import type { LoadReport } from '../load';

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
  /** Encoded bytes one client's queue can reference at most: queueSize x mean encoded event size (a bound; measured memory is in TuneReport.memory). */
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

/** One run of the memory measurement: `clients` clients that read nothing while the producer runs, so every queue fills. */
export interface MemoryRun {
  clients: number;
  /** The broker's peak RSS (/proc), and what /stats showed at its peak; null when unknown. */
  maxRssBytes: number | null;
  peakSlabBytesInUse: number | null;
  slabBytesTotal: number | null;
  peakQueuedEvents: number | null;
}

/**
 * Memory per client, measured: runs with different numbers of stalled clients against a
 * fresh broker with the same queue size, and the differences per added client.
 */
export interface MemoryPerClient {
  queueSize: number;
  rate: number;
  runs: MemoryRun[];
  /** (peak RSS with the most clients - with the fewest) / (difference in clients); null when unknown. */
  rssBytesPerClient: number | null;
  /** The same for the output slabs in use (encoded events are shared by every client's queue). */
  slabBytesPerClient: number | null;
  text: string;
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
  /** Measured memory per client, for the queue sizes recommended (empty when none was, or time ran out). */
  memory?: MemoryPerClient[];
  /** The full load report of the first recommended point (or the last point), for its latency and throughput charts. */
  detail: LoadReport | null;
  machine: LoadReport['machine'];
}
