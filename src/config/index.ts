/**
 * The feeder's configuration: one typed object, defaults in one table, read from
 * flags, then environment, then a YAML file, in that order of precedence, and
 * validated at start-up with errors that name the key. Keys use upstream's names
 * where upstream has one (gRPC, cluster, host, logPath, alertThrottling, ...).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { parse as parseYaml } from 'yaml';
import { ConfigError, ConfigFileError, UnknownConfigKeyError } from '../errors';
// The option rules of TLS and the export, not their runtime (grpc-js, the NATS client):
// every command loads config, `armorfeed load` and `log` included.
import { certProviders, DEFAULT_TLS_CERT_PATH, type CertProvider } from '../tls/files';
import { validateExportConfig, validateNatsAccess, type ExportConfig } from '../export/options';

export type SourceKind = 'synthetic' | 'socket' | 'tcp' | 'jsonl' | 'none';

/** What a source does when its ring is full: wait for room (backpressure) or drop and count. */
export type WhenFull = 'block' | 'drop';
const whenFullModes: readonly WhenFull[] = ['block', 'drop'];
/** Sources that honour ingestWhenFull; the synthetic source keeps its pacing rules. */
const whenFullSources: readonly SourceKind[] = ['socket', 'tcp', 'jsonl'];

/** Every option; the export's own (export*) are declared with the export (ExportConfig). */
export interface FeederConfig extends ExportConfig {
  /** gRPC listen port (upstream key `gRPC`); 0 picks a free port. */
  gRPC: number;
  /** Address the gRPC and health servers bind to (upstream: all interfaces). */
  bind: string;
  /** grpc.health.v1 plaintext server port (upstream `gRPCHealthPort`); -1 disables. */
  gRPCHealthPort: number;
  cluster: string;
  host: string;
  /** NodeID source (upstream `machineIDPath`); falls back to `host`. */
  machineIDPath: string;
  /** none | stdout | a file path (upstream `logPath`). */
  logPath: string;
  alertThrottling: boolean;
  maxAlertPerSec: number;
  throttleSec: number;
  /** Also publish DEBUG-level daemon messages on WatchMessages. */
  debug: boolean;
  dropResourceFromProcessLogs: boolean;
  /** Event sources, each in its own ingest thread. */
  source: SourceKind[];
  /** Unix socket path for `socket`. */
  socket: string;
  /** Permissions of the socket file, octal (default 0660: owner and group may connect, nobody else). */
  socketMode: string;
  /** Group of the socket file: a name or a gid ('' = the process's own group). */
  socketGroup: string;
  /** host:port for `tcp`; loopback unless configured otherwise. */
  tcp: string;
  /** File for `jsonl` ("-" = stdin). */
  jsonl: string;
  /** Keep reading the jsonl file as it grows. */
  follow: boolean;
  /** Synthetic source: events/s (0 = as fast as possible). */
  rate: number;
  /** Synthetic source: events to generate (0 = without end). */
  count: number;
  /** Synthetic source: every K-th event is an alert (1 = only alerts, 0 = only logs). */
  alertEvery: number;
  /** Synthetic and jsonl sources: start once this many Watch* streams are open. */
  waitClients: number;
  /** Per-client queue, in events (upstream: 1000, hard-coded). */
  queueSize: number;
  /** Bytes of each ingest ring. */
  ringSize: number;
  /** Producer connections one socket or TCP source accepts at once; more are refused. */
  ingestMaxConnections: number;
  /** A frame begun must be complete within this many ms, or the connection is closed (0 = no limit). */
  ingestFrameTimeoutMs: number;
  /** A connection that sends nothing for this many ms is closed (0 = never: a quiet producer is normal). */
  ingestIdleTimeoutMs: number;
  /** Bytes of incomplete frames one source holds across its connections; the one that passes it is closed. */
  ingestBufferedBytes: number;
  /**
   * A full ring: `block` (wait: the producer's writes wait) or `drop` (refuse and count
   * ring_full), for every source, or per source as `socket:drop,tcp:block`.
   */
  ingestWhenFull: string;
  /**
   * An ingest thread that has not beaten its heartbeat for this many ms is wedged: health
   * turns NOT_SERVING and a socket or TCP source's thread is restarted (0 = never checked).
   */
  ingestWedgedMs: number;
  /** An encoder task running longer than this many ms is wedged: its thread is replaced (0 = never checked). */
  encoderTaskTimeoutMs: number;
  /** The health port says NOT_SERVING while the main loop has not run for this many ms. */
  mainLoopStallMs: number;
  /** Encoder worker threads. */
  encoderThreads: number;
  /** Most events per encoder task. */
  batchSize: number;
  /** An idle-time backlog up to this many events is encoded on the main thread (0 = never). */
  inlineMaxEvents: number;
  outputSlabs: number;
  /** Largest accepted event (frame or line), in bytes. */
  maxEventBytes: number;
  /** Prometheus /metrics and JSON /stats port; -1 disables, 0 picks a free port. */
  metricsPort: number;
  metricsBind: string;
  /** Serve /metrics and /stats over HTTPS with the gRPC port's server certificate (needs tlsEnabled). */
  metricsTLS: boolean;
  /** mTLS on the gRPC port (upstream `tlsEnabled`); the health port stays plaintext. */
  tlsEnabled: boolean;
  /** Directory of ca.crt, ca.key, server.crt, server.key (upstream `tlsCertPath`). */
  tlsCertPath: string;
  /** `self`: sign the server certificate at start from ca.crt + ca.key; `external`: use server.crt/server.key. */
  tlsCertProvider: CertProvider;
  /** Shutdown: how long client queues may take to flush, in ms. */
  gracePeriodMs: number;
  /** relay: the upstream feeders, `HOST:PORT,...`, or a file listing them (re-read when it changes). */
  feeders: string;
  /** relay: first delay before an upstream stream is reopened, in ms (doubling, jittered). */
  relayBackoffInitialMs: number;
  /** relay: largest delay between two attempts to reopen an upstream stream, in ms. */
  relayBackoffMaxMs: number;
  /** relay: deadline of the HealthCheck that precedes each upstream stream, in ms. */
  relayHealthTimeoutMs: number;
  /** relay: the JetStream servers to consume (`nats://HOST:PORT,...`); exclusive with feeders. */
  from: string;
  /** relay --from: subject filters to consume, comma-separated ('' = `<exportSubjectPrefix>.>`). */
  subjects: string;
  /** relay --from: clients replaying at once (x-armorfeed-since / x-armorfeed-after-seq), each on its own consumer. */
  relayMaxReplays: number;
}

