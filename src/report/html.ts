/**
 * The self-contained HTML report of `armorfeed load` and `armorfeed tune`: tables
 * rendered here, charts drawn in the page by the inlined uPlot from chart specs
 * embedded as JSON. Nothing is fetched when the file is opened.
 */
import * as fs from 'node:fs';
import type { ClientReport, LoadReport } from '../load';
import type { TunePoint, TuneReport } from '../tune';
import { clientColumns, fmtBytes, fmtInt as int, tunePointColumns, type Column } from './columns';
import { threadLine } from './text';
import { browserScript } from './browser-script';
import { colorFor, type ChartSeries, type ChartSpec } from './chart-spec';
import { loadUplot } from './uplot-assets';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that is safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function table(header: string[], rows: string[][], className = ''): string {
  return (
    `<table class="${className}"><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>'
  );
}

/** A cell as the page shows it: its text escaped, marked as its column says. */
function markup<Row>(column: Column<Row>, row: Row): string {
  const text = esc(column.cell(row));
  const mark = column.mark?.(row);
  const title = column.title?.(row);
  const attr = title !== undefined ? ` title="${esc(title)}"` : '';
  if (mark === 'strong') return attr === '' ? `<b>${text}</b>` : `<b${attr}>${text}</b>`;
  if (mark !== undefined || attr !== '') return `<span${mark !== undefined ? ` class="${mark}"` : ''}${attr}>${text}</span>`;
  return text;
}

/** The columns' headings over one row per item, numbers right-aligned (class num). */
function columnTable<Row>(columns: readonly Column<Row>[], rows: readonly Row[]): string {
  return table(columns.map((c) => c.header), rows.map((r) => columns.map((c) => markup(c, r))), 'num');
}

function clientLabel(c: ClientReport): string {
  return `c${c.index} ${c.behaviour === 'slow' ? `slow ${c.delayUs}us` : c.behaviour}`;
}

function seconds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** Drops trailing x positions where every series is null (percentiles past the sample count). */
function trimCurves(xs: readonly number[], curves: (number | null)[][]): (number | null)[][] {
  let last = 0;
  for (const c of curves) for (let i = 0; i < c.length; i++) if (c[i] !== null && i > last) last = i;
  const n = Math.min(xs.length, last + 2);
  return [xs.slice(0, n), ...curves.map((c) => Array.from({ length: n }, (_, i) => c[i] ?? null))];
}

export function loadCharts(r: LoadReport, group: string): ChartSpec[] {
  const charts: ChartSpec[] = [];
  const series = (dash?: number[]): ChartSeries[] => r.clients.map((c, i) => ({ label: clientLabel(c), color: colorFor(i), dash }));
  charts.push({
    id: `${group}-latency-updated`,
    group,
    title: 'Latency distribution from UpdatedTime (per client)',
    caption: 'End-to-end latency = receive time - the event\'s UpdatedTime, as HdrHistogram percentile curves (log-log): 90% = 1 in 10 events is slower, 99.9% = 1 in 1000.',
    x: { label: 'percentile', log: 10, format: 'percentile' },
    y: { label: 'latency', log: 10, format: 'micros' },
    series: series(),
    data: trimCurves(r.percentileCurveX, r.clients.map((c) => c.curveFromUpdatedUs)),
  });
  if (r.producer !== null) {
    charts.push({
      id: `${group}-latency-send`,
      group,
      title: 'Latency distribution from the producer\'s send (per client)',
      caption: 'Receive time - the moment the producer handed the frame to its socket (the producer\'s thread; one clock for every thread of the process).',
      x: { label: 'percentile', log: 10, format: 'percentile' },
      y: { label: 'latency', log: 10, format: 'micros' },
      series: series(),
      data: trimCurves(r.percentileCurveX, r.clients.map((c) => c.curveFromSendUs ?? [])),
    });
  }
  const n = Math.max(1, ...r.clients.map((c) => c.receivedPerSecond.length), r.producer?.sentPerSecond.length ?? 0);
  const pad = (xs: number[]): number[] => Array.from({ length: n }, (_, i) => xs[i] ?? 0);
  const tpSeries = series();
  const tpData: number[][] = [seconds(n), ...r.clients.map((c) => pad(c.receivedPerSecond))];
  if (r.producer !== null) {
    tpSeries.push({ label: 'producer sent', color: '#444', dash: [6, 4] });
    tpData.push(pad(r.producer.sentPerSecond));
  }
  charts.push({
    id: `${group}-throughput`,
    group,
    title: 'Throughput over time (events/s per client)',
    caption: 'Events received in each second of the run; the dashed line is what the producer sent.',
    x: { label: 'time', format: 'seconds' },
    y: { label: 'events/s', min: 0 },
    series: tpSeries,
    data: tpData,
  });
  if (r.clients.some((c) => c.missing !== null && c.missingBySentSecond.length > 0) || r.clients.some((c) => c.serverDroppedPerSecond !== null)) {
    const dSeries: ChartSeries[] = [];
    const dData: number[][] = [seconds(n)];
    r.clients.forEach((c, i) => {
      if (c.missing !== null && r.producer !== null) {
        dSeries.push({ label: `${clientLabel(c)} missing`, color: colorFor(i) });
        dData.push(pad(c.missingBySentSecond));
      }
      if (c.serverDroppedPerSecond !== null) {
        dSeries.push({ label: `${clientLabel(c)} broker drops`, color: colorFor(i), dash: [4, 4] });
        dData.push(pad(c.serverDroppedPerSecond));
      }
    });
    charts.push({
      id: `${group}-drops`,
      group,
      title: 'Drops over time (per client)',
      caption: 'Solid: events the client never received, by the second they were sent. Dashed: the broker\'s drop counters for that client, by the second they were polled (1 s polls).',
      x: { label: 'time', format: 'seconds' },
      y: { label: 'events/s', min: 0 },
      series: dSeries,
      data: dData,
    });
  }
  if (r.broker !== null && r.broker.samples.length >= 2) {
    charts.push({
      id: `${group}-broker`,
      group,
      title: `Broker CPU and RSS (pid ${r.broker.pid})`,
      caption: 'From /proc/PID/stat (utime+stime of all threads; 100% = one core) and /proc/PID/status VmRSS, sampled every 0.5 s.',
      x: { label: 'time', format: 'seconds' },
      y: { label: 'CPU % of a core', min: 0 },
      y2: { label: 'RSS', format: 'bytes', min: 0 },
      series: [
        { label: 'CPU %', color: '#d62728' },
        { label: 'RSS', color: '#1f77b4', secondAxis: true },
      ],
      data: [r.broker.samples.map((s) => Math.round(s.t * 10) / 10), r.broker.samples.map((s) => Math.round(s.cpuPct)), r.broker.samples.map((s) => s.rssBytes)],
    });
  }
  const metered = r.threads.filter((t) => t.samples.length >= 2);
  if (metered.length > 0) {
    const times = [...new Set(metered.flatMap((t) => t.samples.map((x) => x.t)))].sort((a, b) => a - b);
    // Threads sample on their own timers: put each sample at the nearest common time.
    const column = (t: (typeof metered)[number]): (number | null)[] =>
      times.map((x) => {
        const near = t.samples.find((s) => Math.abs(s.t - x) < 0.05);
        return near === undefined || near.cpuPct === null ? null : near.cpuPct;
      });
    charts.push({
      id: `${group}-tool-threads`,
      group,
      title: 'CPU of the load tool\'s threads',
      caption:
        'Each worker thread of armorfeed load (the producer, the client groups), from /proc/thread-self/stat every 0.5 s; 100% = one core. ' +
        'A thread near 100% (or busy without CPU on an oversubscribed machine) limits the measurement, and the verdict says so.',
      x: { label: 'time', format: 'seconds' },
      y: { label: 'CPU % of a core', min: 0 },
      series: metered.map((t, i) => ({ label: t.name, color: t.role === 'producer' ? '#444' : colorFor(i), dash: t.role === 'producer' ? [6, 4] : undefined, points: true })),
      data: [times, ...metered.map(column)],
    });
  }
  return charts;
}

function loadSections(r: LoadReport, group: string): string {
  const s = r.settings;
  const settingsRows: string[][] = [
    ['mode', esc(r.mode)],
    ['gRPC target', esc(s.addr)],
    ['ingest', esc(s.ingest ?? '(none: subscriber only)')],
    ['broker stats', esc(s.statsUrl ?? '(none)')],
    ['clients', `${s.clients} (${esc(s.streams)})${s.slow !== null ? `, slow ${esc(s.slow)}` : ''}${s.stalled > 0 ? `, ${s.stalled} stalled` : ''}`],
    ['rate', s.rate === 0 ? 'as fast as possible' : `${int(s.rate)} ev/s${s.burst > 0 ? ` in bursts of ${int(s.burst)}` : ''}`],
    ['bounds', `${s.count !== null ? `${int(s.count)} events, ` : ''}${s.durationSec}s`],
    ['alert every', String(s.alertEvery)],
  ];
  if (r.producer !== null) {
    const p = r.producer;
    settingsRows.push(['producer', `sent ${int(p.sent)} (alerts ${int(p.alerts)}, logs ${int(p.logs)}) in ${p.elapsedSec.toFixed(2)} s = ${int(p.rateEps)} ev/s${p.error !== null ? `, error: ${esc(p.error)}` : ''}`]);
  }
  if (r.server !== null) {
    settingsRows.push(['broker counters', `ingest ${int(r.server.ingestEvents)}, ring_full ${int(r.server.ringFull)}, malformed_input ${int(r.server.malformedInput)}, throttled ${int(r.server.throttled)}`]);
  }
  if (r.broker !== null) {
    settingsRows.push(['broker process', `pid ${r.broker.pid}: ${r.broker.cpuSec.toFixed(2)} s CPU (mean ${r.broker.meanCpuPct.toFixed(0)}% of a core), max RSS ${fmtBytes(r.broker.maxRssBytes)}`]);
  }
  settingsRows.push(['load client CPU', `${r.loadgenCpuSec.toFixed(2)} s`]);
  for (const t of r.threads) {
    const line = threadLine(t).slice(t.name.length + 2);
    settingsRows.push([`load thread: ${esc(t.name)}`, t.saturated ? `<span class="bad">${esc(line)}</span>` : esc(line)]);
  }
  const v = r.verdict;
  const verdict = (b: boolean | null): string => (b === null ? 'unknown' : b ? '<span class="ok">yes</span>' : '<span class="bad">NO</span>');
  return (
    `<section><h2>Run</h2>${table(['', ''], settingsRows, 'kv')}</section>` +
    `<section><h2>Clients</h2>` +
    `<p>Loss accounted by the broker's own drop counters: ${verdict(v.lossAccounted)}. Fast clients lossless: ${verdict(v.fastClientsLossless)}` +
    `${v.clientLimited.length > 0 ? ` (not counting the client-limited ${esc(v.clientLimited.join(', '))})` : ''}.` +
    `${v.producerLimited ? ' <span class="bad">The producer was the limit of this run.</span>' : ''}</p>` +
    columnTable(clientColumns, r.clients) +
    `<h3>What limited each client</h3><ul class="limits">${r.clients
      .map((c) => `<li class="limit-${c.limitedBy}"><b>${esc(c.name)}</b> (${esc(clientLabel(c))}): ${esc(c.limit)}</li>`)
      .join('')}</ul>` +
    (v.notes.length > 0 ? `<ul class="notes">${v.notes.map((x) => `<li>${esc(x)}</li>`).join('')}</ul>` : '') +
    (r.failures.length > 0 ? `<ul class="failures">${r.failures.map((x) => `<li>FAILURE: ${esc(x)}</li>`).join('')}</ul>` : '') +
    `</section><section><h2>Charts</h2><div id="charts-${group}" class="charts"></div></section>`
  );
}

