export { renderLoadReport, renderTuneReport, writeReportFile, loadCharts, tuneCharts } from './html';
export type { ChartSpec } from './chart-spec';
export { checkReportInChromium, screenshotReport, type RenderCheck } from './chromium';
