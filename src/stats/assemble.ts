/**
 * Building the stats object from the parts that own the counters: each ring's shared
 * header, each source's thread, the fan-out hub and its clients, the encoders, TLS, the
 * export. `serve` and `relay` assemble it the same way; the relay has no sources or
 * encoders, and adds its upstreams.
 */
import type { WhenFull } from '../config';
import { inputReasons } from '../errors';
import type { ExportStats } from '../export';
import { clientStats, type FanoutHub } from '../fanout';
import { restartReasons, type RestartReason } from '../ingest';
import type { RelayStats } from './relay';
import type { RingStats } from '../ring';
import type { MainLoopStats } from '../server';
import type { TlsStats } from '../tls';
import type { EncoderStats, FeederStats, SourceStats } from './model';

/** What a source is, besides its ring's counters. */
export interface SourceState {
  kind: string;
  address: string;
  whenFull: WhenFull;
  finished: boolean;
  failed: boolean;
  restarts: Readonly<Record<RestartReason, number>>;
}

/** A ring written on the main thread (push()): no thread, never finished, never restarted; a full ring drops. */
export function inProcessSource(name: string): SourceState {
  return { kind: name, address: 'in-process', whenFull: 'drop', finished: false, failed: false, restarts: noRestarts() };
}

function noRestarts(): Record<RestartReason, number> {
  return Object.fromEntries(restartReasons.map((r) => [r, 0])) as Record<RestartReason, number>;
}

/** One source: its ring's counters, what it is, and the producer connections the broker closed (by code). */
export function sourceStats(ring: RingStats, source: SourceState, disconnects: ReadonlyMap<string, number> | undefined): SourceStats {
  return {
    kind: source.kind,
    address: source.address,
    events: ring.eventsIn,
    dropped: { ring_full: ring.droppedFull, malformed_input: ring.droppedMalformed },
    malformedByReason: Object.fromEntries(inputReasons.map((r, i) => [r, ring.malformedByReason[i]]).filter(([, n]) => (n as number) > 0)),
    ring: { capacity: ring.capacity, usedBytes: ring.usedBytes },
    whenFull: source.whenFull,
    backpressure: { waits: ring.blocks, seconds: ring.blockedUs / 1e6 },
    rotations: ring.rotations,
    connections: ring.connections,
    disconnects: Object.fromEntries(disconnects ?? []),
    finished: source.finished,
    failed: source.failed,
    restarts: { ...noRestarts(), ...source.restarts },
  };
}

export interface StatsParts {
  /** When the server started, ms since the epoch. */
  startedMs: number;
  /** The fan-out: what was published and throttled, and every client. */
  hub: FanoutHub;
  mainLoop: MainLoopStats;
  ingest: Record<string, SourceStats>;
  encoders: EncoderStats;
  /** The drops not owned by a client that neither the rings nor the hub count. */
  dropped: Pick<FeederStats['dropped'], 'encode_error' | 'encoded_oversized' | 'output_backpressure'>;
  tls?: TlsStats;
  export?: ExportStats;
  relay?: RelayStats;
}

export function assembleStats(parts: StatsParts, now = Date.now()): FeederStats {
  let ringFull = 0;
  let malformed = 0;
  for (const s of Object.values(parts.ingest)) {
    ringFull += s.dropped.ring_full;
    malformed += s.dropped.malformed_input;
  }
  const counters = parts.hub.counters;
  return {
    uptimeSec: (now - parts.startedMs) / 1000,
    ingest: parts.ingest,
    encoded: { alerts: counters.alertsEncoded, logs: counters.logsEncoded, ...parts.encoders },
    messages: counters.messagesPublished,
    notices: counters.notices,
    dropped: { ring_full: ringFull, malformed_input: malformed, throttled: counters.throttled, ...parts.dropped },
    clients: clientStats(parts.hub, now),
    ...(parts.tls !== undefined ? { tls: parts.tls } : {}),
    mainLoop: parts.mainLoop,
    ...(parts.export !== undefined ? { export: parts.export } : {}),
    ...(parts.relay !== undefined ? { relay: parts.relay } : {}),
  };
}
