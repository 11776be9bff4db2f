/**
 * `armorfeed serve`: every config key as a flag (upstream spelling where upstream has
 * one), an environment variable (ARMORFEED_<KEY>) and a YAML file key (--config).
 * Prints one machine-readable `listening` line on stderr once every port is bound,
 * and on SIGINT/SIGTERM drains, ends streams with OK, prints a per-client summary and
 * exits 0.
 */
import type { Command } from 'commander';
import type { FeederConfig } from '../config';
import { createFeeder, type FeederStats } from '../feeder';
import { drainOnSignals, listeningLine, registerServerCommand } from './serverCommand';

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
  registerServerCommand(program, 'serve', 'run the feeder: sources -> rings -> encoders -> fan-out -> gRPC (feeder.LogService)', runServe);
}

async function runServe(config: FeederConfig): Promise<void> {
  const feeder = await createFeeder(config, { echo: true });
  drainOnSignals(() => feeder.close(), 'stopping ingest', config.gracePeriodMs, summaryTable);
  const a = feeder.addresses;
  const sources = Object.entries(a.sources)
    .filter(([name]) => name === 'tcp' || name === 'socket' || name === 'jsonl')
    .map(([name, address]) => `${name}=${address}`);
  process.stderr.write(listeningLine(a, sources));
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
