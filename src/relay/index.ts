/**
 * `armorfeed relay`: one feeder.LogService for many nodes, through the same server,
 * fan-out, per-client queues, filters, health and metrics as `serve`, from one of two
 * sources.
 *
 * Feeders mode (`--feeders`) dials every node's feeder and serves the merged streams again:
 *
 *   node feeders --Watch* (3 streams each, reconnecting on their own)--> Upstream
 *     --protobuf bytes as they arrived--> RelayBatcher (one batch per node per tick)
 *     --> FanoutHub (per-client bounded queues) --> gRPC (grpc-js) --> clients
 *                  └─> RelayExports (--export: each node on JetStream, export.ts)
 *
 * Events a node produced while the relay was not connected to it are not recovered (the
 * protocol has no replay); the time each stream was disconnected is counted instead.
 * Health (grpc.health.v1) is SERVING while at least one upstream has a stream open, and
 * NOT_SERVING while none has (all unreachable, or none listed): a relay with nothing to
 * relay is not one to send clients to, while one node down in a cluster must not take
 * the relay out of service for all the others. HealthCheck still echoes every nonce, as
 * upstream's feeder and relay do (karmor aborts on anything else).
 *
 * JetStream mode (`--from`, jetstream.ts) consumes what the nodes exported, with ordered
 * consumers of its own, counts holes in each node's sequence (upstream_gap), and serves
 * replays (replay.ts) on consumers of the replaying client's own. The NATS client runs on
 * a thread of its own (jetstream.worker.ts, with jetstream.ts), which posts the events in
 * batches, framed and grouped per node, one buffer each (eventBatch.ts); the main
 * thread's side is jetstreamThread.ts, and what crosses is in jetstreamProtocol.ts:
 *
 *   JetStream --ordered consumer per filter--> [JetStream thread] --event batches--> JetStreamThread --> RelayBatcher --> FanoutHub --> clients
 *   JetStream --ordered consumers per replaying client, paced by it--> [JetStream thread] --> RelayBatcher --> FanoutHub (its own) --> that client
 *
 * Nothing is decoded and encoded again: an event leaves with the bytes it came with.
 */
import * as os from 'node:os';
import { defaultConfig, validate, type FeederConfig } from '../config';
import { ArmorfeedError, ConfigError } from '../errors';
import { parseServers } from '../export';
import { ClientDropReporter, FanoutHub } from '../fanout';
import { DaemonLog } from '../messages';
import { startMetrics, type MetricsServer } from '../metrics';
import { closeClients, MainLoopMonitor, startServer, type RunningServer, type ServerAddresses } from '../server';
import { assembleStats, type EncoderStats, type FeederStats } from '../stats';
import { loadClientTls, ServerTls } from '../tls';
import { RelayBatcher } from './batcher';
import { FeedersFile, parseFeedersOption } from './feeders';
import { warmUpFeedersPath } from './warmUp';
import { Upstream } from './upstream';
import { isSubjectFilter } from './jetstream';
import { JetStreamThread } from './jetstreamThread';
import { Replays } from './replay';
import { RelayExports } from './export';

export { parseFeedersOption, parseFeedersText, FEEDERS_POLL_MS } from './feeders';
export { scanEvent, newEventFields, fieldString, FIELD_HOST, FIELD_NAMESPACE, FIELD_OPERATION, FIELD_TYPE, type EventKind } from './scan';
export type { RelayStats, UpstreamStats, UpstreamStreamStats, UpstreamStreamState, NodeCounts, JetStreamSourceStats, ConsumerStats, ConsumerState, NatsState, NodeRunStats, ReplayStats } from '../stats';
export { LINK_LINE_BURST, LINK_LINE_REFILL_MS, type UpstreamLink } from './linkLog';
export { parseReplayRequest } from './replay';
export { filterForKind } from './jetstream';
export { warmUpFeedersPath, WARM_UP_ROUNDS, WARM_UP_SAMPLE_EVENTS, type WarmUpResult } from './warmUp';

/** Which source the relay reads: exactly one of --from and --feeders. */
function relaySource(config: FeederConfig): 'jetstream' | 'feeders' {
  const from = config.from.trim() !== '';
  const feeders = config.feeders.trim() !== '';
  if (from && feeders) throw new ConfigError('from', '--from (JetStream) and --feeders (the nodes\' feeders) are exclusive: give one');
  if (!from && !feeders) throw new ConfigError('from', 'is required, or --feeders: nats://HOST:PORT,... of the JetStream to relay from, or HOST:PORT,... of the feeders to dial');
  return from ? 'jetstream' : 'feeders';
}

/** --subjects, or the whole prefix; each checked. */
function subjectFilters(config: FeederConfig): string[] {
  const list = config.subjects.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (list.length === 0) return [`${config.exportSubjectPrefix}.>`];
  for (const f of list) {
    if (!isSubjectFilter(f)) throw new ConfigError('subjects', `${JSON.stringify(f)} is not a NATS subject filter (dot-separated tokens, * for one token, > last)`);
  }
  return [...new Set(list)];
}

