/** The table behind `armorfeed tune`'s recommendation, as printed on stdout. */
import { fmtBytes, formatTable } from './summary-table';
import type { TuneReport } from './tune-model';

export function formatTuneSummary(t: TuneReport): string {
  const header = ['rate/burst', 'consumers', 'queue', 'enc', 'batch', 'ring', 'sent', 'worst drop%', 'fast drop%', 'worst p99us', 'fast p99us', 'queue bytes/client', 'broker rss', 'accounted', 'meets'];
  const rows = t.points.map((p) => [
    `${p.rate}${p.burst > 0 ? `/${p.burst}` : ''}`,
    p.consumers,
    String(p.settings.queueSize),
    p.settings.encoderThreads === null ? '-' : String(p.settings.encoderThreads),
    p.settings.batchSize === null ? '-' : String(p.settings.batchSize),
    p.settings.ringSize === null ? '-' : fmtBytes(p.settings.ringSize),
    String(p.sent),
    p.worstDropPct.toFixed(3),
    p.fastDropPct.toFixed(3),
    String(p.worstP99Us),
    String(p.fastP99Us),
    fmtBytes(p.queueBytesPerClient),
    p.brokerMaxRssBytes === null ? '?' : fmtBytes(p.brokerMaxRssBytes),
    p.lossAccounted === null ? '?' : p.lossAccounted ? 'yes' : 'NO',
    p.notMeasured !== null ? 'not measured' : p.meetsTarget ? 'yes' : 'no',
  ]);
  const out = [
    `armorfeed tune: ${t.points.length} points in ${t.wallSec.toFixed(1)}s, ${t.pointDurationSec}s each, target drops <= ${t.targetDropPct}% (worst client)`,
    ...(t.probe !== undefined && t.probe !== null ? [t.probe.note] : []),
    '',
    formatTable(header, rows),
    '',
    'recommendation:',
    ...t.recommendations.map((r) => `  ${r.text}`),
    ...(t.memory ?? []).map((m) => `  ${m.text}`),
  ];
  for (const p of t.points) if (p.notMeasured !== null) out.push(`not measured: queue ${p.settings.queueSize} rate ${p.rate}: ${p.notMeasured}`);
  for (const p of t.points) for (const f of p.failures) out.push(`FAILURE: queue ${p.settings.queueSize} rate ${p.rate}: ${f}`);
  return out.join('\n');
}
