/**
 * `armorfeed relay`: serves feeder.LogService for many nodes at once (src/relay). It
 * takes the serve options that apply to a server without ingest (ports, TLS, metrics,
 * queue size, grace period; see `commands` in the option table) plus its own (--feeders,
 * the reconnect backoff). Prints the same `listening` line as serve once its ports are
 * bound (upstreams connect in the background), and on SIGINT/SIGTERM drains, ends
 * streams with OK and prints a per-client and per-upstream summary.
 */
import type { Command } from 'commander';
import type { FeederConfig } from '../config';
import { drainOnSignals, listeningLine, registerServerCommand, type ExitOptions } from './serverCommand';
import { relaySummary } from './summary';

export function registerRelay(program: Command): void {
  registerServerCommand(program, 'relay', 'serve feeder.LogService for a cluster: from NATS JetStream (--from, with replay) or by dialling every node\'s feeder (--feeders), each stream reconnecting on its own', runRelay);
}

async function runRelay(config: FeederConfig, exit: ExitOptions): Promise<void> {
  // Loaded here, not at the top: the other commands start without the relay's modules.
  const { createRelay } = await import('../relay');
  const relay = await createRelay(config, { echo: true });
  drainOnSignals(() => relay.close(), 'stopping upstreams', config.gracePeriodMs, relaySummary, exit);
  process.stderr.write(listeningLine(relay.addresses));
  const r = relay.stats().relay;
  if (r?.mode === 'jetstream') {
    process.stderr.write(`armorfeed: relaying JetStream stream ${config.exportStream} from ${config.from}; queueSize=${config.queueSize} relayMaxReplays=${config.relayMaxReplays}\n`);
    return;
  }
  const from = r?.feedersFile !== undefined ? ` from ${r.feedersFile} (re-read when it changes)` : '';
  process.stderr.write(`armorfeed: relaying ${r?.upstreams.length ?? 0} upstreams${from}; queueSize=${config.queueSize}\n`);
}
