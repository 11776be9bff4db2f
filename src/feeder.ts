/**
 * The wiring, in one place:
 *
 *   sources (ingest threads) --> rings (SharedArrayBuffer) --> encoders (piscina)
 *        --> fan-out (main thread, per-client bounded queues) --> gRPC (grpc-js)
 *
 * `createFeeder` starts every stage and returns the embedding API: push(), stats(),
 * close(). The CLI's `serve` is a thin layer over it.
 */
import * as os from 'node:os';
import { Packr } from 'msgpackr';
import { defaultConfig, readNodeID, ringSizeFor, validate, whenFullFor, type FeederConfig } from './config';
import { EncodeStage, MAX_MESSAGE_BYTES, type EncodedBatch, type EncoderSettings } from './encode';
import { ArmorfeedError, FeederClosedError, InputError } from './errors';
import type { IngestEvent } from './event';
import { Exporter } from './export';
import { ClientDropReporter, FanoutHub } from './fanout';
import { Admission, SupervisedSource, warmUpEvents, type RestartReason } from './ingest';
import { DaemonLog, notShown, RateLimitedNotice } from './messages';
import { LogPathOutput } from './output';
import { allocateRing, RingProducer, type RingConsumer } from './ring';
import { closeClients, MainLoopMonitor, startServer, type RunningServer, type ServerAddresses, type WriteMode } from './server';
import { startMetrics, type MetricsServer } from './metrics';
import { assembleStats, inProcessSource, sourceStats, type FeederStats, type SourceStats } from './stats';
import { ServerTls } from './tls';
import { nowMicros } from './wire/time';

export type { ClientStats, FeederStats, SourceStats } from './stats';
export type { LatencySummary } from './latency';

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

/** The main thread's check of wedged threads and tasks (feeder.ts watchdog). */
const WATCHDOG_MS = 250;

function hostIP(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '';
}

/** A ring holding one batch of synthetic events of every shape, for EncodeStage.warmUp. */
function warmUpSample(config: FeederConfig): SharedArrayBuffer {
  const packr = new Packr({ useRecords: false });
  const now = nowMicros();
  const events = warmUpEvents({ cluster: config.cluster, host: config.host, alertEvery: 3 }, now, (v) => packr.pack(v));
  const ring = allocateRing(512 * 1024) // 512 sample records of ~700 bytes;
  const producer = new RingProducer(ring);
  for (let i = 0; i < Math.min(512, config.batchSize); i++) producer.offer(events[i % events.length], now);
  return ring;
}

