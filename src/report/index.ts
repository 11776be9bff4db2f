/** The reports of `armorfeed load` and `armorfeed tune`: plain text (text.ts) and a self-contained HTML page with charts (html.ts). */
export { renderLoadReport, renderTuneReport, writeReportFile, loadCharts, tuneCharts } from './html';
export { fmtBytes, formatSummary, formatTuneSummary, threadLine } from './text';
export type { ChartSpec } from './chart-spec';
export { checkReportInChromium, screenshotReport, type RenderCheck } from './chromium';
