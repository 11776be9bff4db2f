/**
 * The neutral Go load client (`$BIN/loadclient --json`), run as a bounded child, with
 * its one-object report parsed into typed fields. The same binary and flags are used
 * against both servers, so neither side brings its own measuring code.
 */
import * as path from 'node:path';
import { runPeerTool } from './children';

export interface Latency {
  p50: number;
  p90: number;
  p99: number;
  p99_9: number;
  max: number;
  mean: number;
}

export interface LoadClientClient {
  client: number;
  received: number;
  alerts: number;
  logs: number;
  missing: number;
  missingPct: number;
  rateEps: number;
  latencyUs: Latency;
  stop: string;
}

export interface LoadClientReport {
  clients: LoadClientClient[];
  expectPerClient: number;
  received: number;
  missing: number;
  missingPct: number;
  aggregateRateEps: number;
  spanS: number;
  latencyUs: Latency;
  failures: number;
  errors: string[];
}

export interface LoadClientRun {
  args: string[];
  report?: LoadClientReport;
  exitCode: number | null;
  /** True when it overran its time limit and was killed. */
  timedOut: boolean;
  /** utime+stime of loadclient (last reading before it exited; at most 200 ms short). */
  cpuSec: number;
  stderrTail: string;
}

export interface LoadClientOptions {
  addr: string;
  clients: number;
  expect: number;
  streams: 'logs' | 'alerts' | 'both';
  /** loadclient's own wall-time limit (--duration). */
  durationS: number;
  idleS?: number;
}

export function loadClientArgs(o: LoadClientOptions): string[] {
  const args = ['--addr', o.addr, '--clients', String(o.clients), '--expect', String(o.expect), '--streams', o.streams];
  args.push('--duration', `${Math.ceil(o.durationS)}s`);
  if (o.idleS !== undefined) args.push('--idle', `${o.idleS}s`);
  args.push('--json');
  return args;
}

/** Runs loadclient; its --duration bounds it, and a hard cap of duration + 20 s kills it. */
export async function runLoadClient(peersBin: string, cwd: string, o: LoadClientOptions): Promise<LoadClientRun> {
  const args = loadClientArgs(o);
  const run = await runPeerTool(path.join(peersBin, 'loadclient'), args, cwd, (o.durationS + 20) * 1000, (out) => parseReport(JSON.parse(out) as unknown));
  return { args, ...run };
}

/** Why a loadclient run counts as a failed run, or undefined. */
export function loadClientProblem(run: LoadClientRun): string | undefined {
  if (run.timedOut) return 'loadclient overran its time limit and was killed';
  if (run.report === undefined) return `loadclient printed no JSON report (exit ${run.exitCode}): ${run.stderrTail}`;
  if (run.exitCode !== 0 || run.report.failures > 0) {
    return `loadclient exit ${run.exitCode}, ${run.report.failures} RPC failure(s): ${run.report.errors.slice(0, 5).join('; ')}`;
  }
  return undefined;
}

/** The largest per-client missing %, the "each client receives everything" measure. */
export function worstClientMissingPct(report: LoadClientReport): number {
  return report.clients.reduce((m, c) => Math.max(m, c.missingPct), 0);
}

type Obj = Record<string, unknown>;

function asObj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`loadclient JSON: ${what} is not an object`);
  return v as Obj;
}

function num(o: Obj, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    if (v === undefined || v === null) return 0;
    throw new Error(`loadclient JSON: ${key} is not a number`);
  }
  return v;
}

function latency(v: unknown): Latency {
  const o = asObj(v ?? {}, 'latency_us');
  return { p50: num(o, 'p50'), p90: num(o, 'p90'), p99: num(o, 'p99'), p99_9: num(o, 'p99_9'), max: num(o, 'max'), mean: num(o, 'mean') };
}

export function parseReport(json: unknown): LoadClientReport {
  const o = asObj(json, 'report');
  const clients = Array.isArray(o.clients) ? o.clients : [];
  const errors = Array.isArray(o.errors) ? o.errors.map((e) => String(e)) : [];
  return {
    clients: clients.map((c: unknown) => {
      const co = asObj(c, 'client');
      return {
        client: num(co, 'client'),
        received: num(co, 'received'),
        alerts: num(co, 'alerts'),
        logs: num(co, 'logs'),
        missing: num(co, 'missing'),
        missingPct: num(co, 'missing_pct'),
        rateEps: num(co, 'rate_eps'),
        latencyUs: latency(co.latency_us),
        stop: typeof co.stop === 'string' ? co.stop : '',
      };
    }),
    expectPerClient: num(o, 'expect_per_client'),
    received: num(o, 'received'),
    missing: num(o, 'missing'),
    missingPct: num(o, 'missing_pct'),
    aggregateRateEps: num(o, 'aggregate_rate_eps'),
    spanS: num(o, 'span_s'),
    latencyUs: latency(o.latency_us),
    failures: num(o, 'failures'),
    errors,
  };
}