type Kind = 'int' | 'string' | 'bool' | 'sources' | 'whenFull' | 'fileMode';

/** The sub-commands that read the configuration. */
export type ConfigCommand = 'serve' | 'relay';
const SERVE_AND_RELAY: readonly ConfigCommand[] = ['serve', 'relay'];
const RELAY: readonly ConfigCommand[] = ['relay'];

export interface OptionSpec {
  key: keyof FeederConfig;
  flag: string;
  kind: Kind;
  describe: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** Sub-commands that take this option (default: serve only). */
  commands?: readonly ConfigCommand[];
}

/** Whether `command` takes the option `spec` (as a flag, an environment variable and a file key). */
export function optionApplies(spec: OptionSpec, command: ConfigCommand): boolean {
  return (spec.commands ?? ['serve']).includes(command);
}

// Two at least: measured on 2 cores, a second encoder delivers 25-35% more events per
// second unpaced (bench:peers target 1), and idle encoders cost nothing (light traffic is
// encoded on the main thread).
const defaultEncoderThreads = Math.max(2, Math.min(4, os.availableParallelism() - 1));

export function defaultConfig(): FeederConfig {
  return {
    gRPC: 32767,
    bind: '0.0.0.0',
    gRPCHealthPort: 32766,
    cluster: 'default',
    host: os.hostname(),
    machineIDPath: '/etc/machine-id',
    logPath: 'none',
    alertThrottling: true,
    maxAlertPerSec: 10,
    throttleSec: 30,
    debug: false,
    dropResourceFromProcessLogs: false,
    source: ['none'],
    socket: '/tmp/armorfeed.sock',
    // Whoever can connect can inject alerts: the owner and its group, never everyone,
    // whatever the umask.
    socketMode: '0660',
    socketGroup: '',
    tcp: '127.0.0.1:32768',
    jsonl: '-',
    follow: false,
    rate: 1000,
    count: 0,
    alertEvery: 5,
    waitClients: 0,
    // Upstream's is 1000. Queues here hold views of shared batches, so depth is cheap; a
    // stalled client pins at most its queue's events (4000 x ~450 B). With 1000, readers
    // beside 8 stalled clients at 50k/s lost 0.02% when the box hiccuped for 25 ms; with
    // 4000 they lost none (bench/README.md, target 5).
    queueSize: 4000,
    // 0 = sized per source (ringSizeFor): with backpressure a ring only has to cover the
    // wake-up of the main thread, not a flood, and under an unpaced producer a full 8 MiB
    // ring held every event ~60 ms (p50 at 170,000 events/s) against ~15 ms with 2 MiB at
    // the same rate (bench/README.md); a source that drops instead (the paced synthetic
    // source, ingestWhenFull drop) keeps 8 MiB of slack (~140 ms at 100,000 events/s).
    ringSize: 0,
    // Nothing a producer wrote is lost at ingest unless it asks for that (Vector's
    // when_full: block, Fluent Bit's paused inputs).
    ingestWhenFull: 'block',
    // A node has one system monitor, perhaps a few helpers: 128 is generous, and bounds
    // what idle or hostile connections can hold (each up to maxEventBytes of a partial frame).
    ingestMaxConnections: 128,
    ingestFrameTimeoutMs: 10_000,
    ingestIdleTimeoutMs: 0,
    ingestBufferedBytes: 64 * 1024 * 1024,
    // A thread beats every 200 ms, also while it waits for room in a full ring (backpressure).
    ingestWedgedMs: 5000,
    // A task is at most batchSize events, a few ms of work; 5 s is a thread that no longer runs.
    encoderTaskTimeoutMs: 5000,
    // Well above a major GC (tens of ms) or a slow /stats; a loop this late serves nobody.
    mainLoopStallMs: 2000,
    encoderThreads: defaultEncoderThreads,
    batchSize: 512,
    // The bound while the main thread is under half busy; a quarter of it (64) above, which
    // measured best at 4 clients x 50k/s on 2 cores. 256 with one client at 50k/s on the
    // socket path: p90 0.6-0.7 ms against 2.3-2.8 ms at 64 (encode/strategy.ts).
    inlineMaxEvents: 256,
    // 4 tasks in flight, 2-3 batches pinned by each group of stalled clients, a few more
    // for readers' queues and writes; 12 MiB of address space, touched as used.
    outputSlabs: 24,
    maxEventBytes: 1024 * 1024,
    metricsPort: 9464,
    metricsBind: '127.0.0.1',
    metricsTLS: false,
    tlsEnabled: false,
    tlsCertPath: DEFAULT_TLS_CERT_PATH,
    // Upstream's daemon default (the relay's is external).
    tlsCertProvider: 'self',
    gracePeriodMs: 5000,
    feeders: '',
    relayBackoffInitialMs: 250,
    // Upstream's relay retries every 5 s; the cap keeps a node that comes back within
    // 5 s of the last attempt, and 3 streams x N nodes of attempts a few per second.
    relayBackoffMaxMs: 5000,
    relayHealthTimeoutMs: 5000,
    from: '',
    subjects: '',
    // Each replay is a consumer on the server and a private queue here; 16 covers a few
    // operators and collectors catching up at once.
    relayMaxReplays: 16,
    export: '',
    exportSubjectPrefix: 'kubearmor',
    exportStream: 'KUBEARMOR',
    exportMaxAgeSec: 24 * 3600,
    exportMaxBytes: -1,
    exportReplicas: 1,
    // JetStream's own default; a retry is stored once only within it (src/export/publisher.ts).
    exportDuplicateWindowSec: 120,
    // 100,000 events of ~450 bytes: five seconds of a 20,000 events/s node, the length of a
    // NATS server restart, within 64 MiB.
    exportBufferEvents: 100_000,
    exportBufferBytes: 64 * 1024 * 1024,
    // Measured on loopback (bench/export.ts): 256 publishes in flight reach the server's
    // file-store rate; more only lengthens each event's wait for its ack.
    exportInFlight: 256,
    exportAckTimeoutMs: 5000,
    exportMaxAttempts: 5,
    exportThreadNice: 10,
    exportCredsFile: '',
    exportNkeyFile: '',
    exportUserFile: '',
    exportTokenFile: '',
    exportTlsCaFile: '',
    exportTlsCertFile: '',
    exportTlsKeyFile: '',
  };
}

