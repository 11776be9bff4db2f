/**
 * Does `armorfeed load` measure what the Go loadclient measures, and at what cost? For
 * each scenario, several rounds, each on a fresh server fed by the same producer:
 *
 *   gofeeder scenarios (RATExCLIENTS, rate 0 = unpaced): gofeeder --socket + the Go producer;
 *     A = armorfeed load, subscriber side only (--expect N)    B = $BIN/loadclient --expect N
 *     With one client each (the agreement checks), the two are subscribed side by side,
 *     to the same server in the same run: both measure the same events, so a difference
 *     is the tools', not the run's (unpaced runs differ from each other by more than 5%
 *     on a shared machine). With more clients, or with `--apart`, they run in turns,
 *     each on its own server (the order alternating).
 *   armorfeed scenarios (af:RATExCLIENTS): armorfeed serve (tcp ingest), in turns;
 *     A = armorfeed load end to end (its own producer)         B = the Go producer + loadclient
 *
 * Per scenario it prints each round and the medians: delivered events/s (the mean of the
 * clients' receive rates), p99 latency from UpdatedTime, the producer's rate, and the
 * tool's CPU per delivered event (utime+stime of the whole process from /proc, start-up
 * included, over every event its clients received). The checks:
 *
 *   agreement (acceptance 4, gofeeder scenarios with one client): delivered within 5%,
 *              p99 within 20% or 1 ms
 *   L1 (af: scenario):  producer rate >= 200,000 ev/s and delivered within 5% of loadclient's;
 *                       beside it, the producer alone into a socket that discards (at the
 *                       scenario's rate and unpaced), so a miss shows whose limit it was
 *   L2 (50000x4):       CPU per delivered event <= 1.5x loadclient's
 *
 * Exit 0 when every check holds, 1 when one does not, 2 on a bad flag or a failed run.
 *
 *   node dist/bench/load-agreement.js [--scenarios 50000x1,0x1,50000x4,af:200000x1]
 *        [--count 300000] [--rounds 3] [--streams both] [--apart] [--bin DIR] [--json]
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { findRepoRoot, freePort } from './devkit';
import { formatMachine, machineInfo } from './machine';
import { findPeersBin, ProcSampler, sleep, spawnTracked, stopChild, withTimeout, type TrackedChild } from './peers/children';
import { loadClientProblem, runLoadClient, type LoadClientRun } from './peers/loadclient';
import { producerCapMs, runProducer, type ProducerOptions } from './peers/producer';
import { startBroker } from '../src/load/broker-process';
import type { LoadReport } from '../src/load/report-model';

type Streams = 'both' | 'alerts' | 'logs';

interface Scenario {
  server: 'gofeeder' | 'armorfeed';
  /** Events/s; 0 = as fast as the server takes them. */
  rate: number;
  clients: number;
  label: string;
}

interface Flags {
  scenarios: Scenario[];
  count: number;
  rounds: number;
  streams: Streams;
  bin?: string;
  json: boolean;
  /** Run the tools in turns in gofeeder scenarios too (the default is side by side). */
  apart: boolean;
}

type Tool = 'armorfeed load' | 'loadclient';

interface Side {
  tool: Tool;
  /** Mean over clients of (received - 1) / (last - first receive). */
  deliveredEps: number;
  received: number;
  missing: number;
  p50Us: number;
  p99Us: number;
  producerEps: number;
  /** The tool's process CPU (utime+stime), start-up included. */
  cpuSec: number;
  /** cpuSec per event its clients received, in µs. */
  cpuUsPerEvent: number;
  /** armorfeed load's producer thread: event-loop utilization over the run (0..1); 0 when it had none. */
  producerBusy: number;
  problem?: string;
}

const agreementRatePct = 5;
const agreementP99Pct = 20;
const agreementP99FloorUs = 1000;
const l1MinProducerEps = 200_000;
const l2MaxCpuRatio = 1.5;

function parseScenario(s: string): Scenario {
  const m = /^(af:)?(\d+)x(\d+)$/.exec(s.trim());
  if (m === null) usage(`bad scenario ${JSON.stringify(s)} (RATExCLIENTS or af:RATExCLIENTS)`);
  const clients = Number(m[3]);
  if (clients < 1 || clients > 16) usage(`scenario ${s}: 1..16 clients`);
  return { server: m[1] !== undefined ? 'armorfeed' : 'gofeeder', rate: Number(m[2]), clients, label: s.trim() };
}

