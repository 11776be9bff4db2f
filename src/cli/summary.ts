/**
 * The exit summaries of `serve` and `relay`: text rendered from the final stats object,
 * for people. Programs read the same object as JSON (`/stats` while it runs, the file
 * `--statsFile` names at exit), never these lines.
 */
import type { FeederStats } from '../stats';

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

/** `serve`'s exit summary: the client table, what was encoded and each source took in, the drops not owned by a client, the export. */
export function serveSummary(stats: FeederStats): string {
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

/** `relay`'s exit summary: the client table, then each upstream (or JetStream consumer) and the relay's own drops. */
export function relaySummary(stats: FeederStats): string {
  return [...clientTableLines(stats), ...upstreamLines(stats)].map((l) => `armorfeed: ${l}\n`).join('');
}
