/**
 * Does `armorfeed load` measure what the Go loadclient measures? Two runs against the
 * same server (gofeeder reading the Go producer's frames from a Unix socket) with the
 * same producer, rate and count, one after the other on a fresh server each:
 *
 *   A: armorfeed load, subscriber side only (--expect N)      B: $BIN/loadclient --expect N
 *
 * It compares what each says about the clients: delivered events per second (the mean
 * of the clients' receive rates) within 5%, and p99 latency from UpdatedTime (gofeeder
 * stamps it on arrival) within 20% or 1 ms. Exit 0 when both agree, 1 when not, 2 on a
 * bad flag or a run that failed.
 *
 *   node dist/bench/load-agreement.js [--rate 20000] [--count 100000] [--clients 2]
 *                                     [--streams both] [--bin DIR] [--json]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findRepoRoot, freePort } from './devkit';
import { findPeersBin, sleep, spawnTracked, stopChild, withTimeout } from './peers/children';
import { loadClientProblem, runLoadClient } from './peers/loadclient';
import { producerCapMs, runProducer, type ProducerOptions } from './peers/producer';
import type { LoadReport } from '../src/load/report-model';

interface Flags {
  rate: number;
  count: number;
  clients: number;
  streams: 'both' | 'alerts' | 'logs';
  bin?: string;
  json: boolean;
}

interface Side {
  tool: 'armorfeed load' | 'loadclient';
  /** Mean over clients of (received - 1) / (last - first receive). */
  deliveredEps: number;
  received: number;
  missing: number;
  p50Us: number;
  p99Us: number;
  producerEps: number;
  problem?: string;
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = { rate: 20_000, count: 100_000, clients: 2, streams: 'both', json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) usage(`${a} needs a value`);
      return x;
    };
    if (a === '--rate') f.rate = Number(v());
    else if (a === '--count') f.count = Number(v());
    else if (a === '--clients') f.clients = Number(v());
    else if (a === '--streams') f.streams = v() as Flags['streams'];
    else if (a === '--bin') f.bin = v();
    else if (a === '--json') f.json = true;
    else usage(`unknown flag ${a}`);
  }
  if (!(f.rate > 0 && f.count > 0 && f.clients >= 1 && f.clients <= 16) || !['both', 'alerts', 'logs'].includes(f.streams)) usage('bad --rate/--count/--clients/--streams');
  if (f.count / f.rate > 60) usage('the run would produce for over 60 s: lower --count or raise --rate');
  return f;
}

function usage(why: string): never {
  process.stderr.write(`load-agreement: ${why}\nusage: node dist/bench/load-agreement.js [--rate R] [--count N] [--clients K] [--streams both|alerts|logs] [--bin DIR] [--json]\n`);
  process.exit(2);
}

/** gofeeder on a fresh socket and port; resolves once it listens. */
async function startGofeeder(bin: string, cwd: string, socket: string, port: number): Promise<ReturnType<typeof spawnTracked>> {
  const gf = spawnTracked(path.join(bin, 'gofeeder'), ['--addr', `127.0.0.1:${port}`, '--socket', socket], cwd);
  for (let i = 0; i < 200 && !gf.stderr().includes('listening'); i++) await sleep(25);
  if (!gf.stderr().includes('listening')) throw new Error(`gofeeder did not start: ${gf.stderr().slice(-500)}`);
  return gf;
}

