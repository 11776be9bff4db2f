/**
 * `armorfeed tune`: sweeps broker settings, rates and consumer speeds against a
 * drop-rate target (see src/tune). Exit status: 0 when the sweep ran,
 * 1 when a point failed (broker start, RPC), 2 on a bad flag or a sweep too long
 * for its --max-time bound.
 */
import type { Command } from 'commander';
import { LoadFlagError, parseDurationUs, parseNonNegativeInt, parseStreams } from '../load';
import { formatTuneSummary, renderTuneReport, writeReportFile } from '../report';
import { estimateWallMs, planSweep, runTune, tuneDefaults, validateTuneOptions, type TuneOptions } from '../tune';

interface TuneFlags {
  queueSizes: string;
  encoderThreads?: string;
  batchSizes?: string;
  ringSizes?: string;
  rates: string;
  burst: string;
  clients: string;
  slow: string;
  streams: string;
  alertEvery: string;
  pointDuration: string;
  target: string;
  maxTime: string;
  json?: boolean;
  report?: string;
}

function intList(key: string, value: string): number[] {
  return value.split(',').map((v) => parseNonNegativeInt(key, v.trim()));
}

/** A list of values, or [null] = leave the broker's default (the flag is not passed). */
function optionalIntList(key: string, value: string | undefined): (number | null)[] {
  return value === undefined ? [null] : intList(key, value);
}

/** `K:D1,D2,...`: K slow clients, swept over per-event delays D1, D2, ... */
function parseSlowSweep(value: string): { clients: number; delaysUs: number[] } {
  const i = value.indexOf(':');
  if (i < 0) throw new LoadFlagError('--slow', `${JSON.stringify(value)} is not K:DELAY[,DELAY...] (e.g. 1:500us,2ms)`);
  return {
    clients: parseNonNegativeInt('--slow', value.slice(0, i)),
    delaysUs: value.slice(i + 1).split(',').map((d) => parseDurationUs('--slow', d.trim())),
  };
}

export function tuneOptionsFromFlags(f: TuneFlags): TuneOptions {
  const slow = parseSlowSweep(f.slow);
  const clients = parseNonNegativeInt('--clients', f.clients, 64);
  if (clients < 1 || slow.clients > clients) throw new LoadFlagError('--clients', `must be at least 1 and at least the ${slow.clients} slow clients`);
  const target = Number(f.target);
  if (!Number.isFinite(target)) throw new LoadFlagError('--target', `${JSON.stringify(f.target)} is not a percentage`);
  return validateTuneOptions({
    queueSizes: intList('--queue-sizes', f.queueSizes),
    encoderThreads: optionalIntList('--encoder-threads', f.encoderThreads),
    batchSizes: optionalIntList('--batch-sizes', f.batchSizes),
    ringSizes: optionalIntList('--ring-sizes', f.ringSizes),
    rates: f.rates.trim() === 'auto' ? [] : intList('--rates', f.rates),
    burst: parseNonNegativeInt('--burst', f.burst),
    clients,
    slowClients: slow.clients,
    slowDelaysUs: slow.delaysUs,
    streams: parseStreams('--streams', f.streams),
    alertEvery: parseNonNegativeInt('--alert-every', f.alertEvery),
    pointDurationMs: parseDurationUs('--point-duration', f.pointDuration, 's') / 1000,
    targetDropPct: target,
    maxWallMs: parseDurationUs('--max-time', f.maxTime, 's') / 1000,
  });
}

export function registerTune(program: Command): void {
  const d = tuneDefaults;
  program
    .command('tune')
    .description("sweep armorfeed's queue, encoder and ring settings, rates and consumer speeds against a drop-rate target (loopback only)")
    .option('--queue-sizes <list>', 'per-client queue sizes to try', d.queueSizes.join(','))
    .option('--encoder-threads <list>', 'encoder worker counts to try (default: the broker default)')
    .option('--batch-sizes <list>', 'encoder batch sizes to try (default: the broker default)')
    .option('--ring-sizes <list>', 'ring sizes in bytes to try (default: the broker default)')
    .option('--rates <list>', 'event rates (events/s) to try; auto = find the highest rate the machine sustains, then sweep from 10,000 up to it', 'auto')
    .option('--burst <n>', 'send in bursts of N (0 = smooth)', String(d.burst))
    .option('--clients <k>', 'clients per run', String(d.clients))
    .option('--slow <k:delays>', 'K slow clients, swept over per-event delays (consumer speeds)', `${d.slowClients}:${d.slowDelaysUs.map((u) => `${u}us`).join(',')}`)
    .option('--streams <which>', 'alerts, logs or both', d.streams)
    .option('--alert-every <k>', 'event n is an Alert when n % K == 0', String(d.alertEvery))
    .option('--point-duration <d>', 'how long each point produces', `${d.pointDurationMs / 1000}s`)
    .option('--target <pct>', 'drop-rate target for the worst client, in %', String(d.targetDropPct))
    .option('--max-time <d>', 'refuse a sweep estimated to take longer, and stop one that runs over', `${d.maxWallMs / 1000}s`)
    .option('--json', 'print the sweep as one JSON object instead of the table')
    .option('--report <file.html>', 'write the self-contained HTML report')
    .action(async (f: TuneFlags) => {
      const options = tuneOptionsFromFlags(f);
      const total = planSweep(options).length;
      const auto = options.rates.length === 0 ? ' (at most; rates are found by a probe first)' : '';
      process.stderr.write(`armorfeed tune: ${total} points${auto}, about ${Math.round(estimateWallMs(options) / 1000)}s\n`);
      const tty = process.stderr.isTTY === true;
      const report = await runTune(options, {
        onPoint: (done, all, p) => {
          const line = `point ${done}/${all}: rate ${p.rate} queue ${p.settings.queueSize}: worst drop ${p.worstDropPct.toFixed(3)}%, p99 ${p.worstP99Us}us`;
          process.stderr.write(tty ? `\r${line}\x1b[K` : `armorfeed tune: ${line}\n`);
        },
        onNote: (line) => process.stderr.write(`${tty ? '\r\x1b[K' : ''}armorfeed tune: ${line}\n`),
      });
      if (tty) process.stderr.write('\r\x1b[K');
      if (f.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
      else process.stdout.write(`${formatTuneSummary(report)}\n`);
      if (f.report !== undefined) {
        writeReportFile(f.report, renderTuneReport(report));
        process.stderr.write(`armorfeed tune: report written to ${f.report}\n`);
      }
      if (report.points.some((p) => p.failures.length > 0)) process.exitCode = 1;
    });
}
