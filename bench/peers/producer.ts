/**
 * The neutral Go producer (`$BIN/producer`), run as a bounded child: it writes events in
 * the ingest frame format (4-byte big-endian length + msgpack map) into a feeder's Unix
 * socket, paced or as fast as the socket takes them, and prints one JSON line. The same
 * binary and flags feed both servers on the real-path targets.
 */
import * as path from 'node:path';
import { runPeerTool } from './children';

export interface ProducerOptions {
  /** The feeder's Unix socket (ignored when `tcp` is given). */
  socket: string;
  /** host:port of a TCP ingest, instead of the socket. */
  tcp?: string;
  /** Events per second; 0 = as fast as the socket takes them. */
  rate: number;
  count: number;
  /** Event i is an alert when i % alertEvery === 0 (the producer's default is 5). */
  alertEvery: number;
  /** At most this many frames per write() (paced: only those already due). */
  per: number;
}

export interface ProducerReport {
  sent: number;
  alerts: number;
  logs: number;
  seconds: number;
  rateEps: number;
  /** Total time spent in writes that took over 1 ms: the feeder pushing back. */
  blockedMs: number;
}

export interface ProducerRun {
  args: string[];
  report?: ProducerReport;
  exitCode: number | null;
  /** True when it overran its time limit and was killed. */
  timedOut: boolean;
  /** utime+stime of the producer (last reading before it exited; at most 200 ms short). */
  cpuSec: number;
  /** Wall time from spawn to exit, in seconds. */
  wallS: number;
  stderrTail: string;
}

export function producerArgs(o: ProducerOptions): string[] {
  return [...(o.tcp !== undefined ? ['--tcp', o.tcp] : ['--socket', o.socket]), '--rate', String(o.rate), '--count', String(o.count), '--alert-every', String(o.alertEvery), '--per', String(o.per)];
}

/**
 * The longest a producer may take: a paced one its schedule plus half again and 30 s;
 * an unpaced one `unpacedCapS` (it waits on the feeder, so it has no schedule).
 */
export function producerCapMs(o: ProducerOptions, unpacedCapS: number): number {
  return o.rate > 0 ? ((o.count / o.rate) * 1.5 + 30) * 1000 : unpacedCapS * 1000;
}

/**
 * Runs the producer until it exits, or SIGKILLs it after `capMs` (a feeder that stops
 * reading leaves it blocked in write()).
 */
export async function runProducer(peersBin: string, cwd: string, o: ProducerOptions, capMs: number): Promise<ProducerRun> {
  const args = producerArgs(o);
  const run = await runPeerTool(path.join(peersBin, 'producer'), args, cwd, capMs, (out) => parseProducerReport(JSON.parse(out.trim().split('\n').pop() ?? '') as unknown));
  return { args, ...run };
}

/** Why a producer run counts as a failed run, or undefined. */
export function producerProblem(run: ProducerRun, expected: number): string | undefined {
  if (run.timedOut) return `producer overran its time limit and was killed (the feeder stopped reading?): ${run.stderrTail}`;
  if (run.report === undefined) return `producer printed no JSON line (exit ${run.exitCode}): ${run.stderrTail}`;
  if (run.exitCode !== 0) return `producer exit ${run.exitCode}: ${run.stderrTail}`;
  if (run.report.sent !== expected) return `producer sent ${run.report.sent} events, not ${expected}`;
  return undefined;
}

function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`producer JSON: ${key} is not a number`);
  return v;
}

export function parseProducerReport(json: unknown): ProducerReport {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('producer JSON: not an object');
  const o = json as Record<string, unknown>;
  return {
    sent: num(o, 'sent'),
    alerts: num(o, 'alerts'),
    logs: num(o, 'logs'),
    seconds: num(o, 'seconds'),
    rateEps: num(o, 'rate_eps'),
    blockedMs: num(o, 'blocked_ms'),
  };
}
