/**
 * What every micro-benchmark stage shares: how long tasks run (default or --quick),
 * how a tinybench task becomes a rate in the stage's own unit, and the pair result
 * (candidate against its baseline, measured in the same run) that micro.ts prints.
 */
import { Bench, type Task } from 'tinybench';

/** tinybench budgets for one task: ms of measuring and warming, and minimum iterations. */
export interface Budget {
  time: number;
  warmupTime: number;
  iterations: number;
  warmupIterations: number;
}

export interface BenchSettings {
  quick: boolean;
  /** CPU-bound tasks: many short iterations. */
  cpu: Budget;
  /** Cross-thread tasks: iterations of a few to a few hundred ms. */
  thread: Budget;
  /** Socket I/O tasks: few long iterations. */
  io: Budget;
}

export function benchSettings(quick: boolean): BenchSettings {
  if (quick) {
    // --quick: ~0.3 s per task, enough for CI to see every stage work, not to judge it.
    return {
      quick,
      cpu: { time: 250, warmupTime: 50, iterations: 5, warmupIterations: 2 },
      thread: { time: 250, warmupTime: 50, iterations: 3, warmupIterations: 1 },
      io: { time: 250, warmupTime: 0, iterations: 2, warmupIterations: 1 },
    };
  }
  return {
    quick,
    cpu: { time: 4000, warmupTime: 500, iterations: 64, warmupIterations: 16 },
    thread: { time: 6000, warmupTime: 500, iterations: 16, warmupIterations: 4 },
    io: { time: 6000, warmupTime: 600, iterations: 5, warmupIterations: 1 },
  };
}

/** One side of a pair, in the stage's unit (events, messages, batches). */
export interface SideResult {
  task: string;
  /** Units per second: units per iteration / mean iteration time. */
  opsPerSec: number;
  /** Mean time of one iteration, ms. */
  meanMs: number;
  /** Relative margin of error of the mean iteration time (95%), percent. */
  rmePct: number;
  samples: number;
}

export interface PairResult {
  benchmark: string;
  /** What one op is: "event", "message", "batch". */
  unit: string;
  unitsPerIteration: number;
  candidate: SideResult;
  baseline: SideResult;
  /** candidate ops/s / baseline ops/s: above 1 means the candidate is faster. */
  ratio: number;
  /** Tolerance of the ratio, percent: the two rmes combined in quadrature. */
  ratioRmePct: number;
  /** Stage-specific figures (ns/event, retries, bytes) and caveats. */
  notes: string[];
}

export interface TaskSpec {
  name: string;
  fn: () => unknown;
  async: boolean;
}

function sideOf(task: Task, unitsPerIteration: number): SideResult {
  const r = task.result;
  if (r.state === 'errored') throw r.error;
  if (r.state !== 'completed' && r.state !== 'aborted-with-statistics') {
    throw new Error(`benchmark task "${task.name}" did not complete (state ${r.state})`);
  }
  // Units over mean time rather than tinybench's mean of per-sample rates: with few,
  // long I/O samples the mean of rates overweights the fastest sample.
  const meanMs = r.latency.mean;
  return {
    task: task.name,
    opsPerSec: (unitsPerIteration * 1000) / meanMs,
    meanMs,
    rmePct: r.latency.rme,
    samples: r.latency.samplesCount,
  };
}

/**
 * Runs candidate then baseline in one tinybench Bench with the same budget and returns
 * both as rates of `unit`. Throws if either task failed: a benchmark that errored must
 * not print a ratio.
 */
export async function runPair(
  benchmark: string,
  budget: Budget,
  unit: string,
  unitsPerIteration: number,
  candidate: TaskSpec,
  baseline: TaskSpec,
): Promise<PairResult> {
  const bench = new Bench({ name: benchmark, ...budget, throws: true });
  bench.add(candidate.name, candidate.fn, { async: candidate.async });
  bench.add(baseline.name, baseline.fn, { async: baseline.async });
  await bench.run();
  const c = sideOf(bench.tasks[0], unitsPerIteration);
  const b = sideOf(bench.tasks[1], unitsPerIteration);
  return {
    benchmark,
    unit,
    unitsPerIteration,
    candidate: c,
    baseline: b,
    ratio: c.opsPerSec / b.opsPerSec,
    ratioRmePct: Math.sqrt(c.rmePct ** 2 + b.rmePct ** 2),
    notes: [],
  };
}

/** Fails the run when a benchmark's two sides did not do the same work. */
export function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`benchmark self-check failed: ${what}`);
}