const sourceKinds: readonly SourceKind[] = ['synthetic', 'socket', 'tcp', 'jsonl', 'none'];

/** Every option: its flag, kind and bounds. Flags keep upstream's spelling where it has one. */
export const optionSpecs: readonly OptionSpec[] = [
  { key: 'gRPC', flag: 'gRPC', kind: 'int', min: 0, max: 65535, describe: 'gRPC port (0 = pick a free port)', commands: SERVE_AND_RELAY },
  { key: 'bind', flag: 'bind', kind: 'string', describe: 'address the gRPC servers bind to', commands: SERVE_AND_RELAY },
  { key: 'gRPCHealthPort', flag: 'gRPCHealthPort', kind: 'int', min: -1, max: 65535, describe: 'grpc.health.v1 port (-1 = off, 0 = free port)', commands: SERVE_AND_RELAY },
  { key: 'cluster', flag: 'cluster', kind: 'string', describe: 'ClusterName in every event', commands: SERVE_AND_RELAY },
  { key: 'host', flag: 'host', kind: 'string', describe: 'HostName in events and messages', commands: SERVE_AND_RELAY },
  { key: 'machineIDPath', flag: 'machineIDPath', kind: 'string', describe: 'file holding the NodeID' },
  { key: 'logPath', flag: 'logPath', kind: 'string', describe: 'upstream JSON-lines output: none | stdout | FILE' },
  { key: 'alertThrottling', flag: 'alertThrottling', kind: 'bool', describe: 'throttle Audit alerts per container (true|false)' },
  { key: 'maxAlertPerSec', flag: 'maxAlertPerSec', kind: 'int', min: 1, max: 1_000_000, describe: 'alerts per second before throttling' },
  { key: 'throttleSec', flag: 'throttleSec', kind: 'int', min: 1, max: 86_400, describe: 'seconds a throttled bucket stays throttled' },
  { key: 'debug', flag: 'debug', kind: 'bool', describe: 'publish DEBUG messages on WatchMessages', commands: SERVE_AND_RELAY },
  { key: 'dropResourceFromProcessLogs', flag: 'dropResourceFromProcessLogs', kind: 'bool', describe: 'omit Resource from Process logs' },
  { key: 'source', flag: 'source', kind: 'sources', describe: `event sources, comma-separated: ${sourceKinds.join('|')}` },
  { key: 'socket', flag: 'socket', kind: 'string', describe: 'Unix socket path of the msgpack source' },
  { key: 'socketMode', flag: 'socketMode', kind: 'fileMode', describe: 'permissions of the socket file, octal (0660: owner and group)' },
  { key: 'socketGroup', flag: 'socketGroup', kind: 'string', describe: 'group of the socket file, a name or a gid (empty: the process\'s group)' },
  { key: 'tcp', flag: 'tcp', kind: 'string', describe: 'host:port of the msgpack TCP source (port 0 = free port)' },
  { key: 'jsonl', flag: 'jsonl', kind: 'string', describe: 'JSON-lines file of the jsonl source (- = stdin)' },
  { key: 'follow', flag: 'follow', kind: 'bool', describe: 'keep reading the jsonl file as it grows' },
  { key: 'rate', flag: 'rate', kind: 'int', min: 0, max: 100_000_000, describe: 'synthetic events per second (0 = unpaced)' },
  { key: 'count', flag: 'count', kind: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, describe: 'synthetic events to generate (0 = no end)' },
  { key: 'alertEvery', flag: 'alert-every', kind: 'int', min: 0, max: 1_000_000, describe: 'every K-th synthetic event is an alert (0 = none)' },
  { key: 'waitClients', flag: 'wait-clients', kind: 'int', min: 0, max: 100_000, describe: 'synthetic and jsonl sources start once this many Watch* streams are open' },
  { key: 'queueSize', flag: 'queueSize', kind: 'int', min: 1, max: 10_000_000, describe: 'per-client queue, in events', commands: SERVE_AND_RELAY },
  { key: 'ringSize', flag: 'ringSize', kind: 'int', min: 0, max: 1 << 30, describe: 'bytes per ingest ring (0 = 2 MiB for a source that waits when full, 8 MiB for one that drops; at least twice maxEventBytes)' },
  { key: 'ingestMaxConnections', flag: 'ingestMaxConnections', kind: 'int', min: 1, max: 100_000, describe: 'producer connections a socket or TCP source accepts at once (more are refused)' },
  { key: 'ingestFrameTimeoutMs', flag: 'ingestFrameTimeoutMs', kind: 'int', min: 0, max: 3_600_000, describe: 'ms a begun frame may take to complete before the connection is closed (0 = no limit)' },
  { key: 'ingestIdleTimeoutMs', flag: 'ingestIdleTimeoutMs', kind: 'int', min: 0, max: 86_400_000, describe: 'ms a producer connection may send nothing before it is closed (0 = never)' },
  { key: 'ingestBufferedBytes', flag: 'ingestBufferedBytes', kind: 'int', min: 65_536, max: 4 * 1024 * 1024 * 1024, describe: 'bytes of incomplete frames one source holds across its connections' },
  { key: 'ingestWhenFull', flag: 'ingestWhenFull', kind: 'whenFull', describe: 'full ring: block (the producer waits) | drop (counted ring_full), or per source: socket:drop,tcp:block' },
  { key: 'ingestWedgedMs', flag: 'ingestWedgedMs', kind: 'int', min: 0, max: 3_600_000, describe: 'ms without a heartbeat after which an ingest thread is wedged: NOT_SERVING, and a socket or TCP source is restarted (0 = never)' },
  { key: 'encoderTaskTimeoutMs', flag: 'encoderTaskTimeoutMs', kind: 'int', min: 0, max: 3_600_000, describe: 'ms after which a running encoder task is wedged: NOT_SERVING until its thread is replaced (0 = never)' },
  { key: 'mainLoopStallMs', flag: 'mainLoopStallMs', kind: 'int', min: 200, max: 3_600_000, describe: 'ms the main loop may not run before the health port (its own thread) says NOT_SERVING' },
  { key: 'encoderThreads', flag: 'encoderThreads', kind: 'int', min: 1, max: 64, describe: 'encoder worker threads' },
  { key: 'batchSize', flag: 'batchSize', kind: 'int', min: 1, max: 65_536, describe: 'most events per encoder task' },
  { key: 'inlineMaxEvents', flag: 'inlineMaxEvents', kind: 'int', min: 0, max: 4096, describe: 'a ring backlog of up to this many events is encoded on the main thread while it is under half busy (a quarter of it above; 0 = always in workers)' },
  { key: 'outputSlabs', flag: 'outputSlabs', kind: 'int', min: 0, max: 4096, describe: 'encoder output slabs of 512 KiB shared with client queues (0 = a new buffer per batch)' },
  // Up to gRPC clients' default receive limit (4 MiB): a larger event could never be sent.
  { key: 'maxEventBytes', flag: 'maxEventBytes', kind: 'int', min: 256, max: 4 * 1024 * 1024, describe: 'largest accepted event in bytes (at most 4 MiB, what gRPC clients take)' },
  { key: 'metricsPort', flag: 'metricsPort', kind: 'int', min: -1, max: 65535, describe: 'Prometheus /metrics and /stats port (-1 = off, 0 = free port)', commands: SERVE_AND_RELAY },
  { key: 'metricsBind', flag: 'metricsBind', kind: 'string', describe: 'address the metrics endpoint binds to', commands: SERVE_AND_RELAY },
  { key: 'metricsTLS', flag: 'metricsTLS', kind: 'bool', describe: 'serve the metrics endpoint over HTTPS with the gRPC server certificate (needs tlsEnabled)', commands: SERVE_AND_RELAY },
  { key: 'tlsEnabled', flag: 'tlsEnabled', kind: 'bool', describe: 'mutual TLS on the gRPC port: clients must present a certificate from ca.crt (the health port stays plaintext)', commands: SERVE_AND_RELAY },
  { key: 'tlsCertPath', flag: 'tlsCertPath', kind: 'string', describe: 'directory of ca.crt, ca.key (self) or ca.crt, server.crt, server.key (external); reloaded when they change', commands: SERVE_AND_RELAY },
  { key: 'tlsCertProvider', flag: 'tlsCertProvider', kind: 'string', choices: certProviders, describe: 'self (sign the server certificate from ca.crt + ca.key at start) | external (use server.crt/server.key)', commands: SERVE_AND_RELAY },
  { key: 'gracePeriodMs', flag: 'gracePeriodMs', kind: 'int', min: 0, max: 600_000, describe: 'shutdown: ms to flush client queues and the export buffer', commands: SERVE_AND_RELAY },
  { key: 'feeders', flag: 'feeders', kind: 'string', describe: 'upstream feeders to relay: HOST:PORT,... or a file with one per line (re-read when it changes)', commands: RELAY },
  { key: 'relayBackoffInitialMs', flag: 'relayBackoffInitialMs', kind: 'int', min: 1, max: 600_000, describe: 'first delay before a broken upstream stream is reopened, ms (doubles, jittered)', commands: RELAY },
  { key: 'relayBackoffMaxMs', flag: 'relayBackoffMaxMs', kind: 'int', min: 1, max: 3_600_000, describe: 'largest delay between attempts to reopen an upstream stream, ms', commands: RELAY },
  { key: 'relayHealthTimeoutMs', flag: 'relayHealthTimeoutMs', kind: 'int', min: 1, max: 600_000, describe: 'deadline of the HealthCheck before each upstream stream opens, ms', commands: RELAY },
  { key: 'from', flag: 'from', kind: 'string', describe: 'relay from NATS JetStream: nats://HOST:PORT[,...] (tls:// for TLS; credentials and TLS from the export*File options; exclusive with --feeders)', commands: RELAY },
  { key: 'subjects', flag: 'subjects', kind: 'string', describe: 'with --from: subject filters to consume, comma-separated, e.g. one cluster (PREFIX.c1.>) or one node (default PREFIX.>)', commands: RELAY },
  { key: 'relayMaxReplays', flag: 'relayMaxReplays', kind: 'int', min: 0, max: 10_000, describe: 'with --from: clients replaying history at once (x-armorfeed-since); more are refused with RESOURCE_EXHAUSTED', commands: RELAY },
  { key: 'export', flag: 'export', kind: 'string', describe: 'export every event to NATS JetStream: nats://HOST:PORT[,nats://...] (tls:// for TLS; empty = off; credentials only from the export*File options)', commands: SERVE_AND_RELAY },
  { key: 'exportSubjectPrefix', flag: 'exportSubjectPrefix', kind: 'string', describe: 'export subjects are PREFIX.<cluster>.<node>.alerts|logs|messages', commands: SERVE_AND_RELAY },
  { key: 'exportStream', flag: 'exportStream', kind: 'string', describe: 'JetStream stream (created with subjects PREFIX.> when missing; an existing one is used as it is)', commands: SERVE_AND_RELAY },
  { key: 'exportMaxAgeSec', flag: 'exportMaxAgeSec', kind: 'int', min: 0, max: 10 * 365 * 86_400, describe: 'created stream: max age in seconds (0 = no limit)', commands: SERVE_AND_RELAY },
  { key: 'exportMaxBytes', flag: 'exportMaxBytes', kind: 'int', min: -1, max: Number.MAX_SAFE_INTEGER, describe: 'created stream: max bytes, oldest discarded past it (-1 = no limit)', commands: SERVE_AND_RELAY },
  { key: 'exportReplicas', flag: 'exportReplicas', kind: 'int', min: 1, max: 5, describe: 'created stream: replicas (needs a NATS cluster of as many JetStream servers)', commands: SERVE_AND_RELAY },
  { key: 'exportDuplicateWindowSec', flag: 'exportDuplicateWindowSec', kind: 'int', min: 1, max: 86_400, describe: 'created stream: duplicate window in seconds (a retried publish is stored once within it)', commands: SERVE_AND_RELAY },
  { key: 'exportBufferEvents', flag: 'exportBufferEvents', kind: 'int', min: 1, max: 100_000_000, describe: 'events held for the export while NATS is slow or down (past it: export_buffer_full)', commands: SERVE_AND_RELAY },
  { key: 'exportBufferBytes', flag: 'exportBufferBytes', kind: 'int', min: 65_536, max: 64 * 1024 * 1024 * 1024, describe: 'payload bytes held for the export (past it: export_buffer_full)', commands: SERVE_AND_RELAY },
  { key: 'exportInFlight', flag: 'exportInFlight', kind: 'int', min: 1, max: 65_536, describe: 'most publishes awaiting their JetStream ack (the in-flight window)', commands: SERVE_AND_RELAY },
  { key: 'exportAckTimeoutMs', flag: 'exportAckTimeoutMs', kind: 'int', min: 100, max: 600_000, describe: 'ms to wait for a publish ack before sending it again (same Nats-Msg-Id)', commands: SERVE_AND_RELAY },
  { key: 'exportMaxAttempts', flag: 'exportMaxAttempts', kind: 'int', min: 1, max: 1000, describe: 'ack timeouts on a live connection before an event is given up (export_timeout)', commands: SERVE_AND_RELAY },
  { key: 'exportThreadNice', flag: 'exportThreadNice', kind: 'int', min: 0, max: 19, describe: 'the export thread\'s nice value (Linux, that thread only): above 0 it yields the CPU to ingest, the encoders and the gRPC fan-out when they need it; 0 gives it an equal share (more export throughput on a saturated machine, a longer tail for the gRPC clients)', commands: SERVE_AND_RELAY },
  { key: 'exportCredsFile', flag: 'exportCredsFile', kind: 'string', describe: 'NATS .creds file (JWT and nkey seed), re-read at each connect', commands: SERVE_AND_RELAY },
  { key: 'exportNkeyFile', flag: 'exportNkeyFile', kind: 'string', describe: 'file holding a NATS nkey seed', commands: SERVE_AND_RELAY },
  { key: 'exportUserFile', flag: 'exportUserFile', kind: 'string', describe: 'file holding a NATS user name (line 1) and password (line 2)', commands: SERVE_AND_RELAY },
  { key: 'exportTokenFile', flag: 'exportTokenFile', kind: 'string', describe: 'file holding a NATS auth token', commands: SERVE_AND_RELAY },
  { key: 'exportTlsCaFile', flag: 'exportTlsCaFile', kind: 'string', describe: 'CA bundle the NATS servers are verified with (turns TLS on)', commands: SERVE_AND_RELAY },
  { key: 'exportTlsCertFile', flag: 'exportTlsCertFile', kind: 'string', describe: 'client certificate for NATS TLS client auth (with exportTlsKeyFile)', commands: SERVE_AND_RELAY },
  { key: 'exportTlsKeyFile', flag: 'exportTlsKeyFile', kind: 'string', describe: 'key of exportTlsCertFile', commands: SERVE_AND_RELAY },
];

