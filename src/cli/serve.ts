/**
 * `armorfeed serve`: every config key as a flag (upstream spelling where upstream has
 * one), an environment variable (ARMORFEED_<KEY>) and a YAML file key (--config).
 * Prints one machine-readable `listening` line on stderr once every port is bound,
 * and on SIGINT/SIGTERM drains, ends streams with OK, prints a per-client summary
 * rendered from the final stats (which --statsFile writes as JSON) and exits 0.
 */
import type { Command } from 'commander';
import type { FeederConfig } from '../config';
import { drainOnSignals, listeningLine, registerServerCommand, type ExitOptions } from './serverCommand';
import { serveSummary } from './summary';

export function registerServe(program: Command): void {
  registerServerCommand(program, 'serve', 'run the feeder: sources -> rings -> encoders -> fan-out -> gRPC (feeder.LogService)', runServe);
}

async function runServe(config: FeederConfig, exit: ExitOptions): Promise<void> {
  // Loaded here, not at the top: every other command (load, log, tune) starts without the
  // broker's modules (~250 ms of CPU).
  const { createFeeder } = await import('../feeder');
  const feeder = await createFeeder(config, { echo: true });
  drainOnSignals(() => feeder.close(), 'stopping ingest', config.gracePeriodMs, serveSummary, exit);
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