function groupKey(p: TunePoint): string {
  const s = p.settings;
  const extra = [s.encoderThreads !== null ? `enc ${s.encoderThreads}` : '', s.batchSize !== null ? `batch ${s.batchSize}` : '', s.ringSize !== null ? `ring ${fmtBytes(s.ringSize)}` : '']
    .filter((x) => x !== '')
    .join(', ');
  return `${int(p.rate)} ev/s${p.burst > 0 ? ` (bursts ${p.burst})` : ''}, ${p.consumers}${extra !== '' ? `, ${extra}` : ''}`;
}

export function tuneCharts(t: TuneReport): ChartSpec[] {
  const queues = [...new Set(t.points.map((p) => p.settings.queueSize))].sort((a, b) => a - b);
  const groups = [...new Set(t.points.map(groupKey))];
  const column = (f: (p: TunePoint) => number | null): (number | null)[][] =>
    groups.map((g) => queues.map((q) => {
      const p = t.points.find((x) => groupKey(x) === g && x.settings.queueSize === q);
      return p === undefined ? null : f(p);
    }));
  const series = groups.map((g, i) => ({ label: g, color: colorFor(i), points: true }));
  const charts: ChartSpec[] = [
    {
      id: 'tune-drops',
      group: 'tune',
      title: 'Drop rate against queue size (worst client)',
      caption: `Missing / expected events of the worst client at each per-client queue size; the target is ${t.targetDropPct}%.`,
      x: { label: 'queue size (events per client)', log: 2 },
      y: { label: 'drop rate', format: 'percent', min: 0 },
      series: [...series, { label: `target ${t.targetDropPct}%`, color: '#888', dash: [2, 4] }],
      data: [queues, ...column((p) => p.worstDropPct), queues.map(() => t.targetDropPct)],
    },
    {
      id: 'tune-latency',
      group: 'tune',
      title: 'p99 latency against queue size (worst client)',
      caption: 'A longer queue trades drops for queueing delay: a full queue drained at r events/s adds queue/r seconds.',
      x: { label: 'queue size (events per client)', log: 2 },
      y: { label: 'p99 latency', log: 10, format: 'micros' },
      series,
      data: [queues, ...column((p) => Math.max(1, p.worstP99Us))],
    },
    {
      id: 'tune-memory',
      group: 'tune',
      title: 'Memory against queue size',
      caption: 'Solid: worst-case bytes one client\'s queue can hold (queue size x mean encoded event). Dashed: the broker\'s max RSS in that run.',
      x: { label: 'queue size (events per client)', log: 2 },
      y: { label: 'bytes', format: 'bytes', min: 0 },
      series: [...series.map((s) => ({ ...s })), ...series.map((s) => ({ ...s, label: `${s.label} (broker RSS)`, dash: [4, 4] }))],
      data: [queues, ...column((p) => p.queueBytesPerClient), ...column((p) => p.brokerMaxRssBytes)],
    },
  ];
  return charts;
}

