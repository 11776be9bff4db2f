/**
 * armorfeed micro-benchmarks: one per pipeline stage, each candidate measured against
 * its baseline in the same run (tinybench).
 *
 *   node dist/bench/micro.js [--quick] [--only ring,encode,grpc,fanout,scan,ingest] [--results-dir DIR]
 *
 * Prints the machine and versions, then one row per stage, then per-stage notes; writes
 * the same as JSON to bench/results/micro-<timestamp>.json. --quick gives each task
 * ~0.3 s (CI smoke test: it shows every stage works, not how fast); the default run
 * takes about a minute and a half on a 2-core machine.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchSettings, type BenchSettings, type PairResult } from './common';
import { benchEncode, benchScan } from './encode';
import { benchFanout } from './fanout';
import { benchIngest } from './ingest';
import { benchGrpcWrite } from './grpc-write';
import { findRepoRoot } from './devkit';
import { busyWarning, formatMachine, machineInfo } from './machine';
import { benchRingTransfer } from './ring-transfer';

const stages: Record<string, (s: BenchSettings) => Promise<PairResult>> = {
  ring: benchRingTransfer,
  encode: benchEncode,
  grpc: benchGrpcWrite,
  fanout: benchFanout,
  scan: benchScan,
  ingest: benchIngest,
};

interface Args {
  quick: boolean;
  only: string[];
  resultsDir: string | undefined;
}

const usage = 'usage: node dist/bench/micro.js [--quick] [--only ring,encode,grpc,fanout,scan,ingest] [--results-dir DIR]';

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, only: Object.keys(stages), resultsDir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${usage}`);
      return v;
    };
    if (a === '--quick') args.quick = true;
    else if (a === '--only') {
      args.only = value().split(',').filter((s) => s !== '');
      const unknown = args.only.filter((s) => !(s in stages));
      if (unknown.length > 0) throw new Error(`--only: unknown stage ${unknown.join(', ')} (stages: ${Object.keys(stages).join(', ')})\n${usage}`);
    } else if (a === '--results-dir') args.resultsDir = value();
    else if (a === '--help' || a === '-h') {
      console.log(usage);
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${usage}`);
  }
  return args;
}

const rate = (n: number): string => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toPrecision(3));

function table(results: PairResult[]): string {
  const header = ['benchmark', 'candidate', 'baseline', 'candidate ops/s', 'baseline ops/s', 'ratio', 'rme% (cand / base; ratio)'];
  const rows = results.map((r) => [
    r.benchmark,
    r.candidate.task,
    r.baseline.task,
    `${rate(r.candidate.opsPerSec)} ${r.unit}/s`,
    `${rate(r.baseline.opsPerSec)} ${r.unit}/s`,
    `${r.ratio.toFixed(2)}x`,
    `±${r.candidate.rmePct.toFixed(1)} / ±${r.baseline.rmePct.toFixed(1)}; ±${r.ratioRmePct.toFixed(1)}`,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]): string => `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = findRepoRoot();
  const settings = benchSettings(args.quick);
  const machine = machineInfo(root);
  const startedAt = new Date();
  console.log(`armorfeed micro-benchmarks${args.quick ? ' (--quick: smoke test, numbers are indicative only)' : ''}`);
  console.log(formatMachine(machine));
  console.log(
    `budget:   cpu tasks ${settings.cpu.time} ms + ${settings.cpu.warmupTime} ms warmup (>= ${settings.cpu.iterations} iterations); ` +
      `thread tasks ${settings.thread.time} ms + ${settings.thread.warmupTime} ms warmup (>= ${settings.thread.iterations}); ` +
      `io tasks ${settings.io.time} ms + ${settings.io.warmupTime} ms warmup (>= ${settings.io.iterations} iterations)`,
  );
  console.log('');

  const results: PairResult[] = [];
  for (const name of args.only) {
    const t0 = performance.now();
    process.stdout.write(`running ${name} ... `);
    const r = await stages[name](settings);
    results.push(r);
    console.log(`${r.ratio.toFixed(2)}x (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }

  console.log('');
  console.log(table(results));
  console.log('');
  console.log('ops/s = units per iteration / mean iteration time. ratio = candidate ops/s / baseline ops/s (above 1: the candidate is faster).');
  console.log('rme = 95% relative margin of error of the mean iteration time; the ratio\'s tolerance combines both in quadrature.');
  console.log('It covers this run only, not run-to-run or machine-to-machine variation.');
  for (const r of results) {
    console.log(`- ${r.benchmark}: ${r.candidate.samples} / ${r.baseline.samples} samples; ${r.notes.join('; ')}`);
  }

  const dir = args.resultsDir ?? path.join(root, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `micro-${args.quick ? 'quick-' : ''}${stamp}.json`);
  const elapsedS = (Date.now() - startedAt.getTime()) / 1000;
  const loadAtEnd = os.loadavg().map((l) => Math.round(l * 100) / 100);
  fs.writeFileSync(file, JSON.stringify({ startedAt: startedAt.toISOString(), elapsedS, quick: args.quick, settings, machine, loadAtEnd, results }, null, 2) + '\n');
  console.log('');
  // The run itself adds about 1 to the 1-minute load (its stages are mostly one thread).
  console.log(`load at end: ${loadAtEnd.join(' / ')} (1 / 5 / 15 min)${busyWarning(Math.round((loadAtEnd[0] - 1) * 100) / 100, machine.availableParallelism)}`);
  console.log(`results: ${file} (${elapsedS.toFixed(0)} s)`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
