/**
 * `armorfeed load`: drives a feeder end to end and measures it (see src/load).
 * Exit status: 0 when the run completed (missing events are the measurement, not
 * an error), 1 on an RPC or producer failure, 2 on a bad flag or a non-loopback target.
 */
import { Option, type Command } from 'commander';
import {
  LoadFlagError,
  loadDefaults,
  loadLimits,
  newRunTag,
  parseDurationUs,
  parseIngestTarget,
  parseLoopbackHostPort,
  parseNonNegativeInt,
  parseSlow,
  parseStatsUrl,
  parseStreams,
  ProgressLine,
  runLoad,
  validateLoadOptions,
  type LoadOptions,
  type LoadReport,
} from '../load';
import { formatSummary, renderLoadReport, writeReportFile } from '../report';

interface LoadFlags {
  addr: string;
  ingest?: string;
  stats?: string;
  pid?: string;
  clients: string;
  streams: string;
  slow?: string;
  stalled: string;
  rate: string;
  burst: string;
  count?: string;
  expect?: string;
  duration: string;
  alertEvery: string;
  idle: string;
  drainTimeout: string;
  alertFilter: string;
  logFilter: string;
  name?: string;
  json?: boolean;
  report?: string;
  clientThreads?: string;
  debugBurn?: string;
}

export function loadOptionsFromFlags(f: LoadFlags): LoadOptions {
  const slow = f.slow !== undefined ? parseSlow('--slow', f.slow) : { clients: 0, delayUs: 0 };
  const count = f.count !== undefined ? parseNonNegativeInt('--count', f.count, loadLimits.maxCount) : undefined;
  const expect = f.expect !== undefined ? parseNonNegativeInt('--expect', f.expect, loadLimits.maxCount) : undefined;
  const ingest = f.ingest !== undefined ? parseIngestTarget('--ingest', f.ingest) : undefined;
  const burn = f.debugBurn !== undefined ? parseSlow('--debug-burn', f.debugBurn) : { clients: 0, delayUs: 0 };
  if (f.pid !== undefined && !/^\d+$/.test(f.pid)) throw new LoadFlagError('--pid', `${JSON.stringify(f.pid)} is not a process id`);
  return validateLoadOptions({
    addr: parseLoopbackHostPort('--addr', f.addr),
    ingest,
    statsUrl: f.stats !== undefined ? parseStatsUrl('--stats', f.stats) : undefined,
    brokerPid: f.pid !== undefined ? Number(f.pid) : undefined,
    clients: parseNonNegativeInt('--clients', f.clients),
    streams: parseStreams('--streams', f.streams),
    slowClients: slow.clients,
    slowDelayUs: slow.delayUs,
    stalledClients: parseNonNegativeInt('--stalled', f.stalled),
    rate: parseNonNegativeInt('--rate', f.rate),
    burst: parseNonNegativeInt('--burst', f.burst),
    count,
    // Subscriber-only, --count means what loadclient's --expect means.
    expect: expect ?? (ingest === undefined ? count : undefined),
    durationMs: parseDurationUs('--duration', f.duration, 's') / 1000,
    alertEvery: parseNonNegativeInt('--alert-every', f.alertEvery),
    idleMs: parseDurationUs('--idle', f.idle, 's') / 1000,
    drainTimeoutMs: parseDurationUs('--drain-timeout', f.drainTimeout, 's') / 1000,
    runTag: f.name ?? newRunTag(),
    alertFilter: f.alertFilter,
    logFilter: f.logFilter,
    clientThreads: f.clientThreads !== undefined ? Math.max(1, parseNonNegativeInt('--client-threads', f.clientThreads, 64)) : undefined,
    burnClients: burn.clients,
    burnUsPerEvent: burn.delayUs,
  });
}

/** Prints the table (or JSON), writes the HTML report, and sets the exit status. */
export function finishLoad(report: LoadReport, f: { json?: boolean; report?: string }): void {
  if (f.json === true) process.stdout.write(`${JSON.stringify(report)}\n`);
  else process.stdout.write(`${formatSummary(report)}\n`);
  if (f.report !== undefined) {
    writeReportFile(f.report, renderLoadReport(report));
    process.stderr.write(`armorfeed load: report written to ${f.report}\n`);
  }
  if (report.failures.length > 0) process.exitCode = 1;
}

export function registerLoad(program: Command): void {
  program
    .command('load')
    .description('drive a feeder end to end (loopback only) and measure delivery, loss and latency per client')
    .option('--addr <host:port>', 'gRPC address of the feeder under test', '127.0.0.1:32767')
    .option('--ingest <url>', "armorfeed's ingest socket: tcp://127.0.0.1:PORT or unix:///path (omit: subscriber side only)")
    .option('--stats <url>', "armorfeed's metrics address or /stats URL, for its drop counters")
    .option('--pid <pid>', 'broker PID for CPU/RSS sampling (default: the process listening on --addr)')
    .option('--clients <k>', 'number of clients, each its own connection', String(loadDefaults.clients))
    .option('--streams <which>', 'alerts, logs or both', loadDefaults.streams)
    .option('--slow <k:delay>', 'the first K clients stop reading for DELAY after every event (e.g. 1:2ms)')
    .option('--stalled <k>', 'the next K clients read nothing until the producer has finished', '0')
    .option('--rate <r>', 'events per second (0 = as fast as possible)', String(loadDefaults.rate))
    .option('--burst <n>', 'send N back to back, then wait N/rate seconds', String(loadDefaults.burst))
    .option('--count <n>', 'events to send (subscriber only: events each client should get)')
    .option('--expect <n>', 'subscriber only: events each client should get (loss = expect - received)')
    .option('--duration <d>', `time bound of the run (at most ${loadLimits.maxDurationMs / 1000}s)`, `${loadDefaults.durationMs / 1000}s`)
    .option('--alert-every <k>', 'event n is an Alert when n % K == 0 (1 = only alerts, 0 = only logs)', String(loadDefaults.alertEvery))
    .option('--idle <d>', 'a client idle this long after the producer finished is done', `${loadDefaults.idleMs}ms`)
    .option('--drain-timeout <d>', 'longest wait for slow and stalled clients to drain', `${loadDefaults.drainTimeoutMs / 1000}s`)
    .option('--alert-filter <f>', 'WatchAlerts filter', loadDefaults.alertFilter)
    .option('--log-filter <f>', 'WatchLogs filter', loadDefaults.logFilter)
    .option('--name <tag>', 'client name prefix shown in the broker stats (default: load-<random>)')
    .option('--json', 'print the report as one JSON object instead of the table')
    .option('--report <file.html>', 'write the self-contained HTML report')
    .option('--client-threads <n>', 'worker threads for the clients (default: one per client, at most 8; more clients share them)')
    // Debug: K:DELAY makes the first K clients burn DELAY of CPU per event, a client that is its own limit.
    .addOption(new Option('--debug-burn <k:delay>').hideHelp())
    .action(async (f: LoadFlags) => {
      const options = loadOptionsFromFlags(f);
      const progress = new ProgressLine();
      const report = await runLoad(options, {
        onProgress: (p) => progress.update(p),
        onNote: (line) => {
          progress.clear();
          process.stderr.write(`armorfeed load: ${line}\n`);
        },
      });
      progress.clear();
      finishLoad(report, f);
    });
}
