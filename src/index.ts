/** armorfeed's public API for embedding: createFeeder(config) -> { push, stats, close }. */
export { createFeeder, type Feeder, type FeederAddresses, type FeederOptions } from './feeder';
export type { FeederStats, ClientStats, SourceStats } from './stats';
export type { LatencySummary } from './latency';
export { createRelay, type Relay, type RelayOptions, type RelayStats, type UpstreamStats } from './relay';
export { defaultConfig, loadConfig, type FeederConfig, type SourceKind, type WhenFull } from './config';
export { ArmorfeedError, ConfigError, InputError, OutputError, HealthMismatchError, ExportUnreachableError, ExportStreamMismatchError, ExportStreamError, ExportCheckError, type ErrorCode } from './errors';
export { exportCheck, type ExportCheckReport, type ExportStats, type ExportState, type ExportDropReason } from './export';
export type { IngestEvent } from './event';
export { encodeFrame } from './ingest';
export { FrameProducer, type ProducerOptions, type ProducerStats, type ProducerTarget } from './producer';
export { feederTypes, protoPath, rpcPath, type AlertMessage, type LogMessage, type DaemonMessage } from './wire/proto';
