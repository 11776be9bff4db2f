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
import type { FeederStats } from '../feeder';
import { createRelay } from '../relay';
import { clientTableLines } from './serve';
import { drainOnSignals, listeningLine, registerServerCommand } from './serverCommand';

function upstreamLines(stats: FeederStats): string[] {
  const relay = stats.relay;
  if (relay === undefined) return [];
  const lines = relay.upstreams.map((u) => {
    const per = (['alerts', 'logs', 'messages'] as const)
      .map((k) => {
        const s = u.streams[k];
        return `${k}=${s.events} (${s.state}, reconnects=${s.reconnects}, disconnected=${s.disconnectedSec.toFixed(1)}s)`;
      })
      .join(' ');
    return `upstream ${u.id}: ${per}`;
  });
  const js = relay.jetstream;
  if (js !== undefined) {
    for (const c of js.consumers) lines.push(`consumer ${c.filter}: ${c.state} delivered=${c.delivered} pending=${c.pending} recreated=${c.recreated}`);
    for (const [host, g] of Object.entries(js.gaps)) lines.push(`node ${host}: upstream_gap alerts=${g.alerts} logs=${g.logs} messages=${g.messages}`);
    lines.push(`replays started=${js.replays.started} refused=${js.replays.refused} failed=${js.replays.failed}`);
  }
  lines.push(`relay batches=${relay.batches} dropped malformed_upstream=${relay.dropped.malformed_upstream} upstream_gap=${relay.dropped.upstream_gap}`);
  return lines;
}

export function registerRelay(program: Command): void {
  registerServerCommand(program, 'relay', 'serve feeder.LogService for a cluster: from NATS JetStream (--from, with replay) or by dialling every node\'s feeder (--feeders), each stream reconnecting on its own', runRelay);
}

async function runRelay(config: FeederConfig): Promise<void> {
  const relay = await createRelay(config, { echo: true });
  drainOnSignals(() => relay.close(), 'stopping upstreams', config.gracePeriodMs, (stats) =>
    [...clientTableLines(stats), ...upstreamLines(stats)].map((l) => `armorfeed: ${l}\n`).join(''),
  );
  process.stderr.write(listeningLine(relay.addresses));
  const r = relay.stats().relay;
  if (r?.mode === 'jetstream') {
    process.stderr.write(`armorfeed: relaying JetStream stream ${config.exportStream} from ${config.from}; queueSize=${config.queueSize} relayMaxReplays=${config.relayMaxReplays}\n`);
    return;
  }
  const from = r?.feedersFile !== undefined ? ` from ${r.feedersFile} (re-read when it changes)` : '';
  process.stderr.write(`armorfeed: relaying ${r?.upstreams.length ?? 0} upstreams${from}; queueSize=${config.queueSize}\n`);
}