async function runSide(tool: Side['tool'], f: Flags, bin: string, repo: string): Promise<Side> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-agreement-'));
  const socket = path.join(dir, 'ingest.sock');
  const port = await freePort();
  const gf = await startGofeeder(bin, dir, socket, port);
  const producer: ProducerOptions = { socket, rate: f.rate, count: f.count, alertEvery: 5, per: 1 };
  const perClient = f.streams === 'both' ? f.count : f.streams === 'alerts' ? Math.floor(f.count / 5) : f.count - Math.floor(f.count / 5);
  const durationS = Math.ceil(f.count / f.rate) + 20;
  try {
    if (tool === 'loadclient') {
      const run = runLoadClient(bin, dir, { addr: `127.0.0.1:${port}`, clients: f.clients, expect: perClient, streams: f.streams, durationS, idleS: 2 });
      await sleep(1500);
      const p = await runProducer(bin, dir, producer, producerCapMs(producer, 60));
      const r = await run;
      const problem = loadClientProblem(r);
      const rep = r.report;
      return {
        tool,
        deliveredEps: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + c.rateEps, 0) / Math.max(1, rep.clients.length),
        received: rep?.received ?? 0,
        missing: rep?.missing ?? 0,
        p50Us: rep?.latencyUs.p50 ?? 0,
        p99Us: rep?.latencyUs.p99 ?? 0,
        producerEps: p.report?.rateEps ?? 0,
        problem,
      };
    }
    const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
    const load = spawnTracked(
      process.execPath,
      [cli, 'load', '--addr', `127.0.0.1:${port}`, '--clients', String(f.clients), '--streams', f.streams, '--expect', String(perClient), '--duration', `${durationS}s`, '--idle', '2s', '--json'],
      dir,
    );
    await sleep(1500);
    const p = await runProducer(bin, dir, producer, producerCapMs(producer, 60));
    const exit = (await withTimeout(load.exited, (durationS + 20) * 1000)) ?? (await stopChild(load, 2000, 'SIGKILL'));
    let rep: LoadReport | undefined;
    try {
      rep = JSON.parse(load.stdout()) as LoadReport;
    } catch {
      rep = undefined;
    }
    return {
      tool,
      deliveredEps: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + c.rateEps, 0) / Math.max(1, rep.clients.length),
      received: rep?.aggregate.received ?? 0,
      missing: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + (c.missing ?? 0), 0),
      p50Us: rep?.aggregate.latencyFromUpdatedUs.p50 ?? 0,
      p99Us: rep?.aggregate.latencyFromUpdatedUs.p99 ?? 0,
      producerEps: p.report?.rateEps ?? 0,
      problem:
        rep === undefined
          ? `armorfeed load printed no JSON (exit ${exit.code}): ${load.stderr().slice(-500)}`
          : rep.failures.length > 0
            ? rep.failures.join('; ')
            : rep.verdict.clientLimited.length > 0
              ? rep.clients.filter((c) => c.limitedBy === 'client').map((c) => `${c.name} ${c.limit}`).join(' ')
              : undefined,
    };
  } finally {
    await stopChild(gf, 3000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2));
  const repo = findRepoRoot();
  const bin = findPeersBin(repo, f.bin);
  const a = await runSide('armorfeed load', f, bin, repo);
  const b = await runSide('loadclient', f, bin, repo);
  const rateDiffPct = b.deliveredEps > 0 ? (100 * Math.abs(a.deliveredEps - b.deliveredEps)) / b.deliveredEps : Infinity;
  const p99DiffUs = Math.abs(a.p99Us - b.p99Us);
  const p99DiffPct = b.p99Us > 0 ? (100 * p99DiffUs) / b.p99Us : Infinity;
  const rateAgrees = rateDiffPct <= 5;
  const p99Agrees = p99DiffPct <= 20 || p99DiffUs <= 1000;
  const result = { flags: f, armorfeedLoad: a, loadclient: b, rateDiffPct, p99DiffUs, p99DiffPct, rateAgrees, p99Agrees, loadAvg: os.loadavg() };
  if (f.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const row = (s: Side): string =>
      `${s.tool.padEnd(15)} delivered ${Math.round(s.deliveredEps).toLocaleString('en-US').padStart(8)} ev/s  received ${s.received.toLocaleString('en-US').padStart(9)}  missing ${s.missing.toLocaleString('en-US').padStart(7)}  ` +
      `p50 ${s.p50Us.toLocaleString('en-US').padStart(8)}us  p99 ${s.p99Us.toLocaleString('en-US').padStart(9)}us  (producer ${Math.round(s.producerEps).toLocaleString('en-US')} ev/s)${s.problem !== undefined ? `  PROBLEM: ${s.problem}` : ''}`;
    process.stdout.write(
      `load agreement: gofeeder --socket + Go producer at ${f.rate.toLocaleString('en-US')} ev/s x ${f.count.toLocaleString('en-US')}, ${f.clients} clients (${f.streams}); load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}\n` +
        `${row(a)}\n${row(b)}\n` +
        `delivered ev/s differ by ${rateDiffPct.toFixed(1)}% (limit 5%): ${rateAgrees ? 'agree' : 'DISAGREE'}; ` +
        `p99 differs by ${Math.round(p99DiffUs).toLocaleString('en-US')}us = ${p99DiffPct.toFixed(1)}% (limit 20% or 1 ms): ${p99Agrees ? 'agree' : 'DISAGREE'}\n`,
    );
  }
  if (a.problem !== undefined || b.problem !== undefined) process.exitCode = 2;
  else if (!rateAgrees || !p99Agrees) process.exitCode = 1;
}

void main().catch((err: Error) => {
  process.stderr.write(`load-agreement: ${err.stack ?? err.message}\n`);
  process.exit(2);
});