const specByKey = new Map(optionSpecs.map((s) => [s.key as string, s]));

/**
 * ARMORFEED_ plus the key in upper snake case, acronyms kept whole: gRPC -> ARMORFEED_GRPC,
 * gRPCHealthPort -> ARMORFEED_GRPC_HEALTH_PORT, machineIDPath -> ARMORFEED_MACHINE_ID_PATH.
 */
export function envName(key: string): string {
  const words = key
    .replace(/^gRPC/, 'GRPC')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2');
  return `ARMORFEED_${words.toUpperCase()}`;
}

function coerce(spec: OptionSpec, raw: unknown, origin: string): FeederConfig[keyof FeederConfig] {
  const where = `${spec.key} (${origin})`;
  switch (spec.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
      if (!Number.isSafeInteger(n)) throw new ConfigError(where, `must be an integer, got ${JSON.stringify(raw)}`);
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
        throw new ConfigError(where, `must be between ${spec.min} and ${spec.max}, got ${n}`);
      }
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const s = String(raw).trim().toLowerCase();
      if (s === 'true' || s === '1' || s === 'yes') return true;
      if (s === 'false' || s === '0' || s === 'no') return false;
      throw new ConfigError(where, `must be true or false, got ${JSON.stringify(raw)}`);
    }
    case 'string':
      if (typeof raw !== 'string' && typeof raw !== 'number') throw new ConfigError(where, `must be a string, got ${JSON.stringify(raw)}`);
      if (spec.choices !== undefined && !spec.choices.includes(String(raw))) {
        throw new ConfigError(where, `must be one of ${spec.choices.join(', ')}, got ${JSON.stringify(raw)}`);
      }
      return String(raw);
    case 'sources': {
      const list = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
      const out = list.map((s) => s.trim()).filter((s) => s !== '');
      for (const s of out) {
        if (!sourceKinds.includes(s as SourceKind)) {
          throw new ConfigError(where, `unknown source "${s}"; expected one of ${sourceKinds.join(', ')}`);
        }
      }
      if (out.length === 0) throw new ConfigError(where, 'needs at least one source (or "none")');
      return [...new Set(out)] as SourceKind[];
    }
    case 'fileMode': {
      // A string only: YAML would read 0660 as the decimal 660 (or 1.1's octal 432), and an
      // embedder's number 0o660 would read back as "432".
      const text = typeof raw === 'string' ? raw.trim() : '';
      if (!/^(0o?)?[0-7]{1,4}$/i.test(text) || parseFileMode(text) > 0o777) {
        throw new ConfigError(where, `must be octal permissions from 0000 to 0777 as a string (e.g. "0660"; quote it in YAML), got ${JSON.stringify(raw)}`);
      }
      return text;
    }
    case 'whenFull':
      if (typeof raw !== 'string') throw new ConfigError(where, `must be block, drop or SOURCE:MODE,..., got ${JSON.stringify(raw)}`);
      parseWhenFull(raw, where);
      return raw.trim();
  }
}