export async function createFeeder(partial: Partial<FeederConfig> = {}, options: FeederOptions = {}): Promise<Feeder> {
  const config = validate({ ...defaultConfig(), ...partial });
  const started = Date.now();
  const log = new DaemonLog({ cluster: config.cluster, host: config.host, hostIP: hostIP(), debug: config.debug, echo: options.echo ?? false });
  const hub = new FanoutHub({ enabled: config.alertThrottling, maxAlertPerSec: config.maxAlertPerSec, throttleSec: config.throttleSec }, config.host);
  // The export takes the same bytes as the fan-out, beside it: set before any event exists.
  let exporter: Exporter | undefined;
  log.attach((encoded, us) => {
    hub.publishMessage(encoded, us);
    exporter?.offerMessage(encoded);
  });
  // First, so that a missing or bad certificate stops the start before anything runs.
  const tls = config.tlsEnabled ? await ServerTls.start({ certPath: config.tlsCertPath, provider: config.tlsCertProvider, log }) : undefined;
  if (config.export !== '') {
    // A stream that does not take our subjects stops the start here; an unreachable NATS does not.
    try {
      exporter = new Exporter(config, log);
      await exporter.started();
    } catch (err) {
      tls?.close();
      throw err;
    }
  }
  const output = LogPathOutput.open(config.logPath);
  const dropped = { encode_error: 0, encoded_oversized: 0 };
  // Every WARN (and ERROR) a peer can cause is rate limited, counting what it leaves out.
  const malformedNotice = new RateLimitedNotice(1000);
  const disconnectNotice = new RateLimitedNotice(1000);
  const encodeErrorNotice = new RateLimitedNotice(1000);
  const oversizedNotice = new RateLimitedNotice(1000);
  // Whoever may rewrite a followed file can rotate it as often as the 100 ms poll sees.
  const rotationNotice = new RateLimitedNotice(1000);
  const clientDrops = new ClientDropReporter(hub, log);

  const settings: EncoderSettings = {
    cluster: config.cluster,
    host: config.host,
    nodeID: readNodeID(config),
    dropResourceFromProcessLogs: config.dropResourceFromProcessLogs,
    throttling: config.alertThrottling,
    logLines: output !== undefined,
  };
  const onBatch = (batch: EncodedBatch): void => {
    if (output !== undefined && batch.logLines !== '') output.write(batch.logLines, batch.alerts.count + batch.logs.count);
    hub.publishBatch(batch);
    exporter?.offerBatch(batch);
    if (batch.failed > 0) {
      dropped.encode_error += batch.failed;
      const suppressed = encodeErrorNotice.take();
      if (suppressed >= 0) log.error(`encoder could not decode ${batch.failed} ring records (dropped as encode_error): ${batch.failure}${notShown(suppressed)}`);
    }
    if (batch.oversized > 0) {
      dropped.encoded_oversized += batch.oversized;
      const suppressed = oversizedNotice.take();
      if (suppressed >= 0) {
        log.warn(
          `dropped ${batch.oversized} events as encoded_oversized: encoded to up to ${batch.oversizedBytes} bytes, over the ${MAX_MESSAGE_BYTES} a gRPC client (karmor) accepts${notShown(suppressed)}`,
        );
      }
    }
  };
  const pool = new EncodeStage(
    settings,
    { threads: config.encoderThreads, maxBatchEvents: config.batchSize, maxBatchBytes: Math.max(config.maxEventBytes, 4 << 20), inlineMaxEvents: config.inlineMaxEvents, outputSlabs: config.outputSlabs },
    onBatch,
    (failure) => {
      dropped.encode_error += failure.events;
      const suppressed = encodeErrorNotice.take();
      if (suppressed >= 0) log.error(`encoder task failed for ${failure.events} events from ${failure.source} (dropped as encode_error): ${failure.message}${notShown(suppressed)}`);
    },
    () => hub.hasFilteredSubscribers(),
  );

  pool.warmUp(warmUpSample(config));
  await pool.workersWarm();

  const consumers = new Map<string, RingConsumer>();
  const mainLoop = new MainLoopMonitor();
  let server: RunningServer | undefined;
  let metrics: MetricsServer | undefined;
  const threads: SupervisedSource[] = [];
  const finishWaiters: (() => void)[] = [];
  // --wait-clients holds back the sources that run on their own and could be over before
  // a client connects (a synthetic count, a jsonl replay of a file or stdin); socket and
  // TCP producers are not held back.
  const gated = config.waitClients > 0;
  const gatedKinds: readonly string[] = ['synthetic', 'jsonl'];
  const checkFinished = (): void => {
    if (threads.every((t) => t.finished || t.failed || !['synthetic', 'jsonl'].includes(t.kind)) && !config.follow) {
      void pool.drain().then(() => finishWaiters.splice(0).forEach((f) => f()));
    }
  };
  /** Producer connections the broker closed or refused, per source and code. */
  const disconnects = new Map<string, Map<string, number>>();
  const sourceEvents = {
    onRejected: (source: string, msg: { code: string; reason: string; message: string; peer: string }) => {
      const suppressed = malformedNotice.take();
      if (suppressed >= 0) log.warn(`malformed_input from ${source} (${msg.peer}): ${msg.code}: ${msg.message}${notShown(suppressed)}`);
    },
    onDisconnected: (source: string, msg: { peer: string; code: string; message: string }) => {
      const byCode = disconnects.get(source) ?? new Map<string, number>();
      disconnects.set(source, byCode);
      byCode.set(msg.code, (byCode.get(msg.code) ?? 0) + 1);
      const suppressed = disconnectNotice.take();
      if (suppressed >= 0) log.warn(`disconnected ${msg.peer} from ${source}: ${msg.code}: ${msg.message}${notShown(suppressed)}`);
    },
    onFinished: (source: string, msg: { unit: string; read: number; events: number; rejected: number; ringFull: number; elapsedMs: number }) => {
      log.info(
        `source ${source} finished: ${msg.events} events admitted of ${msg.read} ${msg.unit} (${msg.rejected} rejected as malformed_input, ${msg.ringFull} dropped as ring_full) in ${(msg.elapsedMs / 1000).toFixed(3)} s`,
      );
      checkFinished();
    },
    onRotated: (source: string, msg: { path: string; how: string }) => {
      const suppressed = rotationNotice.take();
      if (suppressed >= 0) log.info(`source ${source}: ${msg.path} was ${msg.how === 'renamed' ? 'replaced (renamed or removed)' : 'truncated'}; reading the new file from its start${notShown(suppressed)}`);
    },
    onFatal: (source: string, msg: { code: string; message: string }) => {
      log.error(`source ${source} failed: ${msg.code}: ${msg.message}`);
    },
    onFailed: (source: string, why: string) => {
      // A source that is gone is not a state to serve in: probes and load balancers
      // should see it, and the events it would have read are nowhere else.
      log.error(`${why}; no events are read from ${source}: health is NOT_SERVING`);
      refreshHealth();
      checkFinished();
    },
    onRestartScheduled: (source: string, reason: RestartReason, delayMs: number) => {
      log.info(`restarting the ingest thread of source ${source} (${reason}) in ${delayMs} ms`);
    },
    onRestartFailed: (source: string, message: string) => {
      log.error(`the restarted ingest thread of source ${source} did not start: ${message}`);
    },
    onRecovered: (source: string, reason: RestartReason, address: string) => {
      log.info(`source ${source} restarted (${reason}) on ${address}: reading again`);
      refreshHealth();
    },
  };
  for (const kind of config.source) {
    if (kind === 'none') continue;
    const ring = allocateRing(ringSizeFor(config, kind));
    const consumer = pool.addRing(kind, ring);
    consumers.set(kind, consumer);
    threads.push(new SupervisedSource(kind, kind, ring, consumer, config, gated && gatedKinds.includes(kind), sourceEvents));
  }

  let closing: Promise<FeederStats> | undefined;
  let serving = true;
  /**
   * grpc.health.v1 says SERVING only while every part works: no source down (dead, or
   * wedged and not yet restarted) and no encoder task overdue. Not after close() began.
   */
  function refreshHealth(): void {
    const now = threads.every((t) => !t.failed) && !pool.hasOverdueTask();
    if (now === serving || closing !== undefined) return;
    serving = now;
    server?.setServing(now);
  }

  /** push()'s ring, made on the first push, and its admission: the same as an ingest thread's. */
  let embedded: Admission | undefined;

  const stats = (): FeederStats => {
    const ingest: Record<string, SourceStats> = {};
    for (const [name, consumer] of consumers) {
      const t = threads.find((x) => x.name === name);
      const state = t !== undefined ? { kind: t.kind, address: t.address, whenFull: whenFullFor(config, t.kind), finished: t.finished, failed: t.failed, restarts: t.restarts } : inProcessSource(name);
      ingest[name] = sourceStats(consumer.stats(), state, disconnects.get(name));
    }
    return assembleStats({
      startedMs: started,
      hub,
      mainLoop: mainLoop.stats(server?.mainLoopStalls() ?? 0),
      ingest,
      encoders: { batches: pool.batches, inlineBatches: pool.inlined, encoderThreads: config.encoderThreads, encoderThreadsRunning: pool.threads, encoderRestarts: pool.encoderRestarts, outputSlabs: pool.slabs.stats() },
      dropped: { ...dropped, output_backpressure: output?.dropped ?? 0 },
      tls: tls?.stats(),
      export: exporter?.stats(),
    });
  };

  try {
    await Promise.all(threads.map((t) => t.whenReady()));
    server = await startServer(
      { bind: config.bind, port: config.gRPC, healthPort: config.gRPCHealthPort, queueSize: config.queueSize, writeMode: options.writeMode, slabs: pool.slabs, credentials: tls?.credentials, mainLoopStallMs: config.mainLoopStallMs },
      hub,
      log,
    );
    if (config.metricsPort >= 0) metrics = await startMetrics(config.metricsBind, config.metricsPort, stats, config.metricsTLS ? tls : undefined);
  } catch (err) {
    // Whatever did start is stopped again, so a failed start leaves nothing running.
    tls?.close();
    await exporter?.close();
    await server?.shutdown(0);
    await Promise.all(threads.map((t) => t.stop(500)));
    await pool.close();
    await output?.close();
    throw err instanceof ArmorfeedError ? err : new ArmorfeedError('ERR_CONFIG_INVALID', `cannot start: ${(err as Error).message}`);
  }
  const running = server;
  if (!serving) running.setServing(false);

  let startedSources = !gated;
  if (gated) {
    hub.onSubscribersChanged(() => {
      if (!startedSources && hub.count() >= config.waitClients) {
        startedSources = true;
        // "generating with N streams" is gofeeder's wording, which bench:peers waits for.
        log.info(`generating with ${hub.count()} streams connected: starting ${threads.filter((t) => gatedKinds.includes(t.kind)).map((t) => t.name).join(', ')}`);
        for (const t of threads) if (gatedKinds.includes(t.kind)) t.start();
      }
    });
  }

  // Client queue drops (once per crossing, at most once per 10 s: fanout/stats.ts), and
  // what the per-second notices left out.
  const dropWatch = setInterval(() => {
    // The tail of a burst of rate-limited lines is told within a second or two.
    let n = malformedNotice.takeSuppressed();
    if (n > 0) log.warn(`malformed_input:${notShown(n)}`);
    n = disconnectNotice.takeSuppressed();
    if (n > 0) log.warn(`disconnected:${notShown(n)}`);
    n = encodeErrorNotice.takeSuppressed();
    if (n > 0) log.error(`encode_error:${notShown(n)}`);
    n = oversizedNotice.takeSuppressed();
    if (n > 0) log.warn(`encoded_oversized:${notShown(n)}`);
    n = rotationNotice.takeSuppressed();
    if (n > 0) log.info(`file rotations:${notShown(n)}`);
    clientDrops.tick();
  }, 1000);
  dropWatch.unref();

  // The watchdog: wedged ingest threads (no heartbeat) and encoder tasks (over
  // encoderTaskTimeoutMs) are ended here, and health follows what is up.
  let lastWatchdogMs = Date.now();
  const watchdog = setInterval(() => {
    const now = Date.now();
    // The health port's thread said NOT_SERVING during a stall this long; say it here too, afterwards.
    const lateMs = now - lastWatchdogMs - WATCHDOG_MS;
    lastWatchdogMs = now;
    if (lateMs > config.mainLoopStallMs) log.warn(`the main loop did not run for ${lateMs} ms (over mainLoopStallMs ${config.mainLoopStallMs}): the health port said NOT_SERVING meanwhile`);
    for (const t of threads) t.checkHeartbeat(now);
    const aborted = pool.abortOverdueTasks(config.encoderTaskTimeoutMs);
    if (aborted > 0) log.error(`${aborted} encoder task(s) ran over ${config.encoderTaskTimeoutMs} ms (encoderTaskTimeoutMs): their threads are replaced, their events dropped as encode_error`);
    refreshHealth();
  }, WATCHDOG_MS);
  watchdog.unref();


  const addresses: FeederAddresses = {
    grpc: running.grpcAddress,
    health: running.healthAddress,
    metrics: metrics?.address,
    sources: Object.fromEntries(threads.map((t) => [t.name, t.address])),
  };

  const close = (): Promise<FeederStats> => {
    closing ??= (async () => {
      clearInterval(dropWatch);
      clearInterval(watchdog);
      await Promise.all(threads.map((t) => t.stop(2000)));
      embedded?.close();
      const deadline = Date.now() + config.gracePeriodMs;
      const encoded = Promise.race([pool.drain(), new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
      // Clients and the export flush side by side, within the same grace period.
      await Promise.all([closeClients(hub, running, deadline, encoded), encoded.then(() => exporter?.flush(deadline))]);
      // The daemon's last messages (clients leaving) get what is left of the grace period;
      // what the export could not flush is counted export_shutdown before the final stats.
      await exporter?.flush(deadline);
      await exporter?.close();
      const final = stats();
      mainLoop.stop();
      await pool.close();
      await metrics?.close();
      await output?.close();
      tls?.close();
      return final;
    })();
    return closing;
  };

  return {
    config,
    addresses,
    log,
    push(event: IngestEvent): boolean {
      if (closing !== undefined) throw new FeederClosedError('push() after close()');
      if (embedded === undefined) {
        const ring = allocateRing(ringSizeFor(config, 'embedded'));
        consumers.set('embedded', pool.addRing('embedded', ring));
        // Rejections are thrown to the caller, who is the one to tell: no samples to report.
        embedded = new Admission(ring, { postMessage: () => undefined }, 'drop');
      }
      const admitted = embedded.admit(event, nowMicros(), 'embedded');
      if (admitted instanceof InputError) throw admitted;
      return admitted === 'queued';
    },
    stats,
    sourcesFinished(): Promise<void> {
      return new Promise((resolve) => {
        finishWaiters.push(resolve);
        checkFinished();
      });
    },
    close,
  };
}
