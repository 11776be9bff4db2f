/**
 * `armorfeed tune`: runs armorfeed itself under a sweep of broker settings, rates and
 * consumer speeds, one `armorfeed load` run per point against a fresh `serve`, and
 * recommends per (rate, consumers) the smallest queue that kept drops under the target
 * (sweep.ts); what it found is the TuneReport (model.ts), rendered in src/report.
 */
export {
  autoRateFloor,
  autoRates,
  estimateWallMs,
  measureMemoryPerClient,
  memoryClientCounts,
  planSweep,
  pointFromReport,
  probeMaxRate,
  recommend,
  runTune,
  tuneDefaults,
  validateTuneOptions,
  type PlannedPoint,
  type TuneObserver,
  type TuneOptions,
} from './sweep';
export type { BrokerSettings, MemoryPerClient, MemoryRun, TunePoint, TuneProbe, TuneRecommendation, TuneReport } from './model';