/** Parses ingestWhenFull: one mode for every source, or `kind:mode` pairs (others block). */
function parseWhenFull(raw: string, where: string): Partial<Record<SourceKind, WhenFull>> & { all?: WhenFull } {
  const text = raw.trim();
  if (whenFullModes.includes(text as WhenFull)) return { all: text as WhenFull };
  const out: Partial<Record<SourceKind, WhenFull>> = {};
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*[:=]\s*([a-z]+)\s*$/.exec(part);
    if (m === null || !whenFullSources.includes(m[1] as SourceKind) || !whenFullModes.includes(m[2] as WhenFull)) {
      throw new ConfigError(where, `must be block, drop, or SOURCE:MODE pairs with SOURCE in ${whenFullSources.join('|')} and MODE block|drop, got ${JSON.stringify(raw)}`);
    }
    out[m[1] as SourceKind] = m[2] as WhenFull;
  }
  return out;
}

/** Permission bits of a validated fileMode value ("0660", "660" or "0o660"). */
export function parseFileMode(text: string): number {
  return parseInt(text.replace(/^0o/i, ''), 8);
}

/**
 * The gid of `group`: a number as is, a name from /etc/group or, failing that, from
 * `getent group` (LDAP, sssd); undefined when there is no such group.
 */
export function resolveGroup(group: string): number | undefined {
  if (/^\d+$/.test(group)) return Number(group) < 0xffffffff ? Number(group) : undefined;
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , gid] = line.split(':');
      if (name === group && /^\d+$/.test(gid ?? '')) return Number(gid);
    }
  } catch {
    // No /etc/group: ask getent.
  }
  try {
    const gid = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).split(':')[2];
    if (/^\d+$/.test(gid ?? '')) return Number(gid);
  } catch {
    // No such group, or no getent.
  }
  return undefined;
}

