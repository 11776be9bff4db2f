/**
 * The settings of one load run, as one typed object with its defaults and hard
 * bounds in one place. The CLI and `tune` both build a LoadOptions and call
 * validateLoadOptions, so every run is bounded in time and count.
 */
import type { HostPort, IngestTarget } from './addresses';
import { LoadFlagError } from './errors';

export type StreamChoice = 'alerts' | 'logs' | 'both';

export interface LoadOptions {
  /** gRPC address of the feeder under test. */
  addr: HostPort;
  /** Ingest socket of an armorfeed broker; undefined = subscriber-only run. */
  ingest?: IngestTarget;
  /** /stats URL of an armorfeed broker, if any. */
  statsUrl?: string;
  /** PID of the broker for CPU/RSS sampling; undefined = look it up from the gRPC port. */
  brokerPid?: number;
  clients: number;
  streams: StreamChoice;
  /** The first `slowClients` clients stop reading for `slowDelayUs` after every event. */
  slowClients: number;
  slowDelayUs: number;
  /** The next `stalledClients` clients read nothing until the producer has finished. */
  stalledClients: number;
  /** Events per second; 0 = as fast as the socket accepts. */
  rate: number;
  /** Send this many back to back, then wait (burst/rate seconds); 0 = smooth pacing. */
  burst: number;
  /** Events to send (producer) or to expect per client (subscriber-only); undefined = unbounded by count. */
  count?: number;
  durationMs: number;
  /** Event seq is an Alert when seq % alertEvery == 0; 1 = only alerts, 0 = only logs. */
  alertEvery: number;
  /** Subscriber-only: the number of events each client should get (loss = expect - received). */
  expect?: number;
  /** A client that has had nothing for this long after the producer finished is done. */
  idleMs: number;
  /** Longest wait for slow and stalled clients to drain after the producer finished. */
  drainTimeoutMs: number;
  /** Shown in the server's stats as the client name prefix (x-armorfeed-client). */
  runTag: string;
  alertFilter: string;
  logFilter: string;
  /** Subscriber threads (clients share them round-robin); default min(clients, 8). */
  clientThreads?: number;
  /** Debug: the first `burnClients` clients burn `burnUsPerEvent` µs of CPU per event (a client that is its own limit). */
  burnClients?: number;
  burnUsPerEvent?: number;
}

/** Hard bounds: no flag combination can run longer or send more than this. */
export const loadLimits = {
  maxDurationMs: 600_000,
  maxCount: 50_000_000,
  maxClients: 256,
  maxRate: 2_000_000,
  maxDrainTimeoutMs: 120_000,
} as const;

export const loadDefaults = {
  clients: 4,
  streams: 'both' as StreamChoice,
  rate: 5000,
  burst: 0,
  durationMs: 10_000,
  alertEvery: 5,
  idleMs: 1000,
  drainTimeoutMs: 30_000,
  alertFilter: 'policy',
  logFilter: 'system',
} as const;

/** Parses `250us`, `1ms`, `2s`, `1.5m` or a bare number of `bareUnit`s into microseconds. */
export function parseDurationUs(key: string, value: string, bareUnit: 'us' | 'ms' | 's' = 'ms'): number {
  const m = /^(\d+(?:\.\d+)?)(us|µs|ms|s|m)?$/.exec(value.trim());
  if (m === null) throw new LoadFlagError(key, `${JSON.stringify(value)} is not a duration (e.g. 500us, 2ms, 10s)`);
  const unit = m[2] ?? bareUnit;
  const factor = unit === 'us' || unit === 'µs' ? 1 : unit === 'ms' ? 1e3 : unit === 's' ? 1e6 : 60e6;
  return Math.round(Number(m[1]) * factor);
}

export function parseNonNegativeInt(key: string, value: string, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw new LoadFlagError(key, `${JSON.stringify(value)} is not a non-negative integer`);
  const n = Number(value);
  if (n > max) throw new LoadFlagError(key, `${n} is above the limit of ${max}`);
  return n;
}

/** `K:DELAY`, e.g. `1:2ms`: the first K clients wait DELAY after each event. */
export function parseSlow(key: string, value: string): { clients: number; delayUs: number } {
  const i = value.indexOf(':');
  if (i < 0) throw new LoadFlagError(key, `${JSON.stringify(value)} is not K:DELAY (e.g. 1:2ms)`);
  return { clients: parseNonNegativeInt(key, value.slice(0, i)), delayUs: parseDurationUs(key, value.slice(i + 1)) };
}

export function parseStreams(key: string, value: string): StreamChoice {
  if (value === 'alerts' || value === 'logs' || value === 'both') return value;
  throw new LoadFlagError(key, `${JSON.stringify(value)} must be alerts, logs or both`);
}

/** Checks cross-flag rules; throws LoadFlagError (exit 2) naming the flag. */
export function validateLoadOptions(o: LoadOptions): LoadOptions {
  if (o.clients < 1 || o.clients > loadLimits.maxClients) {
    throw new LoadFlagError('--clients', `must be 1..${loadLimits.maxClients}`);
  }
  if (o.slowClients + o.stalledClients > o.clients) {
    throw new LoadFlagError('--slow', `${o.slowClients} slow + ${o.stalledClients} stalled is more than --clients ${o.clients}`);
  }
  if (o.durationMs <= 0 || o.durationMs > loadLimits.maxDurationMs) {
    throw new LoadFlagError('--duration', `must be above 0 and at most ${loadLimits.maxDurationMs / 1000}s`);
  }
  if (o.count !== undefined && (o.count < 1 || o.count > loadLimits.maxCount)) {
    throw new LoadFlagError('--count', `must be 1..${loadLimits.maxCount}`);
  }
  if (o.rate > loadLimits.maxRate) throw new LoadFlagError('--rate', `must be at most ${loadLimits.maxRate}`);
  if (o.burst > 0 && o.rate === 0) {
    throw new LoadFlagError('--burst', 'needs --rate above 0: bursts of N are spaced N/rate seconds apart');
  }
  if (o.drainTimeoutMs > loadLimits.maxDrainTimeoutMs) {
    throw new LoadFlagError('--drain-timeout', `must be at most ${loadLimits.maxDrainTimeoutMs / 1000}s`);
  }
  if (o.alertEvery < 0) throw new LoadFlagError('--alert-every', 'must be 0 or more');
  if (o.streams === 'alerts' && o.alertEvery === 0 && o.ingest !== undefined) {
    throw new LoadFlagError('--alert-every', '0 sends only logs, but --streams alerts subscribes to alerts only');
  }
  if (o.streams === 'logs' && o.alertEvery === 1 && o.ingest !== undefined) {
    throw new LoadFlagError('--alert-every', '1 sends only alerts, but --streams logs subscribes to logs only');
  }
  return o;
}

/** Unique enough to tell this run's clients apart in a long-lived server's stats. */
export function newRunTag(): string {
  return `load-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
}
