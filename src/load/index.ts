/**
 * `armorfeed load`: drives a feeder end to end and measures it. A producer thread sends
 * numbered events into the ingest socket, subscriber threads count exactly what each
 * client missed beside the broker's own drop counters, and the report says what limited
 * each client (run-load.ts). The tuner (src/tune) runs it point by point; the report's
 * text and HTML are rendered in src/report.
 */
export { runLoad, type LoadObserver, type LoadProgress } from './run-load';
export {
  loadDefaults,
  loadLimits,
  newRunTag,
  parseDurationUs,
  parseNonNegativeInt,
  parseSlow,
  parseStreams,
  validateLoadOptions,
  type LoadOptions,
  type StreamChoice,
} from './options';
export { parseIngestTarget, parseLoopbackHostPort, parseStatsUrl, type HostPort, type IngestTarget } from './addresses';
export { BrokerStartError, LoadFlagError, NotLoopbackError } from './errors';
export { startBroker, type BrokerFlags, type RunningBroker } from './broker-process';
export { threadBusyText } from './limits';
export { ProgressLine } from './progress';
export type { ClientReport, LoadReport, ThreadReport } from './report-model';
