/**
 * The wiring, in one place:
 *
 *   sources (ingest threads) --> rings (SharedArrayBuffer) --> encoders (piscina)
 *        --> fan-out (main thread, per-client bounded queues) --> gRPC (grpc-js)
 *
 * `createFeeder` starts every stage and returns the embedding API: push(), stats(),
 * close(). The CLI's `serve` is a thin layer over it. What it wires, each in a file of
 * its own: the sources and push()'s ring (sources.ts), the encoders and where their
 * batches go (encoding.ts), health and the watchdog (health.ts), the rate-limited WARN
 * lines (notices.ts), and the stats, close and undoing of a failed start over all the
 * stages (stages.ts; the stats object itself is defined and assembled in src/stats).
 */
import * as os from 'node:os';
import { defaultConfig, validate, type FeederConfig } from '../config';
import { ArmorfeedError, FeederClosedError } from '../errors';
import type { IngestEvent } from '../event';
import { ExportThread, type NodeExport } from '../export';
import { FanoutHub } from '../fanout';
import { DaemonLog } from '../messages';
import { startMetrics } from '../metrics';
import { LogPathOutput } from '../output';
import { MainLoopMonitor, startServer, type ServerAddresses, type WriteMode } from '../server';
import type { FeederStats } from '../stats';
import { ServerTls } from '../tls';
import { BatchRouter, startEncodeStage } from './encoding';
import { HealthWatch } from './health';
import { FeederNotices } from './notices';
import { IngestSources } from './sources';
import { closeStages, feederStats, stopAfterFailedStart, type Stages } from './stages';

export type { ClientStats, FeederStats, SourceStats } from '../stats';
export type { LatencySummary } from '../latency';

export type FeederAddresses = ServerAddresses;

export interface Feeder {
  readonly config: FeederConfig;
  readonly addresses: FeederAddresses;
  readonly log: DaemonLog;
  /** Validates one event and queues it; false when the ring is full (counted ring_full). Throws InputError on bad input. */
  push(event: IngestEvent): boolean;
  stats(): FeederStats;
  /** Resolves when every source that ends (count, file) has ended and everything it produced was fanned out. */
  sourcesFinished(): Promise<void>;
  /** Graceful stop: ingest, drain, flush within the grace period, end streams with OK. */
  close(): Promise<FeederStats>;
}

export interface FeederOptions {
  /** Echo daemon messages to stderr (the CLI does). */
  echo?: boolean;
  /** Force grpc-js's per-message write path (benchmarks, tests). */
  writeMode?: WriteMode;
}

export async function createFeeder(partial: Partial<FeederConfig> = {}, options: FeederOptions = {}): Promise<Feeder> {
  const config = validate({ ...defaultConfig(), ...partial });
  const startedMs = Date.now();
  const log = new DaemonLog({ cluster: config.cluster, host: config.host, hostIP: hostIP(), debug: config.debug, echo: options.echo ?? false });
  const hub = new FanoutHub({ enabled: config.alertThrottling, maxAlertPerSec: config.maxAlertPerSec, throttleSec: config.throttleSec }, config.host);
  // The export takes the same bytes as the fan-out, beside it: set before any event exists.
  let exporter: NodeExport | undefined;
  log.attach((encoded, us) => {
    hub.publishMessage(encoded, us);
    exporter?.offerMessage(encoded);
  });
  // First, so that a missing or bad certificate stops the start before anything runs.
  const tls = config.tlsEnabled ? await ServerTls.start({ certPath: config.tlsCertPath, provider: config.tlsCertProvider, log }) : undefined;
  try {
    // A stream that does not take our subjects stops the start here; an unreachable NATS does not.
    exporter = config.export !== '' ? ExportThread.openOwned(config, log) : undefined;
    await exporter?.started();
  } catch (err) {
    tls?.close();
    throw err;
  }
  const output = LogPathOutput.open(config.logPath);
  const notices = new FeederNotices(log, hub);
  const router = new BatchRouter(hub, output, exporter, notices);
  const encode = await startEncodeStage(config, router, hub, output !== undefined);
  const sources = new IngestSources(config, encode, log, notices, () => health.refresh());
  const health = new HealthWatch(config, log, encode, sources);
  const stages: Stages = { config, startedMs, hub, tls, exporter, output, notices, router, encode, sources, health, mainLoop: new MainLoopMonitor() };
  const stats = (): FeederStats => feederStats(stages);

  try {
    await sources.ready();
    stages.server = await startServer(
      { bind: config.bind, port: config.gRPC, healthPort: config.gRPCHealthPort, queueSize: config.queueSize, writeMode: options.writeMode, slabs: encode.slabs, credentials: tls?.credentials, mainLoopStallMs: config.mainLoopStallMs },
      hub,
      log,
    );
    if (config.metricsPort >= 0) stages.metrics = await startMetrics(config.metricsBind, config.metricsPort, stats, config.metricsTLS ? tls : undefined);
  } catch (err) {
    await stopAfterFailedStart(stages);
    throw err instanceof ArmorfeedError ? err : new ArmorfeedError('ERR_CONFIG_INVALID', `cannot start: ${(err as Error).message}`);
  }
  const running = stages.server;
  health.serveOn(running);
  sources.startWhenClients(hub);
  notices.start();
  health.start();

  let closing: Promise<FeederStats> | undefined;
  return {
    config,
    addresses: { grpc: running.grpcAddress, health: running.healthAddress, metrics: stages.metrics?.address, sources: sources.addresses() },
    log,
    push(event: IngestEvent): boolean {
      if (closing !== undefined) throw new FeederClosedError('push() after close()');
      return sources.push(event);
    },
    stats,
    sourcesFinished: () => sources.finished(),
    close: () => (closing ??= closeStages(stages, running)),
  };
}

function hostIP(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '';
}