function parseFlags(argv: string[]): Flags {
  const f: Flags = { scenarios: '50000x1,0x1,50000x4,af:200000x1'.split(',').map(parseScenario), count: 300_000, rounds: 3, streams: 'both', json: false, apart: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) usage(`${a} needs a value`);
      return x;
    };
    if (a === '--scenarios') f.scenarios = v().split(',').map(parseScenario);
    else if (a === '--count') f.count = Number(v());
    else if (a === '--rounds') f.rounds = Number(v());
    else if (a === '--streams') f.streams = v() as Streams;
    else if (a === '--bin') f.bin = v();
    else if (a === '--json') f.json = true;
    else if (a === '--apart') f.apart = true;
    else usage(`unknown flag ${a}`);
  }
  if (!(f.count > 0 && f.rounds >= 1 && f.rounds <= 15) || !['both', 'alerts', 'logs'].includes(f.streams)) usage('bad --count/--rounds/--streams');
  for (const s of f.scenarios) if (s.rate > 0 && f.count / s.rate > 60) usage(`scenario ${s.label} would produce for over 60 s: lower --count`);
  return f;
}

function usage(why: string): never {
  process.stderr.write(`load-agreement: ${why}\nusage: node dist/bench/load-agreement.js [--scenarios 50000x1,0x1,50000x4,af:200000x1] [--count N] [--rounds R] [--streams both|alerts|logs] [--apart] [--bin DIR] [--json]\n`);
  process.exit(2);
}

function perClientOf(f: Flags): number {
  return f.streams === 'both' ? f.count : f.streams === 'alerts' ? Math.floor(f.count / 5) : f.count - Math.floor(f.count / 5);
}

/** gofeeder on a fresh port (and ingest socket, if given); resolves once it listens. */
async function startGofeeder(bin: string, cwd: string, socket: string | undefined, port: number): Promise<TrackedChild> {
  const gf = spawnTracked(path.join(bin, 'gofeeder'), ['--addr', `127.0.0.1:${port}`, ...(socket !== undefined ? ['--socket', socket] : [])], cwd);
  for (let i = 0; i < 200 && !gf.stderr().includes('listening'); i++) await sleep(25);
  if (!gf.stderr().includes('listening')) throw new Error(`gofeeder did not start: ${gf.stderr().slice(-500)}`);
  return gf;
}

/** armorfeed load as a child, its CPU sampled from /proc; resolves with its JSON report. */
async function runArmorfeedLoad(repo: string, cwd: string, args: string[], capMs: number): Promise<{ rep?: LoadReport; cpuSec: number; why: string }> {
  const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
  const load = spawnTracked(process.execPath, [cli, 'load', ...args, '--json'], cwd);
  const sampler = new ProcSampler(load.pid, load.spawnedAt).start();
  const exit = (await withTimeout(load.exited, capMs)) ?? (await stopChild(load, 2000, 'SIGKILL'));
  sampler.stop();
  let rep: LoadReport | undefined;
  try {
    rep = JSON.parse(load.stdout()) as LoadReport;
  } catch {
    rep = undefined;
  }
  return { rep, cpuSec: sampler.last()?.cpuSec ?? 0, why: `armorfeed load printed no JSON (exit ${exit.code}): ${load.stderr().slice(-500)}` };
}

/** armorfeed load's producer thread's event-loop utilization (0..1); 0 without a producer. */
function producerBusyOf(rep: LoadReport | undefined): number {
  return rep?.threads.find((t) => t.role === 'producer')?.meanElu ?? 0;
}

function sideOfReport(rep: LoadReport | undefined, cpuSec: number, why: string, producerEps: number): Side {
  const received = rep?.aggregate.received ?? 0;
  return {
    tool: 'armorfeed load',
    deliveredEps: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + c.rateEps, 0) / Math.max(1, rep.clients.length),
    received,
    missing: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + (c.missing ?? 0), 0),
    p50Us: rep?.aggregate.latencyFromUpdatedUs.p50 ?? 0,
    p99Us: rep?.aggregate.latencyFromUpdatedUs.p99 ?? 0,
    producerEps,
    cpuSec,
    cpuUsPerEvent: received > 0 ? (cpuSec * 1e6) / received : 0,
    producerBusy: producerBusyOf(rep),
    problem:
      rep === undefined
        ? why
        : rep.failures.length > 0
          ? rep.failures.join('; ')
          : rep.verdict.clientLimited.length > 0
            ? rep.clients.filter((c) => c.limitedBy === 'client').map((c) => `${c.name} ${c.limit}`).join(' ')
            : undefined,
  };
}

