/**
 * The plain-text reports, printed on stdout: `armorfeed load`'s table at the end of a run
 * (one row per client, then the totals, the broker's own counters and CPU/RSS, and any
 * notes or failures) and the table behind `armorfeed tune`'s recommendation.
 */
import type { LoadReport, ThreadReport } from '../load';
import type { TuneReport } from '../tune';
import { clientColumns, fmtBytes, fmtInt, tunePointColumns, type Column } from './columns';

/** Right-aligns every column but the first two. */
function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** The columns' headings over one line per row, each cell as its text. */
function columnTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  return formatTable(columns.map((c) => c.header), rows.map((r) => columns.map((c) => c.cell(r))));
}

export function threadLine(t: ThreadReport): string {
  return (
    `${t.name}: busy ${Math.round(t.meanElu * 100)}% (saturated in ${Math.round(t.saturatedShare * 100)}% of samples)` +
    (t.cpuSec !== null ? `, cpu ${t.cpuSec.toFixed(2)}s` : '') +
    `, loop delay p99 ${t.delayP99Ms.toFixed(1)}ms max ${t.delayMaxMs.toFixed(1)}ms` +
    (t.saturated ? ' - SATURATED: the tool was the limit here' : '')
  );
}

export function formatSummary(r: LoadReport): string {
  const out: string[] = [];
  const s = r.settings;
  out.push(
    `armorfeed load: ${r.mode} against ${s.addr}` +
      (s.ingest !== null ? `, ingest ${s.ingest}` : '') +
      `, ${s.clients} clients (${s.streams})` +
      (s.slow !== null ? `, slow ${s.slow}` : '') +
      (s.stalled > 0 ? `, stalled ${s.stalled}` : ''),
  );
  if (r.producer !== null) {
    const p = r.producer;
    out.push(
      `producer: sent ${fmtInt(p.sent)} (alerts ${fmtInt(p.alerts)}, logs ${fmtInt(p.logs)}) in ${p.elapsedSec.toFixed(2)}s = ${fmtInt(p.rateEps)} ev/s, ${fmtBytes(p.bytes)}` +
        (p.error !== null ? `, ERROR: ${p.error}` : ''),
    );
  }
  out.push('');
  out.push(columnTable(clientColumns, r.clients));
  out.push('');
  const a = r.aggregate;
  out.push(
    `total: received ${fmtInt(a.received)}, aggregate ${fmtInt(a.rateEps)} ev/s, latency all clients p50 ${fmtInt(a.latencyFromUpdatedUs.p50)}us p99 ${fmtInt(a.latencyFromUpdatedUs.p99)}us max ${fmtInt(a.latencyFromUpdatedUs.max)}us`,
  );
  if (r.server !== null) {
    out.push(
      `broker counters: ingest ${fmtInt(r.server.ingestEvents)}, ring_full ${fmtInt(r.server.ringFull)}, malformed_input ${fmtInt(r.server.malformedInput)}, throttled ${fmtInt(r.server.throttled)}`,
    );
  } else {
    out.push('broker counters: unknown (no /stats)');
  }
  if (r.broker !== null) {
    out.push(
      `broker pid ${r.broker.pid}: cpu ${r.broker.cpuSec.toFixed(2)}s (mean ${r.broker.meanCpuPct.toFixed(0)}% of a core), max rss ${fmtBytes(r.broker.maxRssBytes)}; load client cpu ${r.loadgenCpuSec.toFixed(2)}s`,
    );
  }
  for (const t of r.threads) out.push(`load thread ${threadLine(t)}`);
  out.push('');
  for (const c of r.clients) out.push(`${c.name} limited by ${c.limit}`);
  const v = r.verdict;
  const excluded = v.clientLimited.length > 0 ? ` (not counting client-limited ${v.clientLimited.join(', ')})` : '';
  out.push(
    `verdict: loss accounted by broker counters: ${v.lossAccounted === null ? 'unknown' : v.lossAccounted ? 'yes' : 'NO'}; fast clients lossless: ${v.fastClientsLossless === null ? 'unknown' : v.fastClientsLossless ? 'yes' : 'NO'}${excluded}` +
      (v.producerLimited ? '; producer-limited' : ''),
  );
  for (const n of v.notes) out.push(`note: ${n}`);
  for (const f of r.failures) out.push(`FAILURE: ${f}`);
  return out.join('\n');
}

/** The table behind `armorfeed tune`'s recommendation, as printed on stdout. */
export function formatTuneSummary(t: TuneReport): string {
  const out = [
    `armorfeed tune: ${t.points.length} points in ${t.wallSec.toFixed(1)}s, ${t.pointDurationSec}s each, target drops <= ${t.targetDropPct}% (worst client)`,
    ...(t.probe !== undefined && t.probe !== null ? [t.probe.note] : []),
    '',
    columnTable(tunePointColumns, t.points),
    '',
    'recommendation:',
    ...t.recommendations.map((r) => `  ${r.text}`),
    ...(t.memory ?? []).map((m) => `  ${m.text}`),
  ];
  for (const p of t.points) if (p.notMeasured !== null) out.push(`not measured: queue ${p.settings.queueSize} rate ${p.rate}: ${p.notMeasured}`);
  for (const p of t.points) for (const f of p.failures) out.push(`FAILURE: queue ${p.settings.queueSize} rate ${p.rate}: ${f}`);
  return out.join('\n');
}
