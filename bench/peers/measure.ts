/**
 * One measurement: start a server, point loadclient at it, stop the server, and keep
 * everything both sides reported. Each measurement is bounded (server start, loadclient
 * duration + hard cap, server stop + SIGKILL) and collects every reason it counts as a
 * failed run (RPC failure, crash, hang) instead of throwing, so a target can go on.
 */
import * as os from 'node:os';
import { sleep, withTimeout } from './children';
import { loadClientProblem, runLoadClient, type LoadClientOptions, type LoadClientRun } from './loadclient';
import type { ProducerRun } from './producer';
import {
  serverCommandLine,
  startServer,
  stopProblem,
  type Binaries,
  type GeneratorFlags,
  type RunningServer,
  type ServerStop,
  type SystemName,
} from './servers';

/** Real-path runs: what the producer sent against what the server says it took in. */
export interface IngestCheck {
  sent: number;
  ingested: number;
  /** armorfeed: dropped at the ring before fan-out; gofeeder has no ring. */
  ringFull?: number;
  malformed: number;
  /** armorfeed: GET /stats after the run; gofeeder: its SIGTERM line. */
  from: string;
}

export interface Measurement {
  system: SystemName;
  label: string;
  /** The synthetic source's flags (targets 1-5); absent on the real path. */
  gen?: GeneratorFlags;
  serverCommand: string;
  loadclientArgs: string[];
  loadclient?: LoadClientRun;
  /** Real path (targets R1-R5): the Go producer writing into the server's Unix socket. */
  producer?: ProducerRun;
  ingest?: IngestCheck;
  server?: ServerStop;
  loadavg1: { start: number; end: number };
  wallS: number;
  /** Everything that makes this a failed run; empty when it ran cleanly. */
  problems: string[];
  /** Things that ran but look wrong (e.g. counters that disagree with the client). */
  observations: string[];
  /** Extra per-target data (kept in the JSON). */
  extra: Record<string, unknown>;
}

export interface MeasureHooks {
  /** After the server is ready, before loadclient starts (e.g. connect stalled clients). */
  beforeClient?(server: RunningServer): Promise<void> | void;
  /** After loadclient has finished, before the server is stopped. */
  beforeStop?(server: RunningServer, m: Measurement): Promise<void> | void;
  /** After the server has stopped (e.g. close stalled clients, check its summary). */
  afterStop?(m: Measurement): Promise<void> | void;
}

export type Log = (line: string) => void;

export async function measure(
  bin: Binaries,
  system: SystemName,
  label: string,
  gen: GeneratorFlags,
  client: Omit<LoadClientOptions, 'addr'>,
  hooks: MeasureHooks = {},
): Promise<Measurement> {
  const started = performance.now();
  const m: Measurement = {
    system,
    label,
    gen,
    serverCommand: serverCommandLine(system, bin, gen),
    loadclientArgs: [],
    loadavg1: { start: os.loadavg()[0], end: NaN },
    wallS: 0,
    problems: [],
    observations: [],
    extra: {},
  };
  let server: RunningServer | undefined;
  try {
    server = await startServer(system, bin, gen);
    await hooks.beforeClient?.(server);
    m.loadclient = await runLoadClient(bin.peersBin, bin.repoRoot, { ...client, addr: server.addr });
    noteLoadClient(m);
    // The server prints its generation end a moment after the last event; do not wait long.
    await withTimeout(server.generationDone, 2_000);
    await hooks.beforeStop?.(server, m);
    await stopAndNote(system, server, m);
    crossCheck(m);
  } catch (err) {
    m.problems.push(err instanceof Error ? err.message : String(err));
    if (server !== undefined && !server.process.hasExited()) m.server ??= await server.stop(5_000);
  } finally {
    await hooks.afterStop?.(m);
  }
  m.loadavg1.end = os.loadavg()[0];
  m.wallS = (performance.now() - started) / 1000;
  await sleep(300);
  return m;
}

/** Records the loadclient run's arguments and whether it counts as failed. */
export function noteLoadClient(m: Measurement): void {
  if (m.loadclient === undefined) return;
  m.loadclientArgs = m.loadclient.args;
  const problem = loadClientProblem(m.loadclient);
  if (problem !== undefined) m.problems.push(problem);
}

/** Stops the server and records what its stop says about the run. */
export async function stopAndNote(system: SystemName, server: RunningServer, m: Measurement): Promise<void> {
  m.server = await server.stop();
  const problem = stopProblem(m.server);
  if (problem !== undefined) m.problems.push(`${system} ${problem}; stderr tail:\n${m.server.stderrTail.slice(-1200)}`);
  if (system === 'armorfeed' && m.server.summary.rows.length === 0 && problem === undefined) {
    m.observations.push('armorfeed printed no per-client summary on SIGTERM');
  }
}

/**
 * The server's own per-client counters against what loadclient saw: what the server
 * handed to gRPC should have arrived, and what the client missed the server should have
 * counted as dropped. Stalled streams (those `extra.stalledPorts` names) are left out.
 */
export function crossCheck(m: Measurement): void {
  const report = m.loadclient?.report;
  const summary = m.server?.summary;
  if (report === undefined || summary === undefined || summary.rows.length === 0) return;
  if (report.clients.some((c) => c.stop === 'duration')) return; // cut short: the counts cannot agree
  const stalled = new Set<number>((m.extra.stalledPorts as number[] | undefined) ?? []);
  const readers = summary.rows.filter((r) => !stalled.has(r.peerPort));
  const delivered = readers.reduce((s, r) => s + r.delivered, 0);
  const dropped = readers.reduce((s, r) => s + r.queueFull + r.throttled + r.filtered + r.closed, 0);
  const globalDrops = Object.values(summary.globalDropped).reduce((s, n) => s + n, 0);
  m.extra.crossCheck = { serverDelivered: delivered, clientReceived: report.received, serverDropped: dropped, globalDropped: globalDrops, clientMissing: report.missing };
  if (delivered !== report.received) {
    m.observations.push(
      `${m.system} ${m.label}: server says it delivered ${delivered} events to the loadclient streams, loadclient received ${report.received}`,
    );
  }
  // Every missing event must be counted once: per client, or (ring_full and the like,
  // before fan-out) globally, which every client misses.
  const counted = dropped + globalDrops * report.clients.length;
  if (m.system === 'armorfeed' && counted !== report.missing) {
    m.observations.push(
      `${m.system} ${m.label}: loadclient missed ${report.missing} events; the server counted ${dropped} per-client drops + ${globalDrops} global drops × ${report.clients.length} clients = ${counted}`,
    );
  }
}