/** Bytes of one source's ring: ringSize, or with 0 a size for how the source meets a full ring. */
export function ringSizeFor(config: FeederConfig, kind: SourceKind | 'embedded'): number {
  if (config.ringSize !== 0) return config.ringSize;
  const base = kind !== 'embedded' && whenFullFor(config, kind) === 'block' ? 2 * 1024 * 1024 : 8 * 1024 * 1024;
  return Math.max(base, 2 * config.maxEventBytes);
}

/** The full-ring rule for one source (synthetic: never blocks; it paces itself). */
export function whenFullFor(config: FeederConfig, kind: SourceKind): WhenFull {
  if (!whenFullSources.includes(kind)) return 'drop';
  const parsed = parseWhenFull(config.ingestWhenFull, 'ingestWhenFull');
  return parsed.all ?? parsed[kind] ?? 'block';
}

export interface ConfigInputs {
  /** Values given as flags, by config key (already parsed as strings or booleans). */
  flags: Partial<Record<keyof FeederConfig, unknown>>;
  env: NodeJS.ProcessEnv;
  /** YAML file path (from --config, ARMORFEED_CONFIG or KUBEARMOR_CFG). */
  file?: string;
  /** The sub-command reading it (default serve): other commands' keys are unknown to it. */
  command?: ConfigCommand;
}

