/**
 * The feeder's started stages, and what is done to all of them together: the stats
 * read from them, the graceful close, and the undoing of a start that failed half way.
 */
import type { FeederConfig } from '../config';
import type { EncodeStage } from '../encode';
import type { NodeExport } from '../export';
import type { FanoutHub } from '../fanout';
import type { MetricsServer } from '../metrics';
import type { LogPathOutput } from '../output';
import { closeClients, type MainLoopMonitor, type RunningServer } from '../server';
import { assembleStats, type FeederStats } from '../stats';
import type { ServerTls } from '../tls';
import type { BatchRouter } from './encoding';
import type { HealthWatch } from './health';
import type { FeederNotices } from './notices';
import type { IngestSources } from './sources';

export interface Stages {
  readonly config: FeederConfig;
  /** When the feeder started, ms since the epoch. */
  readonly startedMs: number;
  readonly hub: FanoutHub;
  readonly tls: ServerTls | undefined;
  readonly exporter: NodeExport | undefined;
  readonly output: LogPathOutput | undefined;
  readonly notices: FeederNotices;
  readonly router: BatchRouter;
  readonly encode: EncodeStage;
  readonly sources: IngestSources;
  readonly health: HealthWatch;
  readonly mainLoop: MainLoopMonitor;
  server?: RunningServer;
  metrics?: MetricsServer;
}

export function feederStats(s: Stages): FeederStats {
  const { encode } = s;
  return assembleStats({
    startedMs: s.startedMs,
    hub: s.hub,
    mainLoop: s.mainLoop.stats(s.server?.mainLoopStalls() ?? 0),
    ingest: s.sources.stats(),
    encoders: { batches: encode.batches, inlineBatches: encode.inlined, encoderThreads: s.config.encoderThreads, encoderThreadsRunning: encode.threads, encoderRestarts: encode.encoderRestarts, outputSlabs: encode.slabs.stats() },
    dropped: { ...s.router.dropped, output_backpressure: s.output?.dropped ?? 0 },
    tls: s.tls?.stats(),
    export: s.exporter?.stats(),
  });
}

/** Graceful stop: ingest, drain, flush clients and the export within the grace period, end streams with OK; resolves to the final stats. */
export async function closeStages(s: Stages, server: RunningServer): Promise<FeederStats> {
  s.notices.stop();
  s.health.stop();
  await s.sources.stop(2000);
  const deadline = Date.now() + s.config.gracePeriodMs;
  const encoded = Promise.race([s.encode.drain(), new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
  // Clients and the export flush side by side, within the same grace period.
  await Promise.all([closeClients(s.hub, server, deadline, encoded), encoded.then(() => s.exporter?.flush(deadline))]);
  // The daemon's last messages (clients leaving) get what is left of the grace period;
  // what the export could not flush is counted export_shutdown before the final stats.
  await s.exporter?.flush(deadline);
  await s.exporter?.close();
  const final = feederStats(s);
  s.mainLoop.stop();
  await s.encode.close();
  await s.metrics?.close();
  await s.output?.close();
  s.tls?.close();
  return final;
}

/** Whatever did start is stopped again, so a failed start leaves nothing running. */
export async function stopAfterFailedStart(s: Stages): Promise<void> {
  s.tls?.close();
  await s.exporter?.close();
  await s.server?.shutdown(0);
  await s.sources.stop(500);
  await s.encode.close();
  await s.output?.close();
}
