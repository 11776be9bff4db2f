/**
 * `armorfeed serve`: every config key as a flag (upstream spelling where upstream has
 * one), an environment variable (ARMORFEED_<KEY>) and a YAML file key (--config).
 * Prints one machine-readable `listening` line on stderr once every port is bound,
 * and on SIGINT/SIGTERM drains, ends streams with OK, prints a per-client summary and
 * exits 0.
 */
import { Command } from 'commander';
import { loadConfig, type FeederConfig } from '../config';
import { addConfigOptions, configFlags } from './configFlags';
import { createFeeder, type FeederStats } from '../feeder';
import { exitOnError } from './main';

/** The per-client rows of the exit summary (serve and relay). */
export function clientTableLines(stats: FeederStats): string[] {
  const rows = [['client', 'stream', 'filter', 'peer', 'delivered', 'queue_full', 'throttled', 'filtered', 'closed', 'grace_expired', 'p99_us']];
  for (const c of stats.clients) {
    rows.push([
      c.name,
      c.stream,
      c.filter === '' ? '""' : c.filter,
      c.peer,
      String(c.delivered),
      String(c.dropped.client_queue_full),
      String(c.dropped.throttled),
      String(c.dropped.filtered),
      String(c.dropped.client_closed),
      String(c.dropped.shutdown_grace_expired),
      String(c.latencyUs.p99),
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i >= 4 ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  '));
}

function summaryTable(stats: FeederStats): string {
  const lines = clientTableLines(stats);
  const d = stats.dropped;
  const sources = Object.entries(stats.ingest)
    .map(([name, s]) => `${name}: in=${s.events} ring_full=${s.dropped.ring_full} malformed_input=${s.dropped.malformed_input} restarts=${s.restarts.exited + s.restarts.wedged}`)
    .join('; ');
  lines.push(`encoded alerts=${stats.encoded.alerts} logs=${stats.encoded.logs}; sources ${sources || 'none'}`);
  lines.push(`dropped (not per client) ring_full=${d.ring_full} malformed_input=${d.malformed_input} throttled=${d.throttled} encode_error=${d.encode_error} encoded_oversized=${d.encoded_oversized} output_backpressure=${d.output_backpressure}`);
  const x = stats.export;
  if (x !== undefined) {
    const dropped = Object.entries(x.dropped).map(([reason, n]) => `${reason}=${n}`).join(' ');
    lines.push(`export ${x.stream} via ${x.servers} (${x.state}): offered=${x.offered} acked=${x.acked} (duplicates ${x.duplicates}) published=${x.published} retries=${x.retries} ${dropped} buffered=${x.buffered.events}`);
  }
  return lines.map((l) => `armorfeed: ${l}`).join('\n') + '\n';
}

export function registerServe(program: Command): void {
  const cmd = program.command('serve').description('run the feeder: sources -> rings -> encoders -> fan-out -> gRPC (feeder.LogService)');
  addConfigOptions(cmd, 'serve');
  cmd.action(async (opts: Record<string, unknown>, self: Command) => {
    try {
      const config = loadConfig({ flags: configFlags(opts, self, 'serve'), env: process.env, file: opts.config as string | undefined, command: 'serve' });
      await runServe(config);
    } catch (err) {
      exitOnError(err);
    }
  });
}

async function runServe(config: FeederConfig): Promise<void> {
  const feeder = await createFeeder(config, { echo: true });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      process.stderr.write(`armorfeed: ${signal} again, exiting without draining\n`);
      process.exit(1);
    }
    stopping = true;
    process.stderr.write(`armorfeed: ${signal}: stopping ingest, draining (grace ${config.gracePeriodMs} ms)\n`);
    feeder.close().then(
      (stats) => {
        process.stderr.write(summaryTable(stats));
        process.exit(0);
      },
      (err: unknown) => {
        process.stderr.write(`armorfeed: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  // Before the listening line: a supervisor may signal as soon as it reads it.
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const a = feeder.addresses;
  const tokens = [`grpc=${a.grpc}`];
  if (a.health !== undefined) tokens.push(`health=${a.health}`);
  if (a.metrics !== undefined) tokens.push(`metrics=${a.metrics}`);
  for (const [name, address] of Object.entries(a.sources)) {
    if (name === 'tcp' || name === 'socket' || name === 'jsonl') tokens.push(`${name}=${address}`);
  }
  process.stderr.write(`armorfeed: listening ${tokens.join(' ')}\n`);
  const port = a.grpc.slice(a.grpc.lastIndexOf(':') + 1);
  // A self server's directory holds ca.key, from which the client signs its own certificate
  // (karmor's default); for an external one the client needs its own client.crt.
  const secure = !config.tlsEnabled
    ? ''
    : config.tlsCertProvider === 'self'
      ? ` --secure --tlsCertPath ${config.tlsCertPath}`
      : ' --secure --tlsCertProvider external --tlsCertPath DIR_WITH_ca.crt_client.crt_client.key';
  const scheme = config.metricsTLS ? 'https' : 'http';
  process.stderr.write(
    `armorfeed: sources ${config.source.join(',')}; queueSize=${config.queueSize} encoderThreads=${config.encoderThreads}\n` +
      `armorfeed: connect with  npx armorfeed log --gRPC 127.0.0.1:${port} --logFilter all${secure}   (or karmor logs --gRPC 127.0.0.1:${port} --logFilter all${secure}${secure !== '' ? ' --readCAFromSecret=false' : ''})\n` +
      (a.metrics !== undefined ? `armorfeed: metrics at ${scheme}://${a.metrics}/metrics, JSON at ${scheme}://${a.metrics}/stats\n` : ''),
  );
}
