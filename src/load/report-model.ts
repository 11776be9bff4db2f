/**
 * What a load run found, as plain data: printed as a table, written with --json
 * and rendered into the HTML report. Everything a chart needs is in here, so the
 * report can be re-rendered from the JSON alone.
 */
import type { LatencySummary } from './latency';
import type { ProcSummary } from './proc-sampler';
import type { StreamChoice } from './options';
import type { StreamState } from './subscriber';

export interface ServerDropsForClient {
  delivered: number;
  dropped: { client_queue_full: number; throttled: number; filtered: number };
  /** client_queue_full + throttled + filtered: the drops the broker attributes to this client. */
  attributed: number;
  queueDepthAtEnd: number;
  /** The client-side missing count equals `attributed` (within unattributable broker drops, if any). */
  agrees: boolean;
}

/** A stream's counts and how it ended, as the subscriber kept them. */
export type StreamReport = StreamState;

export interface ClientReport {
  index: number;
  name: string;
  behaviour: 'fast' | 'slow' | 'stalled';
  delayUs: number;
  streams: StreamReport[];
  received: number;
  bytes: number;
  /** Events this client should have received; null when unknown (subscriber-only without --expect). */
  expected: number | null;
  missing: number | null;
  missingPct: number | null;
  /** The first missing sequence-number ranges, inclusive. */
  missingRanges: [number, number][];
  missingRangesTruncated: boolean;
  duplicates: number;
  outOfOrder: number;
  reconnects: number;
  /** (received - 1) / (last receive - first receive). */
  rateEps: number;
  latencyFromUpdatedUs: LatencySummary;
  /** From the producer's flush to the kernel; null without our producer. */
  latencyFromSendUs: LatencySummary | null;
  curveFromUpdatedUs: (number | null)[];
  curveFromSendUs: (number | null)[] | null;
  receivedPerSecond: number[];
  /** Missing events by the second in which the producer sent them. */
  missingBySentSecond: number[];
  /** The broker's drops for this client per second of the run (from /stats polls). */
  serverDroppedPerSecond: number[] | null;
  server: ServerDropsForClient | null;
}

export interface ProducerReport {
  ingest: string;
  sent: number;
  alerts: number;
  logs: number;
  bytes: number;
  elapsedSec: number;
  rateEps: number;
  sentPerSecond: number[];
  error: string | null;
}

export interface BrokerCounters {
  ingestEvents: number;
  ringFull: number;
  malformedInput: number;
  throttled: number;
}

export interface LoadSettingsReport {
  addr: string;
  ingest: string | null;
  statsUrl: string | null;
  clients: number;
  streams: StreamChoice;
  slow: string | null;
  stalled: number;
  rate: number;
  burst: number;
  count: number | null;
  durationSec: number;
  alertEvery: number;
  runTag: string;
}

export interface LoadReport {
  kind: 'load';
  version: 1;
  startedAt: string;
  wallSec: number;
  mode: 'end-to-end' | 'subscriber-only';
  settings: LoadSettingsReport;
  producer: ProducerReport | null;
  /** The broker's global counters; null when it has no /stats (not armorfeed). */
  server: BrokerCounters | null;
  clients: ClientReport[];
  aggregate: { received: number; rateEps: number; latencyFromUpdatedUs: LatencySummary };
  broker: ProcSummary | null;
  loadgenCpuSec: number;
  percentileCurveX: number[];
  verdict: {
    /** Every client's missing count equals the broker's drop counters for it; null if either is unknown. */
    lossAccounted: boolean | null;
    /** No fast client missed an event; null if loss is unknown. */
    fastClientsLossless: boolean | null;
    notes: string[];
  };
  failures: string[];
  machine: { cpus: number; cpuModel: string; node: string; platform: string };
}
