/**
 * The stats object: what a running server (serve or relay) knows about itself, as data.
 * `/stats` serves it as JSON, `/metrics` reads it at scrape time, the CLI renders its
 * exit summary from it and writes its last value to `--statsFile`; nothing parses text back.
 */
import type { WhenFull } from '../config';
import type { SlabStats } from '../encode';
import type { ExportStats } from '../export';
import type { ClientStats } from '../fanout';
import type { RestartReason } from '../ingest';
import type { RelayStats } from './relay';
import type { MainLoopStats } from '../server';
import type { TlsStats } from '../tls';

export interface SourceStats {
  kind: string;
  address: string;
  events: number;
  dropped: { ring_full: number; malformed_input: number };
  malformedByReason: Record<string, number>;
  ring: { capacity: number; usedBytes: number };
  /** What the source does when its ring is full (ingestWhenFull). */
  whenFull: WhenFull;
  /** Backpressure: how often and how long the source waited for room (its producers' writes waited). */
  backpressure: { waits: number; seconds: number };
  /** `--follow`: times the file was replaced (renamed away or truncated) and read again from its start. */
  rotations: number;
  /** Producer connections open now (socket and TCP sources). */
  connections: number;
  /** Producer connections the broker closed or refused, by code (ERR_INGEST_FRAME_TIMEOUT, ERR_INGEST_TOO_MANY_CONNECTIONS, ...). */
  disconnects: Record<string, number>;
  finished: boolean;
  /** The source is not working now (its thread died or is wedged, and no restart has succeeded yet); health is NOT_SERVING. */
  failed: boolean;
  /** Restarts of its thread, by why it went down (socket and TCP sources only). */
  restarts: Record<RestartReason, number>;
}

export interface EncoderStats {
  batches: number;
  inlineBatches: number;
  encoderThreads: number;
  /** Encoder threads up now. */
  encoderThreadsRunning: number;
  /** Encoder threads replaced because a task ran over encoderTaskTimeoutMs. */
  encoderRestarts: number;
  outputSlabs: SlabStats;
}

export interface FeederStats {
  uptimeSec: number;
  ingest: Record<string, SourceStats>;
  encoded: { alerts: number; logs: number } & EncoderStats;
  messages: number;
  notices: number;
  /** Drops not owned by one client. */
  dropped: { ring_full: number; malformed_input: number; throttled: number; encode_error: number; encoded_oversized: number; output_backpressure: number };
  clients: ClientStats[];
  /** With tlsEnabled: the certificates in use and their reloads. */
  tls?: TlsStats;
  /** `armorfeed relay`: its upstreams (the relay has no ingest or encoders of its own). */
  relay?: RelayStats;
  /** The main thread's event loop: its delay (perf_hooks.monitorEventLoopDelay) and the stalls over mainLoopStallMs. */
  mainLoop: MainLoopStats;
  /** With --export: the NATS JetStream export and its accounting (offered = acked + dropped + buffered). */
  export?: ExportStats;
}
