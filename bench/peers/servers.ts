/**
 * The two systems under test, started the same way: one server process on a fresh
 * loopback port with the same synthetic-source flags (`--rate`, `--count`,
 * `--alert-every`, `--wait-clients`), stopped with SIGTERM, and what it says at exit
 * turned into per-stream rows: armorfeed's final stats object (written to `--statsFile`),
 * gofeeder's exit table (it has nothing else).
 *
 *   armorfeed: node dist/src/cli/main.js serve --bind 127.0.0.1 --gRPC PORT ... --statsFile FILE (ready: "armorfeed: listening")
 *   gofeeder:  $BIN/gofeeder --addr 127.0.0.1:PORT ...                          (ready: "listening")
 *
 * For the real-path targets both read frames from a Unix socket instead
 * (`startSocketServer`):
 *
 *   armorfeed: ... serve --source socket --socket PATH --metricsPort P   (ready: "armorfeed: listening", socket bound)
 *   gofeeder:  $BIN/gofeeder --addr 127.0.0.1:PORT --socket PATH        (ready: "ingesting msgpack frames on PATH")
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../devkit';
import { BROKER_NODE_FLAGS } from '../../src/cli/nodeFlags';
import type { FeederStats } from '../../src/stats';
import { ProcSampler, sleep, spawnTracked, stopChild, withTimeout, type ProcSample, type TrackedChild } from './children';

export type SystemName = 'armorfeed' | 'gofeeder';
export const SYSTEMS: readonly SystemName[] = ['armorfeed', 'gofeeder'];

export interface GeneratorFlags {
  /** Events per second; 0 = as fast as the server can. */
  rate: number;
  count: number;
  /** Event i is an alert when i % alertEvery === 0; 0 = logs only. */
  alertEvery: number;
  /** Generation starts once this many Watch* streams are registered. */
  waitClients: number;
}

export interface Binaries {
  /** Directory holding gofeeder and loadclient (`build.sh path`). */
  peersBin: string;
  repoRoot: string;
}

/** One row of a server's exit summary: one Watch* stream. */
export interface StreamRow {
  name: string;
  /** 'alerts' or 'logs' (gofeeder: from the stream name). */
  stream: string;
  filter: string;
  peer: string;
  /** Port of `peer`, to group a connection's streams. */
  peerPort: number;
  delivered: number;
  /** armorfeed: client_queue_full; gofeeder: dropped. */
  queueFull: number;
  throttled: number;
  filtered: number;
  /** armorfeed: client_closed + shutdown_grace_expired. */
  closed: number;
  p99Us?: number;
}

/** What one ingest source took in, from the server's exit summary. */
export interface IngestCounts {
  events: number;
  /** armorfeed: dropped at the ring (ring_full); gofeeder has no such counter. */
  ringFull?: number;
  malformed: number;
}

export interface ServerSummary {
  rows: StreamRow[];
  /** Events generated per kind, as the server reports them. */
  generated?: { alerts: number; logs: number };
  /** Per source (armorfeed: `sources NAME: in=...`; gofeeder: `socket ingest: events=...`). */
  ingest: Record<string, IngestCounts>;
  /** Drops not attributed to a client (armorfeed: ring_full, encode_error, ...), by reason. */
  globalDropped: Record<string, number>;
  /** gofeeder: the lines of its exit table that are not per-stream rows, verbatim (armorfeed: none, its stats say it all). */
  notes: string[];
}

export interface ServerStop {
  system: SystemName;
  /** utime+stime of the server process (all threads), read just before SIGTERM. */
  cpuSec: number;
  /**
   * CPU from the last 200 ms sample before generation started to SIGTERM: the run's
   * work without process start-up (node's start and worker threads cost ~1 CPU-s).
   */
  runCpuSec: number;
  /** VmHWM just before SIGTERM: the peak RSS over the server's life. */
  peakRssBytes: number;
  /** RSS every 200 ms from start to stop. */
  samples: ProcSample[];
  /** When generation started and ended, ms since spawn, from the server's own lines. */
  generationStartMs?: number;
  generationEndMs?: number;
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  /** True when SIGTERM was not enough and SIGKILL was sent. */
  killed: boolean;
  /** True when the process had exited before we stopped it. */
  exitedEarly: boolean;
  summary: ServerSummary;
  stderrTail: string;
}

export interface RunningServer {
  system: SystemName;
  addr: string;
  port: number;
  pid: number;
  process: TrackedChild;
  sampler: ProcSampler;
  /** armorfeed started with metrics: host:port of its /metrics and /stats. */
  metricsAddr?: string;
  /** Resolves when the server says generation has finished (never rejects). */
  generationDone: Promise<void>;
  /**
   * Marks generation start or end now, when the server prints no line for it (a socket
   * source: the bench knows when its producer starts and ends). A line seen earlier wins.
   */
  markGeneration(edge: 'start' | 'end'): void;
  stop(graceMs?: number): Promise<ServerStop>;
}

