/**
 * The reports of `armorfeed load` and `armorfeed tune`: plain text (text.ts) and a
 * self-contained HTML page with charts (html.ts), their tables from one set of columns
 * (columns.ts).
 */
export { renderLoadReport, renderTuneReport, writeReportFile, loadCharts, tuneCharts } from './html';
export { formatSummary, formatTuneSummary, threadLine } from './text';
export { clientColumns, fmtBytes, tunePointColumns, type Column, type Mark } from './columns';
export type { ChartSpec } from './chart-spec';
export { checkReportInChromium, screenshotReport, type RenderCheck } from './chromium';