function readFile(file: string, command: ConfigCommand): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigFileError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigFileError(`${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigFileError(`${file} must hold a map of keys`);
  // Flag spellings are accepted as file keys too (alert-every or alertEvery).
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const spec = optionSpecs.find((s) => optionApplies(s, command) && (s.key === k || s.flag === k));
    if (spec === undefined) {
      const known = optionSpecs.filter((s) => optionApplies(s, command)).map((s) => s.key);
      throw new UnknownConfigKeyError(k, `unknown key in ${file} for armorfeed ${command}; known keys: ${known.join(', ')}`);
    }
    out[spec.key] = v;
  }
  return out;
}

/** Resolves the configuration: flags over environment over file over defaults, then checks it. */
export function loadConfig(inputs: ConfigInputs): FeederConfig {
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const command = inputs.command ?? 'serve';
  const file = inputs.file ?? inputs.env.ARMORFEED_CONFIG ?? inputs.env.KUBEARMOR_CFG;
  if (file !== undefined && file !== '') {
    for (const [k, v] of Object.entries(readFile(file, command))) config[k] = coerce(specByKey.get(k) as OptionSpec, v, `in ${file}`);
  }
  for (const spec of optionSpecs) {
    if (!optionApplies(spec, command)) continue;
    const v = inputs.env[envName(spec.key)];
    if (v !== undefined) config[spec.key] = coerce(spec, v, `env ${envName(spec.key)}`);
  }
  for (const [k, v] of Object.entries(inputs.flags)) {
    const spec = specByKey.get(k);
    if (spec === undefined || !optionApplies(spec, command)) throw new UnknownConfigKeyError(k, `unknown option of armorfeed ${command}`);
    if (v !== undefined) config[k] = coerce(spec, v, `flag --${spec.flag}`);
  }
  return validate(config as unknown as FeederConfig);
}

function checkHostPort(key: string, value: string): void {
  const m = /^(.*):(\d+)$/.exec(value);
  if (m === null || Number(m[2]) > 65535) throw new ConfigError(key, `must be host:port, got "${value}"`);
}

/**
 * Checks a whole configuration, on every path (flags, environment, file, the object given
 * to createFeeder or createRelay): each key against its row of optionSpecs, the same rule
 * coerce() applied to flags, environment and file, then the cross-field checks that
 * single values cannot express.
 */
export function validate(config: FeederConfig): FeederConfig {
  const record = config as unknown as Record<string, unknown>;
  // A key no option has (a typo in an object given to createFeeder) is an error, as an
  // unknown flag or file key is, not a setting silently left at its default.
  for (const k of Object.keys(record)) {
    if (!specByKey.has(k)) throw new UnknownConfigKeyError(k, `unknown option; known options: ${optionSpecs.map((s) => s.key).join(', ')}`);
  }
  for (const spec of optionSpecs) {
    const value = record[spec.key];
    if (value === undefined) throw new ConfigError(spec.key, 'is missing');
    const kept = coerce(spec, value, 'option');
    if (spec.kind === 'int' && kept !== value) throw new ConfigError(`${spec.key} (option)`, `must be a number, got ${JSON.stringify(value)}`);
    if (spec.kind === 'bool' && typeof value !== 'boolean') throw new ConfigError(`${spec.key} (option)`, `must be true or false, got ${JSON.stringify(value)}`);
  }
  if (config.source.includes('none') && config.source.length > 1) {
    throw new ConfigError('source', '"none" cannot be combined with other sources');
  }
  if (config.source.includes('tcp')) checkHostPort('tcp', config.tcp);
  if (config.source.includes('socket') && config.socket === '') throw new ConfigError('socket', 'needs a path');
  if (config.source.includes('socket') && config.socketGroup !== '' && socketGid(config) < 0) {
    throw new ConfigError('socketGroup', `no group named ${JSON.stringify(config.socketGroup)} (in /etc/group or getent)`);
  }
  if (config.cluster === '') throw new ConfigError('cluster', 'must not be empty');
  if (config.logPath === '') throw new ConfigError('logPath', 'must be none, stdout or a file path');
  if (config.metricsTLS && !config.tlsEnabled) {
    throw new ConfigError('metricsTLS', 'needs tlsEnabled: the metrics endpoint serves the gRPC port\'s server certificate');
  }
  if (config.tlsEnabled && config.tlsCertPath === '') throw new ConfigError('tlsCertPath', 'must name the directory of the TLS files');
  if (config.ingestBufferedBytes < config.maxEventBytes) {
    throw new ConfigError('ingestBufferedBytes', `must be at least maxEventBytes (${config.maxEventBytes}), got ${config.ingestBufferedBytes}`);
  }
  if (config.relayBackoffMaxMs < config.relayBackoffInitialMs) {
    throw new ConfigError('relayBackoffMaxMs', `must be at least relayBackoffInitialMs (${config.relayBackoffInitialMs}), got ${config.relayBackoffMaxMs}`);
  }
  if (config.ringSize !== 0 && config.ringSize < 65_536) throw new ConfigError('ringSize', `must be 0 (sized per source) or at least 65536, got ${config.ringSize}`);
  if (config.ringSize !== 0 && config.maxEventBytes > config.ringSize / 2) {
    throw new ConfigError('maxEventBytes', `must be at most half of ringSize (${config.ringSize}), got ${config.maxEventBytes}`);
  }
  validateExportConfig(config);
  if (config.from !== '') validateNatsAccess(config, config.from, 'from');
  return config;
}

/** The gid the socket file is given: -1 to keep the process's own group (or when socketGroup names no group). */
export function socketGid(config: FeederConfig): number {
  if (config.socketGroup === '') return -1;
  return resolveGroup(config.socketGroup) ?? -1;
}

/** NodeID as upstream reads it: the machine-id file, else the host name. */
export function readNodeID(config: FeederConfig): string {
  try {
    const id = fs.readFileSync(config.machineIDPath, 'utf8').trim();
    if (id !== '') return id;
  } catch {
    // Absent on many dev machines; upstream falls back to the node name too.
  }
  return config.host;
}