export class ServerFailure extends Error {
  readonly code = 'ERR_PEERS_SERVER';
  constructor(
    readonly system: SystemName,
    message: string,
  ) {
    super(`${system}: ${message}`);
  }
}

interface SystemSpec {
  command(bin: Binaries): string;
  args(bin: Binaries, port: string, gen: GeneratorFlags, statsFile: string): string[];
  ready: RegExp;
  generationStart: RegExp;
  generationEnd: RegExp;
}

/** What tryStart needs: the command line for a given port (and metrics port, and armorfeed's stats file) and the lines to watch. */
interface Launch {
  command: string;
  args(port: string, metricsPort: string, statsFile: string): string[];
  ready: RegExp;
  generationStart?: RegExp;
  generationEnd?: RegExp;
  /** The metrics port is passed on the command line (armorfeed on the socket path). */
  metrics: boolean;
}

const SPECS: Record<SystemName, SystemSpec> = {
  armorfeed: {
    command: () => process.execPath,
    args: (bin, port, g, statsFile) => [
      ...BROKER_NODE_FLAGS,
      path.join(bin.repoRoot, 'dist', 'src', 'cli', 'main.js'),
      'serve',
      '--bind', '127.0.0.1',
      '--gRPC', port,
      '--gRPCHealthPort', '-1',
      '--metricsPort', '-1',
      '--source', 'synthetic',
      '--rate', String(g.rate),
      '--count', String(g.count),
      '--alert-every', String(g.alertEvery),
      '--wait-clients', String(g.waitClients),
      '--statsFile', statsFile,
    ],
    ready: /^armorfeed: listening\b/,
    generationStart: /generating with \d+ streams/,
    generationEnd: /source synthetic finished/,
  },
  gofeeder: {
    command: (bin) => path.join(bin.peersBin, 'gofeeder'),
    args: (_bin, port, g) => [
      '--addr', `127.0.0.1:${port}`,
      '--rate', String(g.rate),
      '--count', String(g.count),
      '--alert-every', String(g.alertEvery),
      '--wait-clients', String(g.waitClients),
    ],
    ready: /listening/,
    generationStart: /generating with \d+ streams/,
    generationEnd: /generation finished/,
  },
};

const READY_TIMEOUT_MS = 30_000;
/** armorfeed drains for up to its 5 s grace period on SIGTERM; then it must be gone. */
const STOP_GRACE_MS = 15_000;

export function serverCommandLine(system: SystemName, bin: Binaries, gen: GeneratorFlags): string {
  const spec = SPECS[system];
  const cmd = system === 'armorfeed' ? 'node' : '$BIN/gofeeder';
  const args = spec.args(bin, 'PORT', gen, 'STATS_FILE').map((a) => (a.startsWith(bin.repoRoot) ? path.relative(bin.repoRoot, a) : a));
  return [cmd, ...args].join(' ');
}

/**
 * The real-path servers: armorfeed and gofeeder reading producer frames from the Unix
 * socket `socketPath`, nothing generated. armorfeed also serves /stats on a metrics port,
 * so the bench can see its streams register and read its ingest counters.
 */
function socketLaunch(system: SystemName, bin: Binaries, socketPath: string): Launch {
  if (system === 'armorfeed') {
    return {
      command: process.execPath,
      args: (port, metricsPort, statsFile) => [
        ...BROKER_NODE_FLAGS,
        path.join(bin.repoRoot, 'dist', 'src', 'cli', 'main.js'),
        'serve',
        '--bind', '127.0.0.1',
        '--gRPC', port,
        '--gRPCHealthPort', '-1',
        '--metricsPort', metricsPort,
        '--metricsBind', '127.0.0.1',
        '--source', 'socket',
        '--socket', socketPath,
        '--statsFile', statsFile,
      ],
      // Printed once every port is bound and the socket source is listening.
      ready: /^armorfeed: listening\b/,
      metrics: true,
    };
  }
  return {
    command: path.join(bin.peersBin, 'gofeeder'),
    args: (port) => ['--addr', `127.0.0.1:${port}`, '--socket', socketPath],
    // "listening" comes before the Unix socket is bound; this line comes after.
    ready: /^gofeeder: ingesting msgpack frames on /,
    metrics: false,
  };
}