function sideOfLoadClient(r: LoadClientRun, producerEps: number): Side {
  const rep = r.report;
  const received = rep?.received ?? 0;
  return {
    tool: 'loadclient',
    deliveredEps: rep === undefined ? 0 : rep.clients.reduce((n, c) => n + c.rateEps, 0) / Math.max(1, rep.clients.length),
    received,
    missing: rep?.missing ?? 0,
    p50Us: rep?.latencyUs.p50 ?? 0,
    p99Us: rep?.latencyUs.p99 ?? 0,
    producerEps,
    cpuSec: r.cpuSec,
    cpuUsPerEvent: received > 0 ? (r.cpuSec * 1e6) / received : 0,
    producerBusy: 0,
    problem: loadClientProblem(r),
  };
}

/** A round's --duration for the tools (its events' time, or 30 s unpaced, plus 20 s) and the cap on waiting for them. */
function roundLimits(s: Scenario, f: Flags): { durationS: number; capMs: number } {
  const durationS = (s.rate > 0 ? Math.ceil(f.count / s.rate) : 30) + 20;
  return { durationS, capMs: (durationS + 20) * 1000 };
}

/** One side of one round on a fresh server. */
async function runSide(tool: Tool, s: Scenario, f: Flags, bin: string, repo: string): Promise<Side> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-agreement-'));
  const perClient = perClientOf(f);
  const { durationS, capMs } = roundLimits(s, f);
  // The server: gofeeder reading the Go producer's frames, or armorfeed serve on tcp ingest.
  let stopServer: () => Promise<unknown>;
  let grpcAddr: string;
  let producerTarget: Pick<ProducerOptions, 'socket' | 'tcp'>;
  let afLoadArgs: string[] = [];
  if (s.server === 'gofeeder') {
    const socket = path.join(dir, 'ingest.sock');
    const port = await freePort();
    const gf = await startGofeeder(bin, dir, socket, port);
    stopServer = () => stopChild(gf, 3000);
    grpcAddr = `127.0.0.1:${port}`;
    producerTarget = { socket };
  } else {
    const broker = await startBroker({});
    stopServer = () => broker.stop();
    const a = broker.addresses;
    if (a.tcp === undefined || a.metrics === undefined) throw new Error('armorfeed serve did not report its tcp and metrics addresses');
    grpcAddr = `${a.grpc.host}:${a.grpc.port}`;
    producerTarget = { socket: '', tcp: `${a.tcp.host}:${a.tcp.port}` };
    afLoadArgs = ['--ingest', `tcp://${a.tcp.host}:${a.tcp.port}`, '--stats', `http://${a.metrics.host}:${a.metrics.port}/stats`, '--pid', String(broker.pid)];
  }
  const producer: ProducerOptions = { ...producerTarget, rate: s.rate, count: f.count, alertEvery: 5, per: 1 };
  try {
    if (tool === 'loadclient') {
      const run = runLoadClient(bin, dir, { addr: grpcAddr, clients: s.clients, expect: perClient, streams: f.streams, durationS, idleS: 2 });
      await sleep(1500);
      const p = await runProducer(bin, dir, producer, producerCapMs(producer, 60));
      return sideOfLoadClient(await run, p.report?.rateEps ?? 0);
    }
    const common = ['--addr', grpcAddr, '--clients', String(s.clients), '--streams', f.streams, '--idle', '2s'];
    if (s.server === 'armorfeed') {
      // End to end: armorfeed load's own producer drives the broker.
      const { rep, cpuSec, why } = await runArmorfeedLoad(repo, dir, [...common, ...afLoadArgs, '--rate', String(s.rate), '--count', String(f.count), '--duration', `${durationS}s`], capMs);
      return sideOfReport(rep, cpuSec, why, rep?.producer?.rateEps ?? 0);
    }
    const run = runArmorfeedLoad(repo, dir, [...common, '--expect', String(perClient), '--duration', `${durationS}s`], capMs);
    await sleep(1500);
    const p = await runProducer(bin, dir, producer, producerCapMs(producer, 60));
    const { rep, cpuSec, why } = await run;
    return sideOfReport(rep, cpuSec, why, p.report?.rateEps ?? 0);
  } finally {
    await stopServer();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The agreement scenarios (gofeeder, one client) run side by side; the others in turns:
 * L2 weighs each tool's CPU with the other's out of the way, and four clients of each
 * at once would overload two cores.
 */
function sideBySide(s: Scenario, f: Flags): boolean {
  return s.server === 'gofeeder' && s.clients === 1 && !f.apart;
}

/** Both tools subscribed to one gofeeder in the same run, then the producer: one round of a gofeeder scenario. */
async function runTogether(s: Scenario, f: Flags, bin: string, repo: string): Promise<{ a: Side; b: Side }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-agreement-'));
  const perClient = perClientOf(f);
  const { durationS, capMs } = roundLimits(s, f);
  const socket = path.join(dir, 'ingest.sock');
  const port = await freePort();
  const gf = await startGofeeder(bin, dir, socket, port);
  const grpcAddr = `127.0.0.1:${port}`;
  try {
    const lc = runLoadClient(bin, dir, { addr: grpcAddr, clients: s.clients, expect: perClient, streams: f.streams, durationS, idleS: 2 });
    const af = runArmorfeedLoad(repo, dir, ['--addr', grpcAddr, '--clients', String(s.clients), '--streams', f.streams, '--idle', '2s', '--expect', String(perClient), '--duration', `${durationS}s`], capMs);
    await sleep(2000);
    const producer: ProducerOptions = { socket, rate: s.rate, count: f.count, alertEvery: 5, per: 1 };
    const p = await runProducer(bin, dir, producer, producerCapMs(producer, 60));
    const producerEps = p.report?.rateEps ?? 0;
    const [r, { rep, cpuSec, why }] = await Promise.all([lc, af]);
    return { a: sideOfReport(rep, cpuSec, why, producerEps), b: sideOfLoadClient(r, producerEps) };
  } finally {
    await stopChild(gf, 3000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

interface ProducerCeiling {
  /** Asked events/s, 0 = unpaced. */
  rate: number;
  sentEps: number;
  busy: number;
  problem?: string;
}

/**
 * armorfeed load's producer into a TCP socket that reads and discards (no broker behind
 * it to push back): the rate its one thread reaches by itself. Its subscriber (the tool
 * needs one) watches a gofeeder nobody feeds; only the producer's figures are read.
 */
async function producerCeiling(rate: number, count: number, bin: string, repo: string): Promise<ProducerCeiling> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-agreement-'));
  const sink = net.createServer((sock) => sock.on('data', () => undefined).on('error', () => undefined));
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const sinkPort = (sink.address() as net.AddressInfo).port;
  const port = await freePort();
  const gf = await startGofeeder(bin, dir, undefined, port);
  try {
    const durationS = (rate > 0 ? Math.ceil(count / rate) : 10) + 10;
    const { rep, why } = await runArmorfeedLoad(repo, dir, ['--addr', `127.0.0.1:${port}`, '--clients', '1', '--ingest', `tcp://127.0.0.1:${sinkPort}`, '--rate', String(rate), '--count', String(count), '--duration', `${durationS}s`, '--idle', '1s', '--drain-timeout', '1s'], (durationS + 20) * 1000);
    return { rate, sentEps: rep?.producer?.rateEps ?? 0, busy: producerBusyOf(rep), ...(rep?.producer === undefined || rep.producer === null ? { problem: why } : {}) };
  } finally {
    await stopChild(gf, 3000);
    await new Promise<void>((resolve) => sink.close(() => resolve()));
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? 0 : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

interface ScenarioResult {
  scenario: Scenario;
  rounds: { a: Side; b: Side }[];
  median: { a: Omit<Side, 'tool' | 'problem'>; b: Omit<Side, 'tool' | 'problem'> };
  rateDiffPct: number;
  p99DiffUs: number;
  p99DiffPct: number;
  cpuRatio: number;
  checks: { name: string; pass: boolean; text: string }[];
  /** armorfeed scenarios: armorfeed load's producer alone, at the scenario's rate and unpaced. */
  ceilings?: ProducerCeiling[];
}

function medianSide(sides: Side[]): Omit<Side, 'tool' | 'problem'> {
  const m = (k: keyof Omit<Side, 'tool' | 'problem'>): number => median(sides.map((x) => x[k]));
  return { deliveredEps: m('deliveredEps'), received: m('received'), missing: m('missing'), p50Us: m('p50Us'), p99Us: m('p99Us'), producerEps: m('producerEps'), cpuSec: m('cpuSec'), cpuUsPerEvent: m('cpuUsPerEvent'), producerBusy: m('producerBusy') };
}

function judge(s: Scenario, rounds: { a: Side; b: Side }[]): ScenarioResult {
  const a = medianSide(rounds.map((r) => r.a));
  const b = medianSide(rounds.map((r) => r.b));
  const rateDiffPct = b.deliveredEps > 0 ? (100 * Math.abs(a.deliveredEps - b.deliveredEps)) / b.deliveredEps : Infinity;
  const p99DiffUs = Math.abs(a.p99Us - b.p99Us);
  const p99DiffPct = b.p99Us > 0 ? (100 * p99DiffUs) / b.p99Us : Infinity;
  const cpuRatio = b.cpuUsPerEvent > 0 ? a.cpuUsPerEvent / b.cpuUsPerEvent : Infinity;
  const rateOk = rateDiffPct <= agreementRatePct;
  const checks: ScenarioResult['checks'] = [];
  const rateText = `delivered ev/s differ by ${rateDiffPct.toFixed(1)}% (limit ${agreementRatePct}%)`;
  if (s.server === 'gofeeder' && s.clients === 1) {
    const p99Ok = p99DiffPct <= agreementP99Pct || p99DiffUs <= agreementP99FloorUs;
    checks.push({ name: 'agreement: delivered', pass: rateOk, text: rateText });
    checks.push({ name: 'agreement: p99', pass: p99Ok, text: `p99 differs by ${Math.round(p99DiffUs).toLocaleString('en-US')}us = ${p99DiffPct.toFixed(1)}% (limit ${agreementP99Pct}% or 1 ms)` });
  }
  if (s.server === 'armorfeed' && s.clients === 1) {
    checks.push({
      name: 'L1: producer rate',
      pass: a.producerEps >= l1MinProducerEps,
      text:
        `armorfeed load's producer sent ${Math.round(a.producerEps).toLocaleString('en-US')} ev/s (target >= ${l1MinProducerEps.toLocaleString('en-US')}, asked ${s.rate.toLocaleString('en-US')}); ` +
        `its thread was busy ${Math.round(100 * a.producerBusy)}%, the Go producer sent ${Math.round(b.producerEps).toLocaleString('en-US')} ev/s to the same kind of server`,
    });
    checks.push({ name: 'L1: delivered', pass: rateOk, text: rateText });
  }
  if (s.server === 'gofeeder' && s.rate === 50_000 && s.clients === 4) {
    checks.push({ name: 'L2: CPU per event', pass: cpuRatio <= l2MaxCpuRatio, text: `CPU per delivered event ${a.cpuUsPerEvent.toFixed(2)}us vs ${b.cpuUsPerEvent.toFixed(2)}us = ${cpuRatio.toFixed(2)}x (limit ${l2MaxCpuRatio}x)` });
  }
  return { scenario: s, rounds, median: { a, b }, rateDiffPct, p99DiffUs, p99DiffPct, cpuRatio, checks };
}

function row(label: string, s: Omit<Side, 'tool' | 'problem'> & { problem?: string }): string {
  const n = (x: number): string => Math.round(x).toLocaleString('en-US');
  return (
    `  ${label.padEnd(22)} delivered ${n(s.deliveredEps).padStart(8)} ev/s  received ${n(s.received).padStart(9)}  missing ${n(s.missing).padStart(7)}  ` +
    `p50 ${n(s.p50Us).padStart(7)}us  p99 ${n(s.p99Us).padStart(8)}us  producer ${n(s.producerEps).padStart(8)} ev/s  cpu ${s.cpuSec.toFixed(2)}s = ${s.cpuUsPerEvent.toFixed(2)}us/ev` +
    `${s.problem !== undefined ? `  PROBLEM: ${s.problem}` : ''}`
  );
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2));
  const repo = findRepoRoot();
  const bin = findPeersBin(repo, f.bin);
  const machine = machineInfo(repo);
  if (!f.json) process.stdout.write(`${formatMachine(machine)}\nload agreement: ${f.count.toLocaleString('en-US')} events per run, streams ${f.streams}, ${f.rounds} rounds per scenario, ${f.apart ? 'the tools in turns' : 'the tools side by side (in the same run) with one gofeeder client each, in turns otherwise'}\n`);
  const results: ScenarioResult[] = [];
  let failed = false;
  for (const s of f.scenarios) {
    const server = s.server === 'gofeeder' ? 'gofeeder --socket' : 'armorfeed serve (tcp ingest)';
    if (!f.json) process.stdout.write(`\n${s.label}: ${server}, ${s.rate > 0 ? `${s.rate.toLocaleString('en-US')} ev/s` : 'unpaced'}, ${s.clients} client(s)\n`);
    const rounds: { a: Side; b: Side }[] = [];
    for (let r = 0; r < f.rounds; r++) {
      let a: Side;
      let b: Side;
      if (sideBySide(s, f)) ({ a, b } = await runTogether(s, f, bin, repo));
      else {
        const order: Tool[] = r % 2 === 0 ? ['armorfeed load', 'loadclient'] : ['loadclient', 'armorfeed load'];
        const got = new Map<Tool, Side>();
        for (const tool of order) got.set(tool, await runSide(tool, s, f, bin, repo));
        a = got.get('armorfeed load') as Side;
        b = got.get('loadclient') as Side;
      }
      if (a.problem !== undefined || b.problem !== undefined) failed = true;
      rounds.push({ a, b });
      if (!f.json) process.stdout.write(`${row(`round ${r + 1} armorfeed load`, a)}\n${row(`round ${r + 1} loadclient`, b)}  (load ${os.loadavg()[0].toFixed(1)})\n`);
    }
    const res = judge(s, rounds);
    if (s.server === 'armorfeed') {
      // What the producer reaches with nothing pushing back, asked the same rate and unpaced.
      res.ceilings = [await producerCeiling(s.rate, f.count * 2, bin, repo), await producerCeiling(0, f.count * 2, bin, repo)];
      if (res.ceilings.some((c) => c.problem !== undefined)) failed = true;
    }
    results.push(res);
    if (!f.json) {
      for (const c of res.ceilings ?? []) {
        process.stdout.write(`  producer alone (into a socket that discards, ${c.rate > 0 ? `asked ${c.rate.toLocaleString('en-US')} ev/s` : 'unpaced'}): ${Math.round(c.sentEps).toLocaleString('en-US')} ev/s, its thread busy ${Math.round(100 * c.busy)}%${c.problem !== undefined ? `  PROBLEM: ${c.problem}` : ''}\n`);
      }
      process.stdout.write(`${row('median armorfeed load', res.median.a)}\n${row('median loadclient', res.median.b)}\n`);
      process.stdout.write(`  ratios: delivered ${(res.median.a.deliveredEps / Math.max(1, res.median.b.deliveredEps)).toFixed(3)}, p99 ${(res.median.a.p99Us / Math.max(1, res.median.b.p99Us)).toFixed(2)}, CPU per event ${res.cpuRatio.toFixed(2)}\n`);
      for (const c of res.checks) process.stdout.write(`  ${c.pass ? 'PASS' : 'FAIL'} ${c.name}: ${c.text}\n`);
    }
  }
  const allPass = results.every((r) => r.checks.every((c) => c.pass));
  if (f.json) process.stdout.write(`${JSON.stringify({ flags: f, machine, results, allPass, loadAvgAtEnd: os.loadavg() })}\n`);
  else process.stdout.write(`\n${allPass ? 'every check holds' : 'SOME CHECK FAILS'}; load average at the end ${os.loadavg().map((x) => x.toFixed(1)).join(' ')} on ${os.cpus().length} CPUs (latency on a shared machine is noisy: compare the medians)\n`);
  if (failed) process.exitCode = 2;
  else if (!allPass) process.exitCode = 1;
}

void main().catch((err: Error) => {
  process.stderr.write(`load-agreement: ${err.stack ?? err.message}\n`);
  process.exit(2);
});