export interface Relay {
  readonly config: FeederConfig;
  readonly addresses: ServerAddresses;
  readonly log: DaemonLog;
  stats(): FeederStats;
  /** Replaces the list of upstreams (what a feeders file change does). */
  setFeeders(targets: readonly string[]): void;
  /** Stops the upstreams, flushes client queues within the grace period, ends streams with OK. */
  close(): Promise<FeederStats>;
}

export interface RelayOptions {
  /** Echo daemon messages to stderr (the CLI does). */
  echo?: boolean;
}

/** The relay encodes nothing: it passes on the bytes it received (its batches are counted). */
const noEncoders: EncoderStats = { batches: 0, inlineBatches: 0, encoderThreads: 0, encoderThreadsRunning: 0, encoderRestarts: 0, outputSlabs: { slabs: 0, slabBytes: 0, inUse: 0, exhausted: 0, quarantined: 0 } };

export async function createRelay(partial: Partial<FeederConfig> = {}, options: RelayOptions = {}): Promise<Relay> {
  const config = validate({ ...defaultConfig(), ...partial });
  const mode = relaySource(config);
  const source = mode === 'feeders' ? parseFeedersOption(config.feeders) : { kind: 'list' as const, targets: [] };
  const filters = mode === 'jetstream' ? subjectFilters(config) : [];
  const started = Date.now();
  const log = new DaemonLog({ cluster: config.cluster, host: config.host, hostIP: '', debug: config.debug, echo: options.echo ?? false });
  // The nodes throttled their alerts already: throttling them again would only lose more.
  const hub = new FanoutHub({ enabled: false, maxAlertPerSec: config.maxAlertPerSec, throttleSec: config.throttleSec }, config.host);
  if (mode === 'jetstream' && config.export !== '') {
    throw new ConfigError('export', 'cannot be used with --from: the relay would publish back to JetStream what it consumes from it; --export goes with --feeders');
  }
  // --export: set before any event exists, so the relay's first daemon messages are exported too.
  const exports = config.export !== '' ? new RelayExports({ ...config }, log) : undefined;
  log.attach((encoded, us) => {
    hub.publishMessage(encoded, us);
    exports?.offerMessage(encoded);
  });
  const tls = config.tlsEnabled ? await ServerTls.start({ certPath: config.tlsCertPath, provider: config.tlsCertProvider, log }) : undefined;
  try {
    // A stream that does not take our subjects stops the start here; an unreachable NATS does not.
    await exports?.start();
  } catch (err) {
    tls?.close();
    throw err;
  }
  // As upstream's relay: with TLS, mutual TLS towards the nodes too, from the same directory.
  const clientTls = config.tlsEnabled ? await loadClientTls(config.tlsCertPath, config.tlsCertProvider, 'tlsCertPath') : undefined;

  const batcher = new RelayBatcher(
    hub,
    exports !== undefined ? { batch: (batch, node) => exports.offerBatch(batch, node), message: (message, node) => exports.offerMessage(message, node) } : undefined,
  );
  const upstreams = new Map<string, Upstream>();
  let closing: Promise<FeederStats> | undefined;
  let server: RunningServer | undefined;
  /** What grpc.health.v1 says (from the start: NOT_SERVING until a source is there). */
  let serving = false;
  const setServing = (now: boolean): void => {
    if (now === serving) return;
    serving = now;
    if (closing === undefined) server?.setServing(now);
  };
  /** Feeders mode: SERVING while an upstream has a stream open (connected or partly). */
  const refreshFeedersHealth = (): void => {
    if (mode !== 'feeders' || closing !== undefined) return;
    const now = [...upstreams.values()].some((u) => u.link().open.length > 0);
    if (now === serving) return;
    if (now) log.info('relay: an upstream is connected: health SERVING');
    else log.warn(`relay: no upstream has a stream open (${upstreams.size} listed): health NOT_SERVING until one has`);
    setServing(now);
  };
  const upstreamOptions = {
    backoff: { initialMs: config.relayBackoffInitialMs, maxMs: config.relayBackoffMaxMs },
    healthTimeoutMs: config.relayHealthTimeoutMs,
    ...(clientTls !== undefined ? { tls: { ca: clientTls.rootCerts, cert: clientTls.certChain, key: clientTls.privateKey } } : {}),
    clientName: `armorfeed-relay@${os.hostname()}`,
    onLinkChange: refreshFeedersHealth,
  };
  const setFeeders = (targets: readonly string[]): void => {
    if (closing !== undefined) return;
    const wanted = new Set(targets);
    for (const [id, u] of upstreams) {
      if (wanted.has(id)) continue;
      u.stop();
      upstreams.delete(id);
      log.info(`relay: upstream ${id} removed`);
    }
    for (const id of wanted) {
      if (upstreams.has(id)) continue;
      const u = new Upstream(id, upstreamOptions, (kind, message, us) => batcher.add(kind, message, us), log);
      upstreams.set(id, u);
      log.info(`relay: upstream ${id} added`);
      u.start();
    }
    refreshFeedersHealth();
  };

  const mainLoop = new MainLoopMonitor();
  const stats = (): FeederStats =>
    assembleStats({
      startedMs: started,
      hub,
      mainLoop: mainLoop.stats(server?.mainLoopStalls() ?? 0),
      ingest: {},
      encoders: { ...noEncoders, batches: batcher.batches },
      dropped: { encode_error: 0, encoded_oversized: 0, output_backpressure: 0 },
      tls: tls?.stats(),
      export: exports?.ownStats(),
      relay: {
        mode,
        serving,
        ...(exports !== undefined ? { exports: exports.stats(), exportNodesOverLimit: exports.overLimit } : {}),
        ...(source.kind === 'file' ? { feedersFile: source.path } : {}),
        upstreams: [...upstreams.values()].map((u) => u.stats()),
        nodes: Object.fromEntries([...batcher.nodes].map(([node, c]) => [node, { ...c }])),
        batches: batcher.batches,
        ...(jetstream !== undefined && replays !== undefined ? { jetstream: { ...jetstream.stats(), replays: { ...replays.counts } } } : {}),
        dropped: { malformed_upstream: batcher.malformed, upstream_gap: jetstream?.sequences.gapsTotal ?? 0 },
      },
    });

  const jetstream =
    mode === 'jetstream'
      ? new JetStreamThread({ nats: { ...config }, servers: parseServers(config.from, 'from'), name: `armorfeed-relay@${os.hostname()}`, stream: config.exportStream, filters: [...filters] }, batcher, log, setServing)
      : undefined;
  // The thread fills the filter attributes only while a client of the shared feed filters on the server.
  if (jetstream !== undefined) hub.onSubscribersChanged(() => jetstream.setAttrsWanted(hub.hasFilteredSubscribers()));
  const replays =
    jetstream !== undefined ? new Replays(jetstream, { limit: config.relayMaxReplays, filters, prefixTokens: config.exportSubjectPrefix.split('.').length, host: config.host }, log) : undefined;
  let metrics: MetricsServer | undefined;
  try {
    server = await startServer(
      { bind: config.bind, port: config.gRPC, healthPort: config.gRPCHealthPort, queueSize: config.queueSize, credentials: tls?.credentials, mainLoopStallMs: config.mainLoopStallMs, serving, ...(replays !== undefined ? { route: replays.route } : {}) },
      hub,
      log,
    );
    // NOT_SERVING until there is a source: --from, connected to NATS with the consumers
    // running; --feeders, an upstream with a stream open.
    server.setServing(serving);
    if (config.metricsPort >= 0) metrics = await startMetrics(config.metricsBind, config.metricsPort, stats, config.metricsTLS ? tls : undefined);
  } catch (err) {
    tls?.close();
    await exports?.close();
    await server?.shutdown(0);
    throw err instanceof ArmorfeedError ? err : new ArmorfeedError('ERR_CONFIG_INVALID', `cannot start: ${(err as Error).message}`);
  }
  const running = server;

  const file =
    source.kind === 'file'
      ? new FeedersFile(
          source.path,
          source.targets,
          (targets) => {
            log.info(`relay: ${source.path} changed: ${targets.length} upstreams`);
            setFeeders(targets);
          },
          (problem) => log.warn(`relay: ${problem}`),
        )
      : undefined;
  if (mode === 'feeders') {
    // Before the first node is dialled: its first events then run warm code (warmUp.ts).
    const warm = await warmUpFeedersPath(config);
    if (warm.gaveUp !== undefined) log.warn(`relay: warm-up stopped after ${warm.events} sample events in ${warm.ms} ms (${warm.gaveUp}); the first events may wait longer`);
    else log.debug(`relay: warmed up the upstream path with ${warm.events} sample events in ${warm.ms} ms`);
  }
  setFeeders(source.targets);
  file?.start();
  jetstream?.start();

  const clientDrops = new ClientDropReporter(hub, log);
  const dropWatch = setInterval(() => clientDrops.tick(), 1000);
  dropWatch.unref();

  const close = (): Promise<FeederStats> => {
    closing ??= (async () => {
      clearInterval(dropWatch);
      file?.stop();
      for (const u of upstreams.values()) u.stop();
      replays?.stopAll();
      await jetstream?.close();
      batcher.flush();
      const deadline = Date.now() + config.gracePeriodMs;
      // Clients and the export flush side by side, within the same grace period; what the
      // export could not flush is counted export_shutdown.
      await Promise.all([closeClients(hub, running, deadline), exports?.flush(deadline)]);
      await exports?.flush(deadline);
      await exports?.close();
      const final = stats();
      mainLoop.stop();
      await metrics?.close();
      tls?.close();
      return final;
    })();
    return closing;
  };

  return {
    config,
    addresses: { grpc: running.grpcAddress, health: running.healthAddress, metrics: metrics?.address, sources: {} },
    log,
    stats,
    setFeeders,
    close,
  };
}