export function socketServerCommandLine(system: SystemName, bin: Binaries, socketPath: string): string {
  const launch = socketLaunch(system, bin, socketPath);
  const cmd = system === 'armorfeed' ? 'node' : '$BIN/gofeeder';
  const args = launch.args('PORT', 'METRICS_PORT', 'STATS_FILE').map((a) => (a.startsWith(bin.repoRoot) ? path.relative(bin.repoRoot, a) : a));
  return [cmd, ...args].join(' ');
}

/** Starts `system` on a free loopback port and waits for its ready line (retries a port race twice). */
export async function startServer(system: SystemName, bin: Binaries, gen: GeneratorFlags): Promise<RunningServer> {
  const spec = SPECS[system];
  return startLaunch(system, bin, {
    command: spec.command(bin),
    args: (port, _metricsPort, statsFile) => spec.args(bin, port, gen, statsFile),
    ready: spec.ready,
    generationStart: spec.generationStart,
    generationEnd: spec.generationEnd,
    metrics: false,
  });
}

/** Starts `system` reading frames from the Unix socket `socketPath` (see socketLaunch). */
export async function startSocketServer(system: SystemName, bin: Binaries, socketPath: string): Promise<RunningServer> {
  return startLaunch(system, bin, socketLaunch(system, bin, socketPath));
}

async function startLaunch(system: SystemName, bin: Binaries, launch: Launch): Promise<RunningServer> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const metricsPort = launch.metrics ? await freePort() : -1;
    const started = await tryStart(system, bin, launch, port, metricsPort);
    if (typeof started !== 'string') return started;
    lastError = started;
    if (!/EADDRINUSE|address already in use/i.test(started)) break;
  }
  throw new ServerFailure(system, `did not start: ${lastError}`);
}

