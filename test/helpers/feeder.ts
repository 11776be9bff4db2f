/**
 * In-process feeders (createFeeder) for tests that need no child process: one base
 * config on loopback, and the start / open streams / wait until registered / close
 * sequence that several test files share.
 */
import type { FeederConfig } from '../../src/config';
import { createFeeder, type Feeder } from '../../src/feeder';
import { openStreams, type Rpc, type TestClient, type Watcher } from './client';
import { until } from './wait';

/** Loopback, a free gRPC port, no health or metrics server, no source: what every in-process test starts from. */
export const IN_PROCESS: Partial<FeederConfig> = { gRPC: 0, bind: '127.0.0.1', gRPCHealthPort: -1, metricsPort: -1, source: ['none'] };

/** createFeeder on IN_PROCESS with the test's own settings on top. */
export function startFeeder(config: Partial<FeederConfig> = {}): Promise<Feeder> {
  return createFeeder({ ...IN_PROCESS, ...config });
}

/** Streams the feeder has registered and not yet removed, of one kind (alerts, logs, messages) or of all. */
export function openCount(feeder: Feeder, stream?: string): number {
  return feeder.stats().clients.filter((c) => c.open && (stream === undefined || c.stream === stream)).length;
}

export interface WatchedFeeder {
  feeder: Feeder;
  tc: TestClient;
  /** One per requested stream, in the order asked for. */
  watchers: Watcher[];
  /** Cancels the watchers, closes the client, then closes the feeder. */
  close(): Promise<void>;
}

/**
 * Starts a feeder, opens `streams` on one client and waits (`until`, named `what`) until
 * the feeder counts that many open streams (of kind `countStream` only, when given), so a
 * test never pushes before its clients are there. Cleans up if the wait fails.
 */
export async function startWatched(
  config: Partial<FeederConfig>,
  streams: readonly (readonly [Rpc, string, Record<string, string>?])[],
  what: string,
  countStream?: string,
): Promise<WatchedFeeder> {
  const feeder = await startFeeder(config);
  const { tc, watchers, close: closeStreams } = openStreams(feeder.addresses.grpc, streams);
  const close = async (): Promise<void> => {
    closeStreams();
    await feeder.close();
  };
  try {
    await until(what, () => openCount(feeder, countStream) === streams.length);
  } catch (err) {
    await close();
    throw err;
  }
  return { feeder, tc, watchers, close };
}
