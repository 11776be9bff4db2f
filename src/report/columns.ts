/**
 * The columns of the reports' tables, defined once: the text table (text.ts) and the HTML
 * page (html.ts) show the same columns, under the same headings, with the same values.
 * A cell is its text; the page may also mark it (bold, good, bad) and give it a tooltip.
 */
import type { ClientReport } from '../load';
import type { TunePoint } from '../tune';

export type Mark = 'strong' | 'ok' | 'bad';

export interface Column<Row> {
  header: string;
  cell(row: Row): string;
  /** How the HTML page marks the cell; the text table shows it plain. */
  mark?(row: Row): Mark | undefined;
  /** The HTML page's tooltip on the cell. */
  title?(row: Row): string | undefined;
}

export function fmtInt(n: number | null): string {
  return n === null ? '?' : Math.round(n).toLocaleString('en-US');
}

export function fmtPct(n: number | null): string {
  if (n === null) return '?';
  return n === 0 ? '0' : n < 0.01 ? '<0.01' : n.toFixed(2);
}

export function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function yesNo(b: boolean | null, no = 'no'): string {
  return b === null ? '?' : b ? 'yes' : no;
}

const goodOrBad = (b: boolean | null): Mark | undefined => (b === null ? undefined : b ? 'ok' : 'bad');

/** `armorfeed load`: one row per client. */
export const clientColumns: readonly Column<ClientReport>[] = [
  { header: 'client', cell: (c) => c.name },
  { header: 'kind', cell: (c) => (c.behaviour === 'slow' ? `slow ${c.delayUs}us` : c.behaviour) },
  { header: 'received', cell: (c) => fmtInt(c.received) },
  { header: 'expected', cell: (c) => fmtInt(c.expected) },
  { header: 'missing', cell: (c) => fmtInt(c.missing), mark: () => 'strong' },
  { header: 'miss%', cell: (c) => fmtPct(c.missingPct) },
  {
    header: 'broker drops (queue/thr/flt)',
    cell: (c) => (c.server === null ? '-' : `${fmtInt(c.server.attributed)} (${fmtInt(c.server.dropped.client_queue_full)}/${fmtInt(c.server.dropped.throttled)}/${fmtInt(c.server.dropped.filtered)})`),
  },
  { header: 'agree', cell: (c) => (c.server === null ? '-' : yesNo(c.server.agrees, 'NO')), mark: (c) => (c.server === null ? undefined : goodOrBad(c.server.agrees)) },
  { header: 'ev/s', cell: (c) => fmtInt(c.rateEps) },
  { header: 'p50us', cell: (c) => fmtInt(c.latencyFromUpdatedUs.p50) },
  { header: 'p90us', cell: (c) => fmtInt(c.latencyFromUpdatedUs.p90) },
  { header: 'p99us', cell: (c) => fmtInt(c.latencyFromUpdatedUs.p99) },
  { header: 'p99.9us', cell: (c) => fmtInt(c.latencyFromUpdatedUs.p999) },
  { header: 'maxus', cell: (c) => fmtInt(c.latencyFromUpdatedUs.max) },
  { header: 'send-p99us', cell: (c) => (c.latencyFromSendUs === null ? '-' : fmtInt(c.latencyFromSendUs.p99)) },
  { header: 'reconn', cell: (c) => String(c.reconnects) },
  { header: 'end', cell: (c) => c.streams.map((st) => `${st.kind}:${st.end}`).join(',') },
  {
    header: 'first missing seqs',
    cell: (c) => c.missingRanges.slice(0, 3).map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(', ') + (c.missingRanges.length > 3 || c.missingRangesTruncated ? ', ...' : ''),
  },
];

/** `armorfeed tune`: one row per point of the sweep. */
export const tunePointColumns: readonly Column<TunePoint>[] = [
  { header: 'rate/burst', cell: (p) => `${fmtInt(p.rate)}${p.burst > 0 ? `/${p.burst}` : ''}` },
  { header: 'consumers', cell: (p) => p.consumers },
  { header: 'queue', cell: (p) => fmtInt(p.settings.queueSize) },
  { header: 'encoders', cell: (p) => (p.settings.encoderThreads === null ? '-' : String(p.settings.encoderThreads)) },
  { header: 'batch', cell: (p) => (p.settings.batchSize === null ? '-' : String(p.settings.batchSize)) },
  { header: 'ring', cell: (p) => (p.settings.ringSize === null ? '-' : fmtBytes(p.settings.ringSize)) },
  { header: 'sent', cell: (p) => fmtInt(p.sent) },
  { header: 'worst drop%', cell: (p) => p.worstDropPct.toFixed(3), mark: () => 'strong' },
  { header: 'fast drop%', cell: (p) => p.fastDropPct.toFixed(3) },
  { header: 'worst p99us', cell: (p) => fmtInt(p.worstP99Us) },
  { header: 'fast p99us', cell: (p) => fmtInt(p.fastP99Us) },
  { header: 'queue bytes/client', cell: (p) => fmtBytes(p.queueBytesPerClient) },
  { header: 'broker max rss', cell: (p) => (p.brokerMaxRssBytes === null ? '?' : fmtBytes(p.brokerMaxRssBytes)) },
  { header: 'loss accounted', cell: (p) => yesNo(p.lossAccounted, 'NO') },
  {
    header: 'meets target',
    cell: (p) => (p.notMeasured !== null ? 'not measured' : yesNo(p.meetsTarget)),
    mark: (p) => (p.notMeasured !== null ? 'bad' : p.meetsTarget ? 'ok' : undefined),
    title: (p) => p.notMeasured ?? undefined,
  },
];
