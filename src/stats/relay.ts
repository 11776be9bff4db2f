/**
 * The relay's part of the stats object (`armorfeed relay`): its upstreams, the nodes it
 * heard from, and with --from the JetStream consumers, sequences and replays. Defined
 * here with the rest of the stats object, which the relay fills in, so that the stats
 * depend on no server that produces them.
 */
import type { ExportStats } from '../export';
import type { StreamKind } from '../wire/proto';

export interface RelayStats {
  mode: 'feeders' | 'jetstream';
  /**
   * What grpc.health.v1 says (unless the main loop stalls or shutdown began): feeders, an
   * upstream has a stream open; JetStream, connected to NATS with the consumers running.
   */
  serving: boolean;
  /** The feeders file, when --feeders names one. */
  feedersFile?: string;
  upstreams: UpstreamStats[];
  /** Events per node, by the HostName they carry. */
  nodes: Record<string, NodeCounts>;
  /** Batches handed to the fan-out. */
  batches: number;
  /** --feeders with --export: each node's export (by HostName; the relay's own under its --host). */
  exports?: Record<string, ExportStats>;
  /** --export: events of nodes past the exported-node limit, not exported. */
  exportNodesOverLimit?: number;
  /** --from: the NATS connection, the consumers, per-node sequences and replays. */
  jetstream?: JetStreamSourceStats & { replays: ReplayStats };
  /**
   * What the relay did not get or could not pass on (not per client): upstream bytes that
   * were not a message; Armorfeed-Seq numbers that never arrived from JetStream (--from).
   */
  dropped: { malformed_upstream: number; upstream_gap: number };
}

export type UpstreamStreamState = 'connecting' | 'open' | 'backoff' | 'stopped';

export interface UpstreamStreamStats {
  state: UpstreamStreamState;
  /** Events received on this stream (all of its connections). */
  events: number;
  /** Of those, events whose bytes were not a well-formed message (dropped as malformed_upstream). */
  malformed: number;
  /** Times the stream was opened again after it had been open. */
  reconnects: number;
  /** Attempts that did not get the stream open (HealthCheck failed or mismatched). */
  failedAttempts: number;
  /** Time the stream was not open since the upstream was added, in seconds (now included). */
  disconnectedSec: number;
  /** Why it last broke or failed to open ('' = never). */
  lastError: string;
}

export interface UpstreamStats {
  /** The address as configured (HOST:PORT): the upstream's id. */
  id: string;
  /** All three streams open. */
  connected: boolean;
  streams: Record<StreamKind, UpstreamStreamStats>;
}

/** Per-node event counts (HostName as the events carry it), one row per node seen. */
export interface NodeCounts {
  alerts: number;
  logs: number;
  messages: number;
}

export type ConsumerState = 'starting' | 'consuming' | 'stopped' | 'failed';

export interface ConsumerStats {
  filter: string;
  state: ConsumerState;
  /** Messages the consumer delivered to the relay. */
  delivered: number;
  /** num_pending at the last delivery: messages in the stream after it, on this filter. */
  pending: number;
  /** Deliveries marked redelivered (an ordered consumer is not acked: expected 0). */
  redelivered: number;
  /** Times the client library recreated the ordered consumer (reconnects, missed heartbeats). */
  recreated: number;
  lastStreamSeq: number;
}

export type NatsState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface JetStreamSourceStats {
  servers: string[];
  stream: string;
  state: NatsState;
  /** Whether the shared feed's consumers run and NATS is connected (health SERVING). */
  serving: boolean;
  connects: number;
  disconnects: number;
  lastError: string;
  consumers: ConsumerStats[];
  /** Per node run (Armorfeed-Node-Id): events, last Armorfeed-Seq and gaps per stream. */
  nodes: Record<string, NodeRunStats>;
  /** Per host (all its runs): Armorfeed-Seq numbers that never arrived. */
  gaps: Record<string, Record<StreamKind, number>>;
  /** Events without the armorfeed headers (not from an armorfeed export): relayed, not tracked. */
  unsequenced: number;
  /** Events on a subject whose last token is not alerts, logs or messages: dropped. */
  unknownSubject: number;
  /**
   * The thread the NATS client runs on (jetstream.worker.ts): whether one runs now, and how
   * often one was started again after it died (at most 5 a minute, then none: failed).
   */
  thread: { running: boolean; restarts: number; failed: boolean };
}

export interface NodeRunStats {
  /** The host part of the node id (the --host it was started with, as a subject token). */
  host: string;
  events: Record<StreamKind, number>;
  lastSeq: Record<StreamKind, number>;
  /** Sequence numbers that never arrived: the node or the stream lost them. */
  gaps: Record<StreamKind, number>;
  repeats: number;
}

export interface ReplayStats {
  /** relayMaxReplays. */
  limit: number;
  active: number;
  /** Replays started since the relay started. */
  started: number;
  /** Replays refused: over the limit, or JetStream not reachable. */
  refused: number;
  /** Replays that ended because their consumer could not be created. */
  failed: number;
}
