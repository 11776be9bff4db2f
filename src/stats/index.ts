/** The stats object of a server (serve, relay) and how it is assembled from the parts that count. */
export type { EncoderStats, FeederStats, SourceStats } from './model';
export type { ClientStats } from '../fanout';
export { assembleStats, inProcessSource, sourceStats, type SourceState, type StatsParts } from './assemble';
export type { RelayStats, UpstreamStats, UpstreamStreamStats, UpstreamStreamState, NodeCounts, JetStreamSourceStats, ConsumerStats, ConsumerState, NatsState, NodeRunStats, ReplayStats } from './relay';