async function tryStart(system: SystemName, bin: Binaries, spec: Launch, port: number, metricsPort: number): Promise<RunningServer | string> {
  // armorfeed writes its final stats here at exit; gofeeder is not given it.
  const statsFile = path.join(os.tmpdir(), `armorfeed-peers-${process.pid}-${port}.json`);
  const proc = spawnTracked(spec.command, spec.args(String(port), String(metricsPort), statsFile), bin.repoRoot);
  let generationStartMs: number | undefined;
  let generationEndMs: number | undefined;
  let markDone: () => void = () => undefined;
  const generationDone = new Promise<void>((resolve) => {
    markDone = resolve;
  });
  const ready = new Promise<boolean>((resolve) => {
    proc.onLine((line) => {
      if (spec.ready.test(line.text)) resolve(true);
      if (generationStartMs === undefined && spec.generationStart?.test(line.text) === true) generationStartMs = line.atMs;
      if (generationEndMs === undefined && spec.generationEnd?.test(line.text) === true) {
        generationEndMs = line.atMs;
        markDone();
      }
    });
    void proc.exited.then(() => resolve(false));
  });
  const ok = await withTimeout(ready, READY_TIMEOUT_MS);
  if (ok !== true) {
    await stopChild(proc, 2_000, 'SIGKILL');
    const why = ok === undefined ? `no ready line within ${READY_TIMEOUT_MS} ms` : 'exited before it was ready';
    return `${why}; stderr: ${proc.stderr().slice(-1500)}`;
  }
  void proc.exited.then(() => markDone());
  const sampler = new ProcSampler(proc.pid, proc.spawnedAt).start();

  return {
    system,
    addr: `127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    process: proc,
    sampler,
    metricsAddr: spec.metrics ? `127.0.0.1:${metricsPort}` : undefined,
    generationDone,
    markGeneration(edge) {
      const now = performance.now() - proc.spawnedAt;
      if (edge === 'start') generationStartMs ??= now;
      else if (generationEndMs === undefined) {
        generationEndMs = now;
        markDone();
      }
    },
    async stop(graceMs = STOP_GRACE_MS): Promise<ServerStop> {
      const exitedEarly = proc.hasExited();
      const final = sampler.sample();
      sampler.stop();
      const last = sampler.last();
      const exit = await stopChild(proc, graceMs);
      // Let the last lines of output arrive (the pipes close with the process).
      await sleep(20);
      const cpuSec = final?.cpuSec ?? last?.cpuSec ?? 0;
      const before = sampler.samples.filter((x) => generationStartMs === undefined || x.atMs <= generationStartMs).pop();
      return {
        system,
        cpuSec,
        runCpuSec: cpuSec - (before?.cpuSec ?? 0),
        peakRssBytes: final?.hwmBytes ?? sampler.maxRssBytes(),
        samples: sampler.samples,
        generationStartMs,
        generationEndMs,
        exitCode: exit.code,
        exitSignal: exit.signal,
        killed: exit.killed,
        exitedEarly,
        summary: system === 'armorfeed' ? readArmorfeedSummary(statsFile) : parseGofeederSummary(proc.stderr()),
        stderrTail: proc.stderr().slice(-3000),
      };
    },
  };
}

/** Why a stop counts as a failed run (crash, hang, bad exit status), or undefined. */
export function stopProblem(stop: ServerStop): string | undefined {
  if (stop.exitedEarly) return `exited on its own before it was stopped (code=${stop.exitCode} signal=${stop.exitSignal})`;
  if (stop.killed) return 'did not exit within the grace period after SIGTERM and was SIGKILLed (hang)';
  if (stop.exitCode !== 0) return `exit status ${stop.exitCode} (signal ${stop.exitSignal}) after SIGTERM`;
  return undefined;
}

function portOf(peer: string): number {
  const m = /:(\d+)$/.exec(peer);
  return m === null ? -1 : Number(m[1]);
}

/** armorfeed's final stats (`--statsFile`, written at exit), as rows; an empty summary when it wrote none (it crashed or hung). */
function readArmorfeedSummary(statsFile: string): ServerSummary {
  let stats: FeederStats;
  try {
    stats = JSON.parse(fs.readFileSync(statsFile, 'utf8')) as FeederStats;
  } catch {
    return { rows: [], ingest: {}, globalDropped: {}, notes: [] };
  } finally {
    fs.rmSync(statsFile, { force: true });
  }
  return armorfeedSummary(stats);
}

/** armorfeed's stats object as the rows both systems are compared by. `closed` is client_closed + shutdown_grace_expired: both are "the stream ended first". */
export function armorfeedSummary(stats: FeederStats): ServerSummary {
  return {
    rows: stats.clients.map((c) => ({
      name: c.name,
      stream: c.stream,
      filter: c.filter,
      peer: c.peer,
      peerPort: portOf(c.peer),
      delivered: c.delivered,
      queueFull: c.dropped.client_queue_full,
      throttled: c.dropped.throttled,
      filtered: c.dropped.filtered,
      closed: c.dropped.client_closed + c.dropped.shutdown_grace_expired,
      p99Us: c.latencyUs.p99,
    })),
    generated: { alerts: stats.encoded.alerts, logs: stats.encoded.logs },
    ingest: Object.fromEntries(Object.entries(stats.ingest).map(([name, s]) => [name, { events: s.events, ringFull: s.dropped.ring_full, malformed: s.dropped.malformed_input }])),
    globalDropped: { ...stats.dropped },
    notes: [],
  };
}

/**
 * gofeeder's table, printed when generation ends and again on SIGTERM (the last one is final):
 *
 *   gofeeder: generation finished: generated=200000 (alerts=40000 logs=160000) elapsed=0.460s ...
 *   gofeeder: socket ingest: events=200000 malformed=0      (with --socket, on SIGTERM)
 *   gofeeder: stream     filter  peer                        sent    dropped state
 *   gofeeder: alerts-2   policy  127.0.0.1:50464            27818      11181 open
 */
export function parseGofeederSummary(stderr: string): ServerSummary {
  const lines = stderr.split('\n').filter((l) => l.startsWith('gofeeder: '));
  const summary: ServerSummary = { rows: [], ingest: {}, globalDropped: {}, notes: [] };
  for (const line of lines) {
    const g = /generated=(\d+) \(alerts=(\d+) logs=(\d+)\)/.exec(line);
    if (g !== null) summary.generated = { alerts: Number(g[2]), logs: Number(g[3]) };
    // With --socket, printed on SIGTERM before the final table (the last one is final).
    const ingest = /^gofeeder: socket ingest: events=(\d+) malformed=(\d+)/.exec(line);
    if (ingest !== null) summary.ingest.socket = { events: Number(ingest[1]), malformed: Number(ingest[2]) };
  }
  let header = -1;
  lines.forEach((l, i) => {
    if (/^gofeeder: stream\s+filter\s+peer\s+sent\s+dropped/.test(l)) header = i;
  });
  if (header < 0) return summary;
  for (const line of lines.slice(header + 1)) {
    const f = line.slice(10).trim().split(/\s+/);
    if (f.length >= 5 && /^\d+$/.test(f[3]) && /^\d+$/.test(f[4])) {
      summary.rows.push({
        name: f[0],
        stream: f[0].startsWith('alerts') ? 'alerts' : f[0].startsWith('logs') ? 'logs' : f[0],
        filter: f[1],
        peer: f[2],
        peerPort: portOf(f[2]),
        delivered: Number(f[3]),
        queueFull: Number(f[4]),
        throttled: 0,
        filtered: 0,
        closed: 0,
      });
    } else {
      summary.notes.push(line.slice(10).trim());
    }
  }
  return summary;
}
