/**
 * What a load run found, as plain data: printed as a table, written with --json
 * and rendered into the HTML report. Everything a chart needs is in here, so the
 * report can be re-rendered from the JSON alone.
 */
import type { LatencySummary } from './latency';
import type { ProcSummary } from './proc-sampler';
import type { StreamChoice } from './options';
import type { StreamState } from './load-client';

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
  /** From the producer handing the frame to its socket; null without our producer. */
  latencyFromSendUs: LatencySummary | null;
  curveFromUpdatedUs: (number | null)[];
  curveFromSendUs: (number | null)[] | null;
  receivedPerSecond: number[];
  /** Missing events by the second in which the producer sent them. */
  missingBySentSecond: number[];
  /** The broker's drops for this client per second of the run (from /stats polls). */
  serverDroppedPerSecond: number[] | null;
  server: ServerDropsForClient | null;
  /** Which of the tool's threads ran this client (an index into LoadReport.threads). */
  thread: number;
  /** What limited this client: see ./limits.ts. */
  limitedBy: LimitKind;
  /** One sentence saying what limited it. */
  limit: string;
}

export type LimitKind = 'nothing' | 'client' | 'broker-queue' | 'broker-cpu' | 'broker-ingest' | 'machine' | 'unknown';

/** One of the load tool's own threads, metered from inside (src/load/thread-meter.ts). */
export interface ThreadReport {
  name: string;
  role: 'producer' | 'subscribers';
  /** Client indexes this thread ran (empty for the producer). */
  clients: number[];
  /** Event-loop utilization over the run, 0..1. */
  meanElu: number;
  /** Share of 0.5 s samples with ELU >= 0.9. */
  saturatedShare: number;
  /** The thread was the limit: mean ELU >= 0.9 or saturated in >= 25% of the samples. */
  saturated: boolean;
  cpuSec: number | null;
  delayP99Ms: number;
  delayMaxMs: number;
  /** t = seconds since the producer started (or the run started, subscriber-only). */
  samples: { t: number; elu: number; cpuPct: number | null }[];
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

/** What the broker held for this run's clients at its peak, from /stats (polled once a second and when the producer ends). */
export interface BrokerHeld {
  /** Most output-slab bytes in use at one poll: encoded events that client queues still reference. */
  peakSlabBytesInUse: number;
  /** The size of the slab pool: at the peak, a full pool means encoders used buffers of their own, seen only in RSS. */
  slabBytesTotal: number;
  /** Most events queued for this run's clients at one poll. */
  peakQueuedEvents: number;
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
  /** Null when the broker has no /stats. */
  brokerHeld: BrokerHeld | null;
  clients: ClientReport[];
  aggregate: { received: number; rateEps: number; latencyFromUpdatedUs: LatencySummary };
  broker: ProcSummary | null;
  loadgenCpuSec: number;
  /** The tool's worker threads: the producer's first (if any), then the subscriber groups. */
  threads: ThreadReport[];
  percentileCurveX: number[];
  verdict: {
    /** Every client's missing count equals the broker's drop counters for it; null if either is unknown. */
    lossAccounted: boolean | null;
    /** No fast client missed an event, among those not client-limited; null if loss is unknown (or every fast client was client-limited). */
    fastClientsLossless: boolean | null;
    /** Names of the clients whose own thread was the limit: their loss is not the broker's. */
    clientLimited: string[];
    /** The producer's thread was saturated and it sent under 97% of the asked rate: the run measured what it managed to send. */
    producerLimited: boolean;
    notes: string[];
  };
  failures: string[];
  machine: { cpus: number; cpuModel: string; node: string; platform: string };
  /** How busy all of the machine's cores were during the run (every process, not only ours), 0..100; null if unknown. */
  machineBusyPct: number | null;
}