function tuneSections(t: TuneReport): string {
  const recs =
    t.recommendations.map((r) => `<li class="${r.chosen !== null ? 'ok' : 'bad'}">${esc(r.text)}</li>`).join('') +
    (t.memory ?? []).map((m) => `<li>${esc(m.text)}</li>`).join('');
  return (
    `<section><h2>Recommendation (target: drops under ${t.targetDropPct}%)</h2><ul class="recs">${recs}</ul>` +
    `${t.probe !== undefined && t.probe !== null ? `<p>${esc(t.probe.note)}.</p>` : ''}</section>` +
    `<section><h2>Sweep</h2>` +
    columnTable(tunePointColumns, t.points) +
    `</section><section><h2>Charts</h2><div id="charts-tune" class="charts"></div></section>`
  );
}

const css = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1160px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 28px; }
.meta { color: #666; font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; } th { background: #f5f5f5; font-weight: 600; }
table.num td { text-align: right; } table.num td:nth-child(-n+2) { text-align: left; }
table.kv th { display: none; } table.kv td:first-child { font-weight: 600; background: #fafafa; }
.ok { color: #187a2f; font-weight: 600; } .bad { color: #b3261e; font-weight: 600; }
ul.failures li { color: #b3261e; } ul.notes li { color: #555; } ul.limits li.limit-client { color: #8a5a00; }
figure.chart { margin: 18px 0; } figcaption { color: #555; font-size: 12px; max-width: 1000px; }
.u-title { font-size: 14px !important; font-weight: 600 !important; }
#render-check { display: none; }
`;

function page(title: string, subtitle: string, body: string, charts: ChartSpec[], data: unknown): string {
  const lib = loadUplot();
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${lib.css}</style><style>${css}</style>
</head><body>
<h1>${esc(title)}</h1><div class="meta">${esc(subtitle)}</div>
${body}
<div id="render-check" data-ok="pending"></div>
<script type="application/json" id="chart-specs">${scriptJson(charts)}</script>
<script type="application/json" id="report-data">${scriptJson(data)}</script>
<!-- ${lib.name} ${lib.version}, ${esc(lib.licenseNotice)}, MIT licence: https://github.com/leeoniya/uPlot -->
<script>${lib.script.replace(/<\/script/gi, '<\\/script')}</script>
<script>${browserScript}</script>
</body></html>
`;
}

function machineLine(m: LoadReport['machine'], startedAt: string, wallSec: number): string {
  return `${startedAt}, ${wallSec.toFixed(1)} s; ${m.cpus} x ${m.cpuModel}; node ${m.node}; ${m.platform}`;
}

export function renderLoadReport(r: LoadReport): string {
  const title = `armorfeed load: ${r.settings.clients} clients against ${r.settings.addr}`;
  return page(title, machineLine(r.machine, r.startedAt, r.wallSec), loadSections(r, 'main'), loadCharts(r, 'main'), r);
}

export function renderTuneReport(t: TuneReport): string {
  let body = tuneSections(t);
  let charts = tuneCharts(t);
  if (t.detail !== null) {
    body += `<h2 class="detail">Detail of one run: ${esc(t.detail.settings.runTag)}</h2>${loadSections(t.detail, 'detail')}`;
    charts = charts.concat(loadCharts(t.detail, 'detail'));
  }
  return page(`armorfeed tune: ${t.points.length} points, target ${t.targetDropPct}% drops`, machineLine(t.machine, t.startedAt, t.wallSec), body, charts, t);
}

/** Writes the report atomically (temp file + rename), so a reader never sees half a file. */
export function writeReportFile(file: string, html: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, html);
  fs.renameSync(tmp, file);
}
